"""Typed payloads of meter events that other roles compute with.

:class:`~gridedge.contracts.telemetry.DeviceEvent` carries a free ``detail`` dict, which is fine
for a dashboard but not for the fault locator: FLISR needs the pre- and during-fault phasors of the
feeder-head meter and the sag minimum of every other meter (REFERENCE.md §2.1), with units and
angle reference spelled out. Those travel as a :class:`FaultRecord` on ``data/<id>/fault``; the
outage app's last-gasp/restore details are described by :class:`OutageDetail` (placed in the
event's ``detail`` so every consumer of ``data/<id>/event`` keeps one schema).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from gridedge.contracts.common import Contract, DeviceId, Message, UtcDatetime

Phase = Literal["a", "b", "c"]
Complex = list[float]  # [re, im]


def _pairs(values: list[list[float]]) -> list[list[float]]:
    for v in values:
        if len(v) != 2:
            raise ValueError("a phasor is [re, im] (two numbers)")
    if len(values) not in (1, 3):
        raise ValueError("one phasor per phase: 3 in order a, b, c (or 1 for single-phase)")
    return values


class PhasorSet(Contract):
    """RMS phasors per phase in order a, b, c, each [re, im] in V or A (primary side).

    Angle convention (the same as the twin's and :mod:`gridedge.dsp`):
    ``x(t) = √2·|X|·cos(ω·t + ∠X)`` with ``t`` the absolute UTC epoch time in seconds, so phasors
    of different cycles, windows and meters share one reference."""

    voltage: list[Complex]
    current: list[Complex]
    cycle_start_ns: int = Field(description="UTC ns of the first sample of the DFT cycle")
    method: Literal["dft", "ls-dc"] = Field(
        default="dft",
        description="dft: full-cycle DFT; ls-dc: least-squares fit of the fundamental plus a "
        "polynomial that absorbs the decaying DC offset",
    )

    _p = field_validator("voltage", "current")(_pairs)

    def voltage_complex(self) -> list[complex]:
        return [complex(re, im) for re, im in self.voltage]

    def current_complex(self) -> list[complex]:
        return [complex(re, im) for re, im in self.current]


class FaultRecord(Message):
    """What a meter captured around a fault (data/<id>/fault, QoS 1): everything an
    impedance-based locator needs from the feeder-head meter, and the sag magnitudes it needs
    from every other meter."""

    SCHEMA = "gridedge.fault-record/1"
    record_id: str = Field(description="unique per device; also the COMTRADE file stem")
    kind: Literal["waveform", "rms"] = Field(
        default="waveform",
        description="waveform: phasors from a sampled window (and a COMTRADE file); rms: a sag "
        "log from RMS polls only (a meter without waveforms, or whose window failed)",
    )
    device_id: DeviceId
    point_id: str = Field(description="measurement point (twin point or meter id)")
    trigger: Literal["overcurrent", "undervoltage", "external"]
    trigger_phases: list[Phase] = Field(default_factory=list)
    trigger_ns: int = Field(description="UTC ns when the RMS trigger fired")
    inception_ns: int = Field(
        description="UTC ns of fault inception: the first sample at or after it (waveform), "
        "else the trigger time"
    )
    inception_source: Literal["daq", "detected", "trigger"] = Field(
        description="daq: the DAQ flagged it; detected: cycle-difference detector on the "
        "samples; trigger: fell back to the RMS trigger time"
    )
    sampling_rate_hz: float | None = Field(default=None, gt=0)
    nominal_frequency_hz: float | None = Field(default=None, gt=0)
    window_start_ns: int | None = None
    n_samples: int | None = Field(default=None, gt=0)
    pre: PhasorSet | None = Field(default=None, description="one-cycle DFT just before inception")
    during: PhasorSet | None = Field(
        default=None, description="one cycle after inception (before protection)"
    )
    min_rms_v: list[float] = Field(description="lowest RMS voltage per phase during the sag")
    max_rms_a: list[float] = Field(description="highest RMS current per phase during the fault")
    pre_rms_v: list[float]
    pre_rms_a: list[float]
    sag_mean_v: list[float] | None = Field(
        default=None,
        description="mean of the one-cycle RMS voltage per phase over the sag_cycles full "
        "cycles from during_delay_cycles after inception to the clearing (or the window end, "
        "or the app's sag_max_cycles); None in records from older apps",
    )
    sag_cycles: int | None = Field(
        default=None, ge=1, description="how many one-cycle readings sag_mean_v averages"
    )
    pre_mean_v: list[float] | None = Field(
        default=None,
        description="mean of the one-cycle RMS voltage per phase over the pre_cycles full "
        "cycles just before inception (pre_rms_v is the last one alone)",
    )
    pre_cycles: int | None = Field(
        default=None, ge=1, description="how many one-cycle readings pre_mean_v averages"
    )
    comtrade: str | None = Field(
        default=None, description="path of the .cfg on the node (None if no waveform was kept)"
    )
    clipped_samples: int = Field(default=0, ge=0, description="samples on an ADC rail")
    note: str = Field(default="", description="why an rms record has no waveform")
    captured_at: UtcDatetime

    def sag_readings(self) -> tuple[list[float], list[float], int, int]:
        """(pre-fault |V|, during-fault |V|, cycles behind each) per phase: the averaged
        readings when the record carries them — a meter's reading noise is per cycle, so a
        mean over n cycles is √n more precise than one — else the one-cycle pre-fault RMS and
        the sag minimum (1 cycle each)."""
        if self.sag_mean_v is not None and self.pre_mean_v is not None:
            return (
                list(self.pre_mean_v),
                list(self.sag_mean_v),
                self.pre_cycles or 1,
                self.sag_cycles or 1,
            )
        return list(self.pre_rms_v), list(self.min_rms_v), 1, 1

    def sag_depth(self) -> list[float]:
        """|V| during / |V| before per phase: what the fault locator compares with its model
        (the averaged readings when present, see :meth:`sag_readings`)."""
        pre_v, dur_v, _, _ = self.sag_readings()
        return [lo / pre if pre > 0 else 0.0 for lo, pre in zip(dur_v, pre_v, strict=True)]


class OutageDetail(Contract):
    """``DeviceEvent.detail`` of the outage app's last-gasp, phase-loss alarm and restore."""

    scope: Literal["supply", "phase"] = Field(
        description="supply: the meter lost (or regained) all its phases; phase: some phases"
    )
    phases: list[Phase] = Field(description="phases this event is about")
    phases_still_lost: list[Phase] = Field(default_factory=list)
    voltage_v: list[float] = Field(description="the reading that decided it, per phase")
    lost_since_ns: int | None = Field(default=None, description="UTC ns the loss was first seen")
    duration_s: float | None = Field(default=None, ge=0, description="restore only")
    threshold_v: float
