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


def measured_phasors(
    point: MeasurementPoint,
    state: GridState,
    accuracy: MeterAccuracy = IDEAL,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(6,) phasors (va..vc, ia..ic) as the meter measures them, referenced to its phase-a
    voltage, with the class error applied."""
    ph = point_phasors(point, state)
    ref = ph[0]
    if abs(ref) > 1e-9:
        ph = ph * (abs(ref) / ref)
    if accuracy.accuracy_class > 0:
        rng = rng if rng is not None else np.random.default_rng()
        sigma = accuracy.accuracy_class / 300.0
        mag = 1.0 + rng.normal(0.0, sigma, 6)
        ang = rng.normal(0.0, sigma, 6)
        ph = ph * mag * np.exp(1j * ang)
    return ph


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
    """The point's reading in ``state``: per-phase RMS V and I, P = Re(V·I*), Q = Im(V·I*),
    PF = P/|S| (sign of P: negative = export), angles in degrees relative to Va, frequency."""
    ph = measured_phasors(point, state, accuracy, rng)
    v, i = ph[:3], ph[3:]
    s = v * np.conj(i)
    abs_s = np.abs(s)
    pf = np.where(abs_s > 1e-9, s.real / np.where(abs_s > 1e-9, abs_s, 1.0), 1.0)
    freq = float(state.frequency_hz)
    if accuracy.frequency_sigma_hz > 0:
        rng = rng if rng is not None else np.random.default_rng()
        freq += float(rng.normal(0.0, accuracy.frequency_sigma_hz))

    def deg(z: np.ndarray) -> list[float]:
        return [
            math.degrees(a) if abs(x) > 1e-9 else 0.0 for a, x in zip(np.angle(z), z, strict=True)
        ]

    kw: dict[str, object] = {}
    if ts is not None:
        kw["ts"] = ts
    return Telemetry(
        device_id=device_id or point.id,
        seq=seq,
        voltage_v=[float(x) for x in np.abs(v)],
        current_a=[float(x) for x in np.abs(i)],
        active_power_w=[float(x) for x in s.real],
        reactive_power_var=[float(x) for x in s.imag],
        power_factor=[float(x) for x in pf],
        voltage_angle_deg=deg(v),
        current_angle_deg=deg(i),
        frequency_hz=freq if state.is_energised(point.node_id) else None,
        **kw,  # type: ignore[arg-type]
    )
