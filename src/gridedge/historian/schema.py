"""Tables of the historian (SQLAlchemy Core, so the same code runs on SQLite and PostgreSQL).

Readings are stored wide (one row per telemetry message, one column per quantity and phase):
a dashboard chart or a state estimator asks for one quantity of one device over time, and a wide
row keeps inserts at one row per message, which is what batching is measured in (REFERENCE.md
§3.3). Everything that is not a periodic reading (events, fault reports, commands and their
results, FLISR records, liveness changes) is an *event*: a typed row with the original JSON,
because those are read back whole and rarely.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

PHASES = ("a", "b", "c")
# Telemetry field -> per-phase columns (or a single column for scalars).
PHASE_QUANTITIES = (
    "voltage_v",
    "current_a",
    "active_power_w",
    "reactive_power_var",
    "power_factor",
)
SCALAR_QUANTITIES = ("frequency_hz", "energy_wh")


def quantity_columns() -> list[str]:
    cols = [f"{q}_{p}" for q in PHASE_QUANTITIES for p in PHASES]
    return cols + list(SCALAR_QUANTITIES)


readings = Table(
    "readings",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("received_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False, default=0),
    *[Column(name, Float, nullable=True) for name in quantity_columns()],
    Column("relay_closed", Boolean, nullable=True),
    Index("ix_readings_device_ts", "device_id", "ts_ns"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("received_ns", BigInteger, nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("plane", String(8), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("kind", String(64), nullable=False, default=""),
    Column("payload", Text, nullable=False),
    Index("ix_events_ts", "ts_ns"),
    Index("ix_events_stream_ts", "stream", "ts_ns"),
)

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("since_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=True),
)

rejected = Table(
    "rejected",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True),
    Column("received_ns", BigInteger, nullable=False),
    Column("topic", String(512), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload_head", Text, nullable=False),
)
