"""Data-plane payloads produced by meters and field units and read by every consumer
(historian, gateway, dashboard, FLISR, state estimation)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from gridedge.contracts.common import DeviceId, Message, UtcDatetime

PhaseTriple = list[float]


def _three(values: list[float] | None) -> list[float] | None:
    if values is not None and len(values) not in (1, 3):
        raise ValueError(
            "per-phase arrays have 3 values in phase order a, b, c (or 1 for single-phase)"
        )
    return values


class Telemetry(Message):
    """Periodic reading (data/<id>/telemetry, QoS 1). Per-phase arrays in order a, b, c; RMS values;
    single-phase meters send one-element arrays."""

    SCHEMA = "gridedge.telemetry/1"
    device_id: DeviceId
    seq: int = Field(default=0, ge=0, description="per-device sequence number, for loss accounting")
    voltage_v: PhaseTriple
    current_a: PhaseTriple
    active_power_w: PhaseTriple | None = None
    reactive_power_var: PhaseTriple | None = None
    power_factor: PhaseTriple | None = None
    voltage_angle_deg: PhaseTriple | None = None
    current_angle_deg: PhaseTriple | None = None
    frequency_hz: float | None = Field(default=None, gt=0)
    energy_wh: float | None = Field(
        default=None, ge=0, description="imported active energy register"
    )
    relay_closed: bool | None = None
    phase: Literal["a", "b", "c"] | None = Field(
        default=None, description="for single-phase customers"
    )

    _v = field_validator(
        "voltage_v",
        "current_a",
        "active_power_w",
        "reactive_power_var",
        "power_factor",
        "voltage_angle_deg",
        "current_angle_deg",
    )(_three)


class EventKind(StrEnum):
    LAST_GASP = "last-gasp"  # supply lost (outage)
    RESTORE = "restore"  # supply back
    FAULT_CAPTURED = "fault-captured"
    RELAY_CHANGED = "relay-changed"
    APP_ERROR = "app-error"
    ALARM = "alarm"


class DeviceEvent(Message):
    """Something happened at a device (data/<id>/event, QoS 1)."""

    SCHEMA = "gridedge.event/1"
    device_id: DeviceId
    kind: EventKind
    occurred_at: UtcDatetime
    detail: dict[str, object] = Field(default_factory=dict)
    app: str | None = None
