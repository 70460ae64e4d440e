"""The gateway's own records (SQLite by SQLAlchemy in its data dir): the meters it knows and their
readings — the thesis' SmartMeter and Reading entities (its Fig. 3.15: one meter, many readings,
each identified by its creation time). Meter tokens are stored as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

meters = Table(
    "iec61850_meters",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("token_hash", String(64), unique=True, nullable=True),
    Column("name", String(256), nullable=False, default=""),
    Column("location", String(256), nullable=False, default=""),
    Column("zip_code", String(64), nullable=True),
    Column("phases", Integer, nullable=False, default=1),
    Column("source", String(16), nullable=False),  # "rest" (registered here) | "catalog"
    Column("node_id", String(128), nullable=True),
    Column("grid", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("extra", JSON, nullable=False, default=dict),
)

readings = Table(
    "iec61850_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("voltage", Float, nullable=True),
    Column("current", Float, nullable=True),
    Column("power", Float, nullable=True),
    Column("power_factor", Float, nullable=True),
    Column("frequency", Float, nullable=True),
    Column("source", String(16), nullable=False),  # "rest" | "mqtt"
    Column("phases", JSON, nullable=True),  # per-phase detail of three-phase telemetry
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A thesis-style meter token (a UUID, as in its Fig. 3.10) drawn from a CSPRNG."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


@dataclass(slots=True)
class MeterRow:
    device_id: str
    name: str
    location: str
    zip_code: str | None
    phases: int
    source: str
    node_id: str | None
    grid: str | None
    created_at: datetime
    extra: dict[str, Any]


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class GatewayStore:
    def __init__(self, url_or_path: str | Path) -> None:
        url = str(url_or_path)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        metadata.create_all(self.engine)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    # -- meters ---------------------------------------------------------------------------------
    def add_meter(self, row: MeterRow, token: str | None = None) -> None:
        with self._lock, self.engine.begin() as c:
            c.execute(
                insert(meters).values(
                    device_id=row.device_id,
                    token_hash=token_digest(token) if token else None,
                    name=row.name,
                    location=row.location,
                    zip_code=row.zip_code,
                    phases=row.phases,
                    source=row.source,
                    node_id=row.node_id,
                    grid=row.grid,
                    created_at=row.created_at,
                    extra=row.extra,
                )
            )

    def remove_meter(self, device_id: str) -> None:
        with self._lock, self.engine.begin() as c:
            c.execute(delete(meters).where(meters.c.device_id == device_id))

    def all_meters(self) -> list[MeterRow]:
        with self.engine.connect() as c:
            rows = c.execute(select(meters).order_by(meters.c.created_at)).mappings().all()
        return [self._row(r) for r in rows]

    def device_for_token(self, token: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(
                select(meters.c.device_id).where(meters.c.token_hash == token_digest(token))
            ).scalar_one_or_none()

    @staticmethod
    def _row(r: Any) -> MeterRow:
        return MeterRow(
            device_id=r["device_id"],
            name=r["name"],
            location=r["location"],
            zip_code=r["zip_code"],
            phases=r["phases"],
            source=r["source"],
            node_id=r["node_id"],
            grid=r["grid"],
            created_at=_as_utc(r["created_at"]),
            extra=r["extra"] or {},
        )

    # -- readings -------------------------------------------------------------------------------
    def add_readings(self, rows: Iterable[dict[str, Any]]) -> int:
        batch = list(rows)
        if not batch:
            return 0
        with self._lock, self.engine.begin() as c:
            c.execute(insert(readings), batch)
        return len(batch)

    def readings_of(self, device_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = (
                c.execute(
                    select(readings)
                    .where(readings.c.device_id == device_id)
                    .order_by(readings.c.created.desc(), readings.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) | {"created": _as_utc(r["created"])} for r in rows]

    def count_readings(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(readings)).scalar_one())
