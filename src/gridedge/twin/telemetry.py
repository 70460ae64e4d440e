"""Low-rate readings a meter reports (RMS, powers, angles, frequency) from the twin's phasors.

A meter does not see the twin's absolute angle reference: like a three-phase meter, angles are
reported relative to its own phase-a voltage. Power flows from the point's node into its branch
(positive = the meter's downstream consumes). Meter error is an accuracy class (IEC 62053-21/22
style): the class percentage taken as a 3σ bound of a Gaussian error, seeded, so a benchmark
that wants "class 0.5 meters" gets reproducible readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from gridedge.contracts.telemetry import Telemetry
from gridedge.twin.state import GridState, MeasurementPoint
from gridedge.twin.waveforms import point_phasors


@dataclass(frozen=True)
class MeterAccuracy:
    """``accuracy_class`` in percent (0 = ideal meter). Voltage and current magnitudes get a
    relative error of σ = class/3 %; angles σ = class/3 centiradians (class 0.5 → ≈0.1°);
    frequency σ = ``frequency_sigma_hz``."""

    accuracy_class: float = 0.5
    frequency_sigma_hz: float = 0.002

    def __post_init__(self) -> None:
        if self.accuracy_class < 0 or self.frequency_sigma_hz < 0:
            raise ValueError("accuracy_class and frequency_sigma_hz must be >= 0")


IDEAL = MeterAccuracy(0.0, 0.0)


def _apply_accuracy(
    ph: np.ndarray, accuracy: MeterAccuracy, rng: np.random.Generator | None
) -> np.ndarray:
    """Reference angles to the first voltage, then apply the class error."""
    ref = ph[0]
    if abs(ref) > 1e-9:
        ph = ph * (abs(ref) / ref)
    if accuracy.accuracy_class > 0:
        rng = rng if rng is not None else np.random.default_rng()
        sigma = accuracy.accuracy_class / 300.0
        mag = 1.0 + rng.normal(0.0, sigma, ph.shape)
        ang = rng.normal(0.0, sigma, ph.shape)
        ph = ph * mag * np.exp(1j * ang)
    return ph


def measured_phasors(
    point: MeasurementPoint,
    state: GridState,
    accuracy: MeterAccuracy = IDEAL,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(6,) phasors (va..vc, ia..ic) as the meter measures them, referenced to its phase-a
    voltage, with the class error applied."""
    return _apply_accuracy(point_phasors(point, state), accuracy, rng)


def telemetry_from_phasors(
    v: np.ndarray,
    i: np.ndarray,
    *,
    device_id: str,
    frequency_hz: float | None,
    accuracy: MeterAccuracy = IDEAL,
    rng: np.random.Generator | None = None,
    ts: datetime | None = None,
    seq: int = 0,
    phase: str | None = None,
    relay_closed: bool | None = None,
) -> Telemetry:
    """A reading from true phasors (1 or 3 phases): angles relative to the first voltage, class
    error applied, P = Re(V·I*), Q = Im(V·I*), PF = P/|S| (negative = export)."""
    n = len(v)
    ph = _apply_accuracy(
        np.concatenate([np.asarray(v), np.asarray(i)]).astype(complex), accuracy, rng
    )
    v, i = ph[:n], ph[n:]
    s = v * np.conj(i)
    abs_s = np.abs(s)
    pf = np.where(abs_s > 1e-9, s.real / np.where(abs_s > 1e-9, abs_s, 1.0), 1.0)
    if frequency_hz is not None and accuracy.frequency_sigma_hz > 0:
        rng = rng if rng is not None else np.random.default_rng()
        frequency_hz += float(rng.normal(0.0, accuracy.frequency_sigma_hz))

    def deg(z: np.ndarray) -> list[float]:
        return [
            math.degrees(a) if abs(x) > 1e-9 else 0.0 for a, x in zip(np.angle(z), z, strict=True)
        ]

    kw: dict[str, object] = {}
    if ts is not None:
        kw["ts"] = ts
    return Telemetry(
        device_id=device_id,
        seq=seq,
        voltage_v=[float(x) for x in np.abs(v)],
        current_a=[float(x) for x in np.abs(i)],
        active_power_w=[float(x) for x in s.real],
        reactive_power_var=[float(x) for x in s.imag],
        power_factor=[float(x) for x in pf],
        voltage_angle_deg=deg(v),
        current_angle_deg=deg(i),
        frequency_hz=frequency_hz,
        phase=phase,  # type: ignore[arg-type]
        relay_closed=relay_closed,
        **kw,  # type: ignore[arg-type]
    )


def telemetry_from_state(
    point: MeasurementPoint,
    state: GridState,
    *,
    device_id: str | None = None,
    accuracy: MeterAccuracy = IDEAL,
    rng: np.random.Generator | None = None,
    ts: datetime | None = None,
    seq: int = 0,
) -> Telemetry:
    """The point's three-phase reading in ``state`` (see :func:`telemetry_from_phasors`)."""
    ph = point_phasors(point, state)
    energised = state.is_energised(point.node_id)
    return telemetry_from_phasors(
        ph[:3],
        ph[3:],
        device_id=device_id or point.id,
        frequency_hz=float(state.frequency_hz) if energised else None,
        accuracy=accuracy,
        rng=rng,
        ts=ts,
        seq=seq,
    )


def customer_telemetry(
    customer_id: str,
    node_id: str,
    phase: str,
    p_w: float,
    q_var: float,
    relay_on: bool,
    state: GridState,
    **kw: object,
) -> Telemetry:
    """A single-phase customer meter (seed 002 operator unit): the voltage of the phase it is
    connected to and the current its constant-power load draws at that voltage while the relay
    is closed and the node is supplied."""
    k = "abc".index(phase)
    v = complex(state.node_voltage(node_id)[k])
    energised = state.is_energised(node_id) and abs(v) > 1e-6
    i = complex(np.conj(complex(p_w, q_var) / v)) if relay_on and energised else 0j
    kw.setdefault("device_id", customer_id)
    return telemetry_from_phasors(
        np.array([v]),
        np.array([i]),
        frequency_hz=float(state.frequency_hz) if energised else None,
        phase=phase,
        relay_closed=relay_on,
        **kw,  # type: ignore[arg-type]
    )
