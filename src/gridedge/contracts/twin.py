"""REST bodies of the twin's network interface (``gridedge twin serve``): what a meter node's
simulated DAQ and relay driver exchange with the twin, and the twin's event stream.

Readings travel as :class:`gridedge.contracts.telemetry.Telemetry` and sampled windows as
:class:`gridedge.contracts.waveform.WaveformWindow`; errors as
:class:`gridedge.contracts.common.Problem` naming the field."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from gridedge.contracts.common import Contract, Message


class PointInfo(Contract):
    """A measurement point of the twin: where a meter's VTs and CTs sit."""

    id: str
    node_id: str
    branch_id: str | None = None
    end: Literal["from", "to"] = "from"
    vt_ratio: float = 1.0
    ct_ratio: float = 1.0
    description: str = ""


class SwitchCommand(Contract):
    closed: bool = Field(description="true = close, false = open")


class SwitchState(Contract):
    switch_id: str
    closed: bool = Field(description="actual state after acting")
    role: str = Field(default="", description="breaker | sectionalizer | tie | switch | link")


class RelayCommand(Contract):
    closed: bool = Field(description="customer relay: true = supply on")


class RelayState(Contract):
    customer_id: str
    closed: bool


class PhaseCommand(Contract):
    phase: Literal["a", "b", "c"]


class PhaseState(Contract):
    customer_id: str
    phase: Literal["a", "b", "c"]


class FaultRequest(Contract):
    """Inject a fault (demos, tests, benchmarks). The resistance convention is the twin's
    (power-grid-model's Z_f, see ``gridedge.twin.faults``)."""

    branch_id: str
    fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    kind: Literal["1ph", "2ph", "2ph-g", "3ph"] = "1ph"
    phases: str | None = Field(default=None, description="a/b/c, ab/bc/ac; default by kind")
    r_f_ohm: float = Field(default=0.0, ge=0.0)
    x_f_ohm: float = 0.0
    inception_angle_deg: float | None = Field(
        default=None,
        description="point on wave of phase-a voltage at the feeder head (0 = rising zero)",
    )


class FaultInfo(Contract):
    branch_id: str
    fraction: float
    kind: str
    phases: str
    r_f_ohm: float
    x_f_ohm: float = 0.0
    inception_ns: int
    trip_ns: int | None = Field(default=None, description="when the protection opened, if it has")
    tripped: list[str] = Field(default_factory=list, description="breakers that opened")


class GridStatus(Contract):
    grid: str
    time_ns: int
    faulted: bool
    radial: bool
    energised: dict[str, bool]
    switches: dict[str, bool] = Field(description="switch id -> closed")
    fault: FaultInfo | None = None


class TwinEventKind(StrEnum):
    FAULT_INCEPTION = "fault-inception"
    BREAKER_TRIP = "breaker-trip"
    FAULT_CLEARED = "fault-cleared"
    SWITCH_CHANGED = "switch-changed"
    RELAY_CHANGED = "relay-changed"
    PHASE_CHANGED = "phase-changed"
    PROFILE_STEP = "profile-step"


class TwinEvent(Message):
    """One thing that happened in the twin (SSE ``/v1/events``, also ``GET /v1/events/log``)."""

    SCHEMA = "gridedge.twin-event/1"
    seq: int = Field(ge=0)
    kind: TwinEventKind
    time_ns: int = Field(description="simulated UTC ns of the event")
    detail: dict[str, object] = Field(default_factory=dict)
