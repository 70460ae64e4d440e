"""Durable storage of the catalog: SQLAlchemy 2 on SQLite (default) or PostgreSQL (by URL).

Everything here is synchronous and is called from one worker thread of the service, so the event
loop never waits on the disk and SQLite never sees two writers. The schema is brought up to date
by alembic at start-up (migrations ship inside the package).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, bindparam, create_engine, delete, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from gridedge.catalog.models import AppPackageRow, AppStateRow, DeviceRow, TopologyRow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_COLUMN = {"meta": "metadata"}  # attribute name -> column name where they differ


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL + NORMAL: durable across process crashes, fast batched writes (REFERENCE §3.3)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    # -- devices ------------------------------------------------------------------------------
    def load_devices(self) -> list[DeviceRow]:
        with self.session() as s:
            return list(s.scalars(select(DeviceRow)))

    def insert_devices(self, rows: Iterable[DeviceRow]) -> None:
        with self.session() as s, s.begin():
            s.add_all(rows)

    def existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.session() as s:
            for i in range(0, len(ids), 500):
                found.update(
                    s.scalars(select(DeviceRow.id).where(DeviceRow.id.in_(ids[i : i + 500])))
                )
        return found

    def update_devices(self, changes: list[dict[str, Any]]) -> None:
        """Bulk UPDATE by primary key; each dict holds ``id`` and the columns to set (attribute
        names of DeviceRow). One Core executemany per column set: the last-seen flush of 1,000
        devices a second must cost milliseconds, not the ORM's per-row bookkeeping."""
        if not changes:
            return
        table = DeviceRow.__table__
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for c in changes:
            by_columns.setdefault(tuple(sorted(k for k in c if k != "id")), []).append(c)
        with self.engine.begin() as conn:
            for cols, group in by_columns.items():
                stmt = (
                    table.update()
                    .where(table.c.id == bindparam("b_id"))
                    .values({_COLUMN.get(c, c): bindparam(f"b_{c}") for c in cols})
                )
                conn.execute(stmt, [{f"b_{k}": v for k, v in g.items()} for g in group])

    def delete_device(self, device_id: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(AppStateRow).where(AppStateRow.device_id == device_id))
            s.execute(delete(DeviceRow).where(DeviceRow.id == device_id))

    # -- topology -----------------------------------------------------------------------------
    def latest_topologies(self) -> list[TopologyRow]:
        with self.session() as s:
            rows = list(
                s.scalars(select(TopologyRow).order_by(TopologyRow.grid, TopologyRow.version))
            )
        latest: dict[str, TopologyRow] = {}
        for r in rows:
            latest[r.grid] = r
        return list(latest.values())

    def insert_topology(self, row: TopologyRow) -> None:
        with self.session() as s, s.begin():
            s.add(row)

    # -- apps ---------------------------------------------------------------------------------
    def load_app_infos(self) -> list[tuple[str, str, dict[str, Any], bool]]:
        with self.session() as s:
            return [
                (r.name, r.version, r.info, has)
                for r, has in s.execute(select(AppPackageRow, AppPackageRow.data.is_not(None)))
            ]

    def upsert_app_info(self, name: str, version: str, info: dict[str, Any], now: float) -> None:
        with self.session() as s, s.begin():
            row = s.get(AppPackageRow, (name, version))
            if row is None:
                s.add(
                    AppPackageRow(name=name, version=version, info=info, data=None, created_at=now)
                )
            else:
                row.info = info
                row.data = None

    def store_app_data(self, name: str, version: str, data: bytes) -> None:
        with self.session() as s, s.begin():
            s.execute(
                update(AppPackageRow)
                .where(AppPackageRow.name == name, AppPackageRow.version == version)
                .values(data=data)
            )

    def app_data(self, name: str, version: str) -> bytes | None:
        with self.session() as s:
            return s.scalar(
                select(AppPackageRow.data).where(
                    AppPackageRow.name == name, AppPackageRow.version == version
                )
            )

    # -- app states ---------------------------------------------------------------------------
    def load_app_states(self) -> list[AppStateRow]:
        with self.session() as s:
            return list(s.scalars(select(AppStateRow)))

    def upsert_app_state(self, device_id: str, app: str, report: dict[str, Any]) -> None:
        with self.session() as s, s.begin():
            row = s.get(AppStateRow, (device_id, app))
            if row is None:
                s.add(AppStateRow(device_id=device_id, app=app, report=report, reason=None))
            else:
                row.report = report
