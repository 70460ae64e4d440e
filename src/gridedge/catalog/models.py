"""Database tables of the catalog (SQLAlchemy 2). The schema itself is created by the alembic
migrations in ``migrations/``; these classes must match them.

Time-stamps are stored as UTC epoch seconds (float): identical on SQLite and PostgreSQL, no
time-zone conversion on the way in or out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Double, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    hardware: Mapped[str | None] = mapped_column(String(256))
    firmware: Mapped[str | None] = mapped_column(String(256))
    location: Mapped[dict[str, Any]] = mapped_column(JSON)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON)
    apps: Mapped[list[Any]] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    update_period_s: Mapped[float] = mapped_column(Double)
    liveness_timeout_s: Mapped[float | None] = mapped_column(Double)
    secret_hash: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_since: Mapped[float | None] = mapped_column(Double)
    last_seen: Mapped[float | None] = mapped_column(Double)
    provisioned_at: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    settings_version: Mapped[int] = mapped_column(Integer)
    settings_etag: Mapped[str] = mapped_column(String(64))
    settings_issued_at: Mapped[float] = mapped_column(Double)
    portion: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TopologyRow(Base):
    __tablename__ = "topologies"

    grid: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    stored_at: Mapped[float] = mapped_column(Double)


class AppPackageRow(Base):
    __tablename__ = "app_packages"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Double)


class AppStateRow(Base):
    __tablename__ = "app_states"

    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
