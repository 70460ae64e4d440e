"""Contracts of the Device Catalog protocol (REST bodies and management-plane MQTT payloads).

Seeds 001 §III-A/§IV-A and 003 §II: a device boots, presents its identity, receives everything it
needs (brokers, topics, apps, the part of the grid it watches), re-checks periodically, and is told
of changes on the management broker. docs/protocol.md describes these models in prose.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from gridedge.contracts.common import Contract, DeviceId, Message, UtcDatetime

# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


class DeviceKind(StrEnum):
    METER = "meter"
    SWITCH = "switch"
    BREAKER = "breaker"
    CONCENTRATOR = "concentrator"
    COORDINATOR = "coordinator"
    SUB_COORDINATOR = "sub-coordinator"
    OPERATOR_UNIT = "operator-unit"
    SERVICE_HOST = "service-host"
    GATEWAY = "gateway"


class DeviceStatus(StrEnum):
    REGISTERED = "registered"  # known, never provisioned
    CONNECTED = "connected"  # heard from within its liveness timeout
    DISCONNECTED = "disconnected"  # silent for longer than its timeout


class AppTarget(StrEnum):
    EDGE = "edge"
    FOG = "fog"
    CLOUD = "cloud"


class Capabilities(Contract):
    """What the device can sense and actuate; apps are only assigned where they can run."""

    daq_channels: list[str] = Field(
        default_factory=list, description="e.g. ['va','vb','vc','ia','ib','ic']"
    )
    sampling_rate_hz: float | None = Field(default=None, gt=0)
    phases: int = Field(default=3, ge=1, le=3)
    relay: bool = False
    phase_selector: bool = False
    switch_ids: list[str] = Field(
        default_factory=list, description="topology branch ids this device operates"
    )
    compute: AppTarget = AppTarget.EDGE


class GridLocation(Contract):
    grid: str | None = Field(default=None, description="topology name, e.g. 'turin-2feeder'")
    node_id: str | None = Field(default=None, description="topology node (bus) id")
    branch_id: str | None = Field(default=None, description="topology branch the device measures")
    phase: Literal["a", "b", "c"] | None = Field(default=None, description="single-phase customers")
    area: str | None = Field(default=None, description="free grouping label, e.g. 'feeder-A'")


class AppAssignment(Contract):
    """One app a device must run. The package itself is fetched from package_url and checked
    against sha256 and the Ed25519 signature before it may run."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([\-+][0-9A-Za-z.\-]+)?$")
    params: dict[str, Any] = Field(default_factory=dict)
    target: AppTarget = AppTarget.EDGE
    package_url: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    signature: str | None = Field(
        default=None, description="base64 Ed25519 signature of the manifest"
    )


class DeviceRegistration(Contract):
    """Operator's (admin) request to register one device."""

    id: DeviceId
    kind: DeviceKind
    hardware: str | None = None
    firmware: str | None = None
    location: GridLocation = Field(default_factory=GridLocation)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    metadata: dict[str, Any] = Field(default_factory=dict)
    apps: list[AppAssignment] = Field(default_factory=list)
    update_period_s: float = Field(default=60.0, gt=0, le=86400)
    liveness_timeout_s: float | None = Field(
        default=None, gt=0, description="default: 3 x update_period_s"
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict, description="service endpoints the device exposes (name -> URL)"
    )


class DeviceRegistrationBatch(Contract):
    devices: list[DeviceRegistration] = Field(min_length=1, max_length=20000)


class ProvisioningCredentials(Contract):
    """Answer to a registration: shown once; the catalog stores only a hash of the secret."""

    id: DeviceId
    provisioning_secret: str


class ProvisioningCredentialsBatch(Contract):
    devices: list[ProvisioningCredentials]


class DeviceRecord(Contract):
    """A device as the catalog knows it (discovery and admin views)."""

    id: DeviceId
    kind: DeviceKind
    hardware: str | None = None
    firmware: str | None = None
    location: GridLocation
    capabilities: Capabilities
    metadata: dict[str, Any]
    endpoints: dict[str, str] = Field(default_factory=dict)
    status: DeviceStatus
    settings_version: int
    update_period_s: float
    liveness_timeout_s: float
    last_seen: UtcDatetime | None = None
    status_since: UtcDatetime | None = None
    provisioned_at: UtcDatetime | None = None
    apps: list[AppAssignment] = Field(default_factory=list)
    app_states: list[AppStateReport] = Field(default_factory=list)


class DeviceList(Contract):
    devices: list[DeviceRecord]
    total: int


class SettingsUpdate(Contract):
    """Operator change to a device's settings (PATCH): only the given fields change."""

    apps: list[AppAssignment] | None = None
    update_period_s: float | None = Field(default=None, gt=0, le=86400)
    liveness_timeout_s: float | None = Field(default=None, gt=0)
    location: GridLocation | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] | None = Field(default=None, description="free settings for apps")


# ---------------------------------------------------------------------------------------------
# Self-configuration
# ---------------------------------------------------------------------------------------------


class ProvisionRequest(Contract):
    """A booting device's first call: its id is in the URL, the secret proves it."""

    provisioning_secret: str = Field(min_length=8, max_length=256)
    hardware: str | None = None
    firmware: str | None = None


