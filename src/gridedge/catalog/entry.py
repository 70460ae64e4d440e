"""A device as the catalog holds it in memory, and its database row.

Kept apart from the service so the row mapping (what is stored, what is recomputed at start-up)
is in one small place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridedge.catalog.models import DeviceRow
from gridedge.contracts.catalog import (
    AppAssignment,
    Capabilities,
    DeviceKind,
    DeviceStatus,
    GridLocation,
    GridPortion,
)


def utc_from_epoch(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass
class DeviceEntry:
    id: str
    kind: DeviceKind
    hardware: str | None
    firmware: str | None
    location: GridLocation
    capabilities: Capabilities
    metadata: dict[str, Any]
    endpoints: dict[str, str]
    apps: list[AppAssignment]
    extra: dict[str, Any]
    update_period_s: float
    liveness_timeout_s: float | None
    secret_hash: str
    token_hash: str | None = None
    status: DeviceStatus = DeviceStatus.REGISTERED
    status_since: float | None = None
    last_seen: float | None = None
    provisioned_at: float | None = None
    created_at: float = 0.0
    settings_version: int = 0
    settings_etag: str = ""
    settings_issued_at: float = 0.0
    portion: GridPortion | None = None
    # what the database holds of the portion: its digest and the topology version it dates
    # from; the content itself is recomputed from the stored topology at start-up
    stored_portion: dict[str, Any] | None = None
    rendered: bytes | None = field(default=None, repr=False)

    def portion_ref(self) -> dict[str, Any] | None:
        if self.portion is None:
            return None
        return {
            "grid": self.portion.grid,
            "node_id": self.portion.node_id,
            "digest": self.portion.digest,
            "topology_version": self.portion.topology_version,
        }

    def settings_columns(self) -> dict[str, Any]:
        """The columns a settings rebuild changes (cheap partial UPDATE)."""
        return {
            "id": self.id,
            "settings_version": self.settings_version,
            "settings_etag": self.settings_etag,
            "settings_issued_at": self.settings_issued_at,
            "portion": self.portion_ref(),
        }

    @property
    def timeout_s(self) -> float:
        return self.liveness_timeout_s or 3.0 * self.update_period_s

    @property
    def quoted_etag(self) -> str:
        return f'"{self.settings_etag}"'

    def to_row(self) -> DeviceRow:
        return DeviceRow(**self.columns())

    def columns(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "hardware": self.hardware,
            "firmware": self.firmware,
            "location": self.location.model_dump(mode="json"),
            "capabilities": self.capabilities.model_dump(mode="json"),
            "meta": self.metadata,
            "endpoints": self.endpoints,
            "apps": [a.model_dump(mode="json") for a in self.apps],
            "extra": self.extra,
            "update_period_s": self.update_period_s,
            "liveness_timeout_s": self.liveness_timeout_s,
            "secret_hash": self.secret_hash,
            "token_hash": self.token_hash,
            "status": self.status.value,
            "status_since": self.status_since,
            "last_seen": self.last_seen,
            "provisioned_at": self.provisioned_at,
            "created_at": self.created_at,
            "settings_version": self.settings_version,
            "settings_etag": self.settings_etag,
            "settings_issued_at": self.settings_issued_at,
            "portion": self.portion_ref(),
        }

    @classmethod
    def from_row(cls, r: DeviceRow) -> DeviceEntry:
        return cls(
            id=r.id,
            kind=DeviceKind(r.kind),
            hardware=r.hardware,
            firmware=r.firmware,
            location=GridLocation.model_validate(r.location),
            capabilities=Capabilities.model_validate(r.capabilities),
            metadata=dict(r.meta or {}),
            endpoints=dict(r.endpoints or {}),
            apps=[AppAssignment.model_validate(a) for a in r.apps or []],
            extra=dict(r.extra or {}),
            update_period_s=r.update_period_s,
            liveness_timeout_s=r.liveness_timeout_s,
            secret_hash=r.secret_hash,
            token_hash=r.token_hash,
            status=DeviceStatus(r.status),
            status_since=r.status_since,
            last_seen=r.last_seen,
            provisioned_at=r.provisioned_at,
            created_at=r.created_at,
            settings_version=r.settings_version,
            settings_etag=r.settings_etag,
            settings_issued_at=r.settings_issued_at,
            stored_portion=r.portion,
        )
