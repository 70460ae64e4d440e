"""FLISR payloads: the fault locator's answer and the record of one FLISR run.

- :class:`FaultLocation` — ``data/<head meter>/fault-location`` (QoS 1): seed 001 §IV-B, "the
  identifiers of these 2 buses, and the distance of the fault from the first bus of the pair,
  are published using the MQTT protocol", plus fault resistance, type and a confidence.
- :class:`FlisrRecord` — ``data/flisr/record`` (QoS 1, retained): every step time-stamped
  (detection, window capture, location, messaging, reconfiguration compute, actuation, topology
  hand-over), the switch operations with their confirmations, and what was restored. The
  dashboard draws its timeline from ``steps`` (``name``, ``start_ms``, ``duration_ms``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gridedge.contracts.common import Contract, DeviceId, Message

FLISR_DEVICE_ID = "flisr"
FAULT_LOCATION_STREAM = "fault-location"
FLISR_RECORD_STREAM = "record"

FaultKindName = Literal["slg", "ll", "llg", "3ph"]


class LocationCandidate(Contract):
    section_id: str
    from_node: str
    to_node: str
    distance_m: float = Field(ge=0)
    r_f_ohm: float = Field(ge=0)
    cost: float = Field(description="weighted squared misfit of all measurements (lower = better)")


class FaultLocation(Message):
    """The faulted section (the branch and the two buses it joins, upstream first), the distance
    from the upstream bus, the fault resistance and how sure the locator is."""

    SCHEMA = "gridedge.fault-location/1"
    device_id: DeviceId = Field(description="the feeder-head meter that located it")
    grid: str
    record_id: str = Field(description="the head meter's FaultRecord this answers")
    section_id: str = Field(description="branch (line) id of the faulted section")
    from_node: str = Field(description="upstream bus (substation) of the section")
    to_node: str = Field(description="downstream bus of the section")
    distance_m: float = Field(ge=0, description="from the upstream bus along the section")
    distance_from_head_m: float = Field(ge=0, description="from the feeder head (seed 003's X0)")
    section_length_m: float = Field(ge=0)
    r_f_ohm: float = Field(ge=0)
    fault_kind: FaultKindName
    phases: str = Field(pattern=r"^[abc]{1,3}$")
    confidence: float = Field(ge=0, le=1, description="1 - cost(best)/cost(second best)")
    candidates: list[LocationCandidate] = Field(default_factory=list, max_length=8)
    meters_used: list[str] = Field(default_factory=list)
    fault_passage: dict[str, bool] = Field(
        default_factory=dict,
        description="switch id -> whether its field unit saw the fault current go through; "
        "the search was kept to the sections these verdicts agree with",
    )
    inception_ns: int
    detected_ns: int = Field(description="the head meter's trigger time")
    window_captured_ns: int = Field(description="when the head meter's record was captured")
    located_ns: int
    compute_s: float = Field(ge=0, description="location compute time on the meter")


class FlisrStep(Contract):
    name: str
    start_ms: float = Field(description="from fault inception")
    duration_ms: float = Field(ge=0)
    detail: str = ""


class SwitchOperation(Contract):
    switch_id: str
    device_id: DeviceId
    action: Literal["open", "close"]
    purpose: Literal["isolate", "reclose", "restore", "split"]
    command_id: str
    sent_ns: int
    confirmed_ns: int | None = None
    ok: bool = False
    closed: bool | None = None
    reason: str = ""


class FlisrRecord(Message):
    """One FLISR run, from fault inception to the new topology in the catalog."""

    SCHEMA = "gridedge.flisr-record/1"
    flisr_id: str
    grid: str
    outcome: Literal["restored", "isolated", "failed"]
    location: FaultLocation
    steps: list[FlisrStep]
    operations: list[SwitchOperation]
    isolated_switches: list[str]
    closed_switches: list[str]
    restored_nodes: list[str] = Field(default_factory=list)
    restored_customers: int = Field(ge=0, description="secondary substations back in supply")
    restored_load_w: float = Field(ge=0)
    interrupted_load_w: float = Field(ge=0, description="healthy load the trip had cut")
    unserved_load_w: float = Field(ge=0, description="healthy load left without supply")
    restoration_method: str
    topology_version: int | None = None
    total_s: float = Field(ge=0, description="fault inception to the last confirmation")
    problems: list[str] = Field(default_factory=list)