class BrokerEndpoint(Contract):
    """Where to connect for one plane. url: mqtt://host:port or mqtts://host:port."""

    url: str = Field(pattern=r"^mqtts?://[^\s/]+(:\d+)?/?$")
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)


class BrokerPlanes(Contract):
    data: BrokerEndpoint
    mgmt: BrokerEndpoint


class TopicSpec(Contract):
    topic: str
    qos: Literal[0, 1, 2] = 0
    retain: bool = False
    description: str = ""


class TopicPlan(Contract):
    publish: list[TopicSpec] = Field(default_factory=list)
    subscribe: list[TopicSpec] = Field(default_factory=list)


class TopologyNode(Contract):
    id: str
    kind: Literal["source", "busbar", "bus", "substation", "load", "junction"] = "bus"
    voltage_kv: float | None = Field(default=None, gt=0)
    feeder: str | None = None
    x: float | None = None
    y: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TopologyBranch(Contract):
    id: str
    from_node: str
    to_node: str
    kind: Literal[
        "line", "cable", "transformer", "switch", "breaker", "sectionalizer", "tie", "link"
    ]
    closed: bool = True
    normally_open: bool = False
    switchable: bool = False
    length_m: float | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DevicePlacement(Contract):
    device_id: DeviceId
    node_id: str
    branch_id: str | None = None


class TopologyDocument(Contract):
    """The grid topology as a versioned document. The catalog assigns ``version`` on store."""

    grid: str = Field(min_length=1, max_length=128)
    version: int = 0
    nodes: list[TopologyNode]
    branches: list[TopologyBranch]
    placements: list[DevicePlacement] = Field(default_factory=list)

    @field_validator("branches")
    @classmethod
    def _unique_branch_ids(cls, branches: list[TopologyBranch]) -> list[TopologyBranch]:
        seen: set[str] = set()
        for b in branches:
            if b.id in seen:
                raise ValueError(f"branch id {b.id!r} appears twice")
            seen.add(b.id)
        return branches


class GridPortion(Contract):
    """The part of the grid a device watches: the nodes and branches reachable from its node over
    closed branches without crossing a source node (its feeder as currently switched)."""

    grid: str
    topology_version: int
    node_id: str | None = None
    nodes: list[str] = Field(default_factory=list)
    branches: list[TopologyBranch] = Field(default_factory=list)
    devices: dict[str, str] = Field(
        default_factory=dict, description="device id -> node id inside the portion"
    )
    digest: str = ""


class DeviceSettings(Contract):
    """Everything a device needs to run, delivered at provisioning and on every change."""

    device_id: DeviceId
    version: int = Field(ge=1)
    etag: str
    issued_at: UtcDatetime
    kind: DeviceKind
    brokers: BrokerPlanes
    topics: TopicPlan
    apps: list[AppAssignment]
    grid: GridPortion | None = None
    location: GridLocation
    update_period_s: float
    liveness_timeout_s: float
    heartbeat_period_s: float
    extra: dict[str, Any] = Field(default_factory=dict)


class ProvisionResponse(Contract):
    token: str = Field(description="per-device bearer token; shown once, stored hashed")
    settings: DeviceSettings


class TopologyStored(Contract):
    grid: str
    version: int
    affected_devices: int


class AppPackageInfo(Contract):
    """An app version the catalog can deliver (its package is uploaded separately)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([\-+][0-9A-Za-z.\-]+)?$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    signature: str
    targets: list[AppTarget] = Field(default_factory=lambda: [AppTarget.EDGE])
    manifest: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Management-plane MQTT payloads
# ---------------------------------------------------------------------------------------------


class AppUpdateState(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFIED = "verified"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    REJECTED = "rejected"


class AppStateReport(Message):
    """Node -> catalog (mgmt/<id>/app-state, QoS 1; also POST /v1/devices/{id}/app-states)."""

    SCHEMA = "gridedge.app-state/1"
    device_id: DeviceId
    app: str
    version: str
    state: AppUpdateState
    reason: str = ""


class SettingsChanged(Message):
    """Catalog -> device (mgmt/<id>/settings, QoS 1, retained): fetch settings ``version``."""

    SCHEMA = "gridedge.settings-changed/1"
    device_id: DeviceId
    version: int
    etag: str
    reason: Literal["operator", "topology", "app-release", "provisioned"] = "operator"


class DeviceStatusChanged(Message):
    """Catalog -> everyone (mgmt/<id>/status, QoS 1, retained)."""

    SCHEMA = "gridedge.device-status/1"
    device_id: DeviceId
    status: DeviceStatus
    last_seen: UtcDatetime | None = None
    timeout_s: float


class Heartbeat(Message):
    """Device -> catalog (mgmt/<id>/heartbeat, QoS 0): refreshes last-seen between check-ins."""

    SCHEMA = "gridedge.heartbeat/1"
    device_id: DeviceId
    settings_version: int = 0
    uptime_s: float = Field(default=0.0, ge=0)


class TopologyChanged(Message):
    """Catalog -> everyone (mgmt/catalog/topology, QoS 1, retained)."""

    SCHEMA = "gridedge.topology-changed/1"
    grid: str
    version: int
    affected_devices: int


DeviceRecord.model_rebuild()
