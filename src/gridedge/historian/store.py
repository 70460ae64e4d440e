"""Batched storage and the query API the dashboard (and anyone else) reads the history through.

Throughput is decided by batching, not by the engine (REFERENCE.md §3.3: SQLite does ~54k rows/s
with executemany in large WAL transactions and ~16k/s one row per transaction), so
:meth:`HistorianStore.write_batch` takes everything collected since the last flush and writes it
in one transaction with ``executemany``. SQLite runs in WAL mode with ``synchronous=NORMAL`` so
the dashboard can read while the historian writes; PostgreSQL is used by giving its URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from gridedge.historian import schema
from gridedge.historian.schema import PHASE_QUANTITIES, PHASES, SCALAR_QUANTITIES

FLISR_DEVICE = "flisr"
FLISR_STREAM = "record"


class QueryError(ValueError):
    """A query argument is invalid; the message names the argument and the reason."""


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path)}"


def _wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _wal)
        return engine
    return create_engine(url, pool_pre_ping=True)


def resolve_quantity(quantity: str) -> list[str]:
    """``voltage_v`` -> its three phase columns; ``voltage_v_a`` or ``energy_wh`` -> one column."""
    if quantity in PHASE_QUANTITIES:
        return [f"{quantity}_{p}" for p in PHASES]
    if quantity in schema.quantity_columns():
        return [quantity]
    known = ", ".join([*PHASE_QUANTITIES, *SCALAR_QUANTITIES])
    raise QueryError(f"quantity {quantity!r} is unknown; known quantities: {known} (or <q>_a/b/c)")


@dataclass(frozen=True, slots=True)
class BatchResult:
    readings: int
    events: int
    statuses: int
    rejected: int


class HistorianStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        schema.metadata.create_all(self.engine)
        self._dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ------------------------------------------------------------------------------
    def write_batch(
        self,
        readings: list[dict[str, Any]],
        events: list[dict[str, Any]],
        statuses: list[dict[str, Any]] | None = None,
        rejected: list[dict[str, Any]] | None = None,
    ) -> BatchResult:
        """One transaction, one executemany per table. Statuses are upserts (latest wins)."""
        statuses = statuses or []
        rejected = rejected or []
        with self.engine.begin() as conn:
            if readings:
                conn.execute(insert(schema.readings), readings)
            if events:
                conn.execute(insert(schema.events), events)
            if rejected:
                conn.execute(insert(schema.rejected), rejected)
            if statuses:
                latest: dict[str, dict[str, Any]] = {}
                for s in statuses:
                    latest[s["device_id"]] = s
                ins = (
                    sqlite.insert(schema.device_status)
                    if self._dialect == "sqlite"
                    else postgresql.insert(schema.device_status)
                )
                stmt = ins.on_conflict_do_update(
                    index_elements=["device_id"],
                    set_={
                        "status": ins.excluded.status,
                        "since_ns": ins.excluded.since_ns,
                        "last_seen_ns": ins.excluded.last_seen_ns,
                    },
                )
                conn.execute(stmt, list(latest.values()))
        return BatchResult(len(readings), len(events), len(statuses), len(rejected))

    # -- reading ------------------------------------------------------------------------------
    def count(self, table: str) -> int:
        tbl = schema.metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())

    def latest_readings(self) -> dict[str, dict[str, Any]]:
        """The most recently received reading of every device."""
        r = schema.readings
        newest = select(func.max(r.c.id).label("id")).group_by(r.c.device_id).subquery()
        stmt = select(r).join(newest, r.c.id == newest.c.id)
        with self.engine.connect() as conn:
            return {row.device_id: _reading_dict(row._mapping) for row in conn.execute(stmt)}

    def readings(
        self,
        device_id: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        r = schema.readings
        stmt = select(r).where(r.c.device_id == device_id)
        if start_ns is not None:
            stmt = stmt.where(r.c.ts_ns >= start_ns)
        if end_ns is not None:
            stmt = stmt.where(r.c.ts_ns <= end_ns)
        stmt = stmt.order_by(r.c.ts_ns, r.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_reading_dict(row._mapping) for row in conn.execute(stmt)]

    def series(
        self,
        device_id: str,
        quantity: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        max_points: int = 500,
    ) -> dict[str, Any]:
        """A quantity of one device over time, averaged into at most ``max_points`` buckets when
        the range holds more rows than that (so a chart of a day never ships 86,400 points)."""
        if max_points < 1:
            raise QueryError("max_points must be >= 1")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise QueryError("end must not be before start")
        cols = resolve_quantity(quantity)
        r = schema.readings
        where = [r.c.device_id == device_id]
        if start_ns is not None:
            where.append(r.c.ts_ns >= start_ns)
        if end_ns is not None:
            where.append(r.c.ts_ns <= end_ns)
        with self.engine.connect() as conn:
            n, lo, hi = conn.execute(
                select(func.count(), func.min(r.c.ts_ns), func.max(r.c.ts_ns)).where(*where)
            ).one()
            if not n:
                return {
                    "device_id": device_id,
                    "quantity": quantity,
                    "columns": cols,
                    "points": [],
                    "downsampled": False,
                }
            if n <= max_points:
                stmt = (
                    select(r.c.ts_ns, *[r.c[c] for c in cols])
                    .where(*where)
                    .order_by(r.c.ts_ns, r.c.id)
                )
                points = [[row[0], *row[1:]] for row in conn.execute(stmt)]
                return {
                    "device_id": device_id,
                    "quantity": quantity,
                    "columns": cols,
                    "points": points,
                    "downsampled": False,
                }
            width = max(1, (hi - lo) // max_points + 1)
            bucket = (r.c.ts_ns - lo) // width  # SQLAlchemy renders floor division per dialect
            stmt = (
                select(func.min(r.c.ts_ns), *[func.avg(r.c[c]) for c in cols])
                .where(*where)
                .group_by(bucket)
                .order_by(func.min(r.c.ts_ns))
            )
            points = [
                [int(row[0]), *[None if v is None else float(v) for v in row[1:]]]
                for row in conn.execute(stmt)
            ]
        return {
            "device_id": device_id,
            "quantity": quantity,
            "columns": cols,
            "points": points,
            "downsampled": True,
        }

    def events(
        self,
        *,
        since_ns: int | None = None,
        device_id: str | None = None,
        streams: list[str] | None = None,
        limit: int = 200,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        e = schema.events
        stmt = select(e)
        if since_ns is not None:
            stmt = stmt.where(e.c.ts_ns >= since_ns)
        if device_id is not None:
            stmt = stmt.where(e.c.device_id == device_id)
        if streams:
            stmt = stmt.where(e.c.stream.in_(streams))
        order = (e.c.id.desc(),) if newest_first else (e.c.id,)
        stmt = stmt.order_by(*order).limit(limit)
        with self.engine.connect() as conn:
            return [_event_dict(row._mapping) for row in conn.execute(stmt)]

    def last_flisr_record(self) -> dict[str, Any] | None:
        # data/flisr/record (retained): the FLISR service publishes as pseudo-device "flisr"
        found = self.events(device_id=FLISR_DEVICE, streams=[FLISR_STREAM], limit=1)
        return found[0]["payload"] if found else None

    def device_statuses(self) -> dict[str, dict[str, Any]]:
        s = schema.device_status
        with self.engine.connect() as conn:
            return {
                row.device_id: {
                    "status": row.status,
                    "since_ns": row.since_ns,
                    "last_seen_ns": row.last_seen_ns,
                }
                for row in conn.execute(select(s))
            }

    def rejected(self, limit: int = 50) -> list[dict[str, Any]]:
        t = schema.rejected
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.id.desc()).limit(limit))
            return [dict(row._mapping) for row in rows]


def _reading_dict(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_id": row["device_id"],
        "ts_ns": row["ts_ns"],
        "received_ns": row["received_ns"],
        "seq": row["seq"],
        "relay_closed": row["relay_closed"],
    }
    for q in PHASE_QUANTITIES:
        vals = [row[f"{q}_{p}"] for p in PHASES]
        out[q] = None if all(v is None for v in vals) else vals
    for q in SCALAR_QUANTITIES:
        out[q] = row[q]
    return out


def _event_dict(row: Any) -> dict[str, Any]:
    try:
        payload = json.loads(row["payload"])
    except ValueError:
        payload = row["payload"]
    return {
        "id": row["id"],
        "ts_ns": row["ts_ns"],
        "received_ns": row["received_ns"],
        "device_id": row["device_id"],
        "plane": row["plane"],
        "stream": row["stream"],
        "kind": row["kind"],
        "payload": payload,
    }
