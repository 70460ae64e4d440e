"""The simulated DAQ of a meter: sampled voltage and current waveforms from the twin's phasors.

The twin computes steady-state phasors (pre-fault, during fault, after the breaker trips). A real
3SMA sees instantaneous samples instead, and everything between the grid and its phasor
estimate distorts them: the fault's DC offset, the instrument transformers' ratio and phase
errors, analog noise, the simulator's zero-order hold (Opal-RT outputs change every 250 µs,
seed 003 §III-A) and the ADC's resolution and range. This module models exactly that chain, so a
meter app computes its own phasors from codes (seed 003 §III-B) and its accuracy can be measured
against the twin's ground truth.

Time reference: every waveform is ``√2·|X|·cos(ω·t + ∠X)`` with ``t`` the absolute (epoch) time of
the sample, so a given instant is the same point on wave in every window and at every
measurement point, and windows of different meters share one angle reference (the twin's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np

from gridedge.contracts.waveform import CHANNELS, WaveformWindow
from gridedge.dsp import dft_phasors, samples_per_cycle
from gridedge.twin.state import GridState, MeasurementPoint

TransitionKind = Literal["fault", "interrupt", "step"]

MAX_WINDOW_S = 10.0
MAX_RATE_HZ = 1_000_000.0


@dataclass(frozen=True)
class DaqSpec:
    """The acquisition board. Full scale is the physical peak value (primary side unless
    ``secondary``) at the top ADC code; ``None`` picks a range from the window's own phasors
    (2× the highest voltage peak, 2.5× the highest current peak, which leaves room for a full DC
    offset), as an engineer would set the range for a recording. Fix it to emulate a board whose
    range was chosen for normal load (then a fault clips, and the clipped samples are counted)."""

    rate_hz: float = 3200.0
    adc_bits: int = 12
    v_full_scale_v: float | None = None
    i_full_scale_a: float | None = None
    noise_lsb_rms: float = 0.0
    hold_step_s: float | None = None  # e.g. 250e-6: the simulator's analog output is a staircase
    secondary: bool = False  # report secondary values (divided by the point's VT/CT ratio)

    def __post_init__(self) -> None:
        if not 0 < self.rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate_hz must be in (0, {MAX_RATE_HZ:g}], got {self.rate_hz}")
        if not 8 <= self.adc_bits <= 24:
            raise ValueError(f"adc_bits must be in [8, 24], got {self.adc_bits}")
        for name in ("v_full_scale_v", "i_full_scale_a", "hold_step_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if self.noise_lsb_rms < 0:
            raise ValueError(f"noise_lsb_rms must be >= 0, got {self.noise_lsb_rms}")


def _triple(v: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(v, int | float):
        return (float(v),) * 3  # type: ignore[return-value]
    t = tuple(float(x) for x in v)
    if len(t) != 3:
        raise ValueError("per-phase errors need 3 values (a, b, c)")
    return t  # type: ignore[return-value]


# IEC 61869-2 (CT) / 61869-3 (VT) limits at rated current/voltage: class -> (ratio %, phase minutes)
CT_CLASS_LIMITS = {0.1: (0.1, 5.0), 0.2: (0.2, 10.0), 0.5: (0.5, 30.0), 1.0: (1.0, 60.0)}
VT_CLASS_LIMITS = {0.1: (0.1, 5.0), 0.2: (0.2, 10.0), 0.5: (0.5, 20.0), 1.0: (1.0, 40.0)}


@dataclass(frozen=True)
class InstrumentTransformers:
    """Ratio error (fraction: +0.005 reads 0.5 % high) and phase displacement (rad, positive =
    secondary leads) per phase, for the voltage and current transformers."""

    vt_ratio_error: tuple[float, float, float] = (0.0, 0.0, 0.0)
    vt_phase_error_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ct_ratio_error: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ct_phase_error_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def uniform(
        cls,
        *,
        vt_ratio_error: float | Sequence[float] = 0.0,
        vt_phase_error_rad: float | Sequence[float] = 0.0,
        ct_ratio_error: float | Sequence[float] = 0.0,
        ct_phase_error_rad: float | Sequence[float] = 0.0,
    ) -> InstrumentTransformers:
        return cls(
            _triple(vt_ratio_error),
            _triple(vt_phase_error_rad),
            _triple(ct_ratio_error),
            _triple(ct_phase_error_rad),
        )

    @classmethod
    def from_class(
        cls, vt_class: float = 0.5, ct_class: float = 0.5, *, rng: np.random.Generator
    ) -> InstrumentTransformers:
        """Errors drawn uniformly within the accuracy class limits (one draw per phase: a real
        transformer's error is fixed, not noise)."""
        try:
            vr, vp = VT_CLASS_LIMITS[vt_class]
            cr, cp = CT_CLASS_LIMITS[ct_class]
        except KeyError as exc:
            raise ValueError(
                f"accuracy class {exc.args[0]} unknown; known: {sorted(CT_CLASS_LIMITS)}"
            ) from None
        arcmin = math.pi / (180 * 60)

        def draw(lim: float) -> tuple[float, float, float]:
            return tuple(rng.uniform(-lim, lim, 3))  # type: ignore[return-value]

        return cls(draw(vr / 100), draw(vp * arcmin), draw(cr / 100), draw(cp * arcmin))

    def factors(self) -> np.ndarray:
        """Complex gain per channel (va, vb, vc, ia, ib, ic)."""
        r = np.array(self.vt_ratio_error + self.ct_ratio_error)
        p = np.array(self.vt_phase_error_rad + self.ct_phase_error_rad)
        return (1.0 + r) * np.exp(1j * p)


@dataclass(frozen=True)
class Segment:
    """From ``start_ns`` on, the grid is in ``state``. ``kind`` says how it got there:
    ``fault`` — currents keep their instantaneous value and the difference decays as a DC offset
    (an inductive circuit's current cannot jump); ``interrupt`` — a breaker opens, each phase's
    current stops at its next zero crossing (voltages follow when the last pole clears);
    ``step`` — everything jumps at once (e.g. a switch closing on a load)."""

    start_ns: int
    state: GridState
    kind: TransitionKind = "step"


@dataclass
class Synthesis:
    """A synthesised window and what the DAQ did to it."""

    window: WaveformWindow
    clipped: np.ndarray  # samples clipped per channel
    analog: np.ndarray  # (6, n) the analog signal at the ADC input, before noise and quantisation
    tau_s: float | None = None  # DC-offset time constant used at the fault transition
    transitions_ns: dict[str, list[int]] = field(default_factory=dict)


def point_phasors(point: MeasurementPoint, state: GridState) -> np.ndarray:
    """(6,) complex RMS phasors the point sees: va, vb, vc (V line-to-ground), ia, ib, ic (A
    flowing from the point's node into its branch). A voltage-only point reads zero current."""
    v = np.asarray(state.node_voltage(point.node_id), dtype=complex)
    if point.branch_id is None:
        i = np.zeros(3, dtype=complex)
    else:
        i = np.asarray(state.branch_current(point.branch_id, point.end), dtype=complex)
    out = np.concatenate([v, i])
    return np.nan_to_num(out, nan=0.0)


def estimate_x_over_r(pre: np.ndarray, during: np.ndarray) -> float:
    """X/R of the fault loop as the meter sees it, from its own pre- and during-fault phasors:
    source side ``−ΔV/ΔI`` plus fault side ``V/I`` on the phase whose current changed most. The
    phasor solution carries no impedances, so this is an estimate; pass ``x_over_r`` to
    :func:`synthesize` when the grid model knows better."""
    dv = during[:3] - pre[:3]
    di = during[3:] - pre[3:]
    p = int(np.argmax(np.abs(di)))
    if abs(di[p]) < 1e-9 or abs(during[3 + p]) < 1e-9:
        return 3.0
    z = -dv[p] / di[p] + during[p] / during[3 + p]
    if not (np.isfinite(z) and z.real > 1e-12):
        return 3.0
    return float(np.clip(z.imag / z.real, 0.1, 50.0))


def _angle_at(start_ns: int, frequency_hz: float) -> float:
    """ω·t mod 2π at absolute time ``start_ns``, exact for any epoch (float ω·t is not)."""
    f = Fraction(frequency_hz).limit_denominator(1_000_000)
    turns = (start_ns * f / 1_000_000_000) % 1
    return 2 * math.pi * float(turns)


class _Channel:
    """Piecewise definition of one channel: from ``starts[k]`` (s, relative to the window's
    start) the value is ``√2·Re(ph[k]·e^{jθ(t)}) + dc[k]·exp(−(t − starts[k])/tau[k])``."""

    def __init__(self) -> None:
        self.starts: list[float] = [-math.inf]
        self.ph: list[complex] = [0j]
        self.dc: list[float] = [0.0]
        self.tau: list[float] = [1.0]

    def add(self, start: float, ph: complex, dc: float = 0.0, tau: float = 1.0) -> None:
        self.starts.append(start)
        self.ph.append(ph)
        self.dc.append(dc)
        self.tau.append(tau)

    def value(self, t: np.ndarray, theta0: float, omega: float) -> np.ndarray:
        starts = np.asarray(self.starts)
        k = np.searchsorted(starts, t, side="right") - 1
        ph = np.asarray(self.ph)[k]
        out = np.sqrt(2.0) * np.real(ph * np.exp(1j * (theta0 + omega * t)))
        dc = np.asarray(self.dc)[k]
        has = dc != 0.0
        if np.any(has):
            s = starts[k][has]
            out[has] += dc[has] * np.exp(-(t[has] - s) / np.asarray(self.tau)[k][has])
        return out


def _first_zero_after(ch: _Channel, t0: float, theta0: float, omega: float, f0: float) -> float:
    """First zero crossing of a channel at or after ``t0`` (within one cycle; a breaker pole
    interrupts at current zero)."""
    grid = t0 + np.linspace(0.0, 1.0 / f0, 401)
    y = ch.value(grid, theta0, omega)
    if abs(y[0]) < 1e-12:
        return t0
    s = np.nonzero(np.signbit(y[1:]) != np.signbit(y[:-1]))[0]
    if s.size == 0:
        return t0  # no zero within a cycle (pure DC, or zero current): open at once
    j = int(s[0])
    return float(grid[j] - y[j] * (grid[j + 1] - grid[j]) / (y[j + 1] - y[j]))


def synthesize(
    point: MeasurementPoint,
    segments: Sequence[Segment],
    *,
    start_ns: int,
    duration_s: float,
    daq: DaqSpec | None = None,
    transformers: InstrumentTransformers | None = None,
    x_over_r: float | None = None,
    inception_ns: int | None = None,
    rng: np.random.Generator | None = None,
) -> Synthesis:
    """Sample ``point`` over ``[start_ns, start_ns + duration_s)`` through a sequence of grid
    states (the first applies from −∞). Vectorised: a 1-s window at 3.2 kHz is 19 200 samples."""
    daq = daq or DaqSpec()
    if not segments:
        raise ValueError("segments: at least one grid state is needed")
    if not 0 < duration_s <= MAX_WINDOW_S:
        raise ValueError(f"duration_s must be in (0, {MAX_WINDOW_S:g}] s, got {duration_s}")
    rng = rng if rng is not None else np.random.default_rng()
    f0 = float(segments[0].state.frequency_hz)
    omega = 2 * math.pi * f0
    theta0 = _angle_at(start_ns, f0)
    tf = transformers.factors() if transformers is not None else np.ones(6, dtype=complex)
    ratio = np.array([point.vt_ratio] * 3 + [point.ct_ratio] * 3, dtype=float)
    div = ratio if daq.secondary else np.ones(6)

    phasors = [point_phasors(point, s.state) * tf / div for s in segments]
    channels = [_Channel() for _ in range(6)]
    for c in range(6):
        channels[c].ph[0] = phasors[0][c]
    tau_used: float | None = None
    transitions: dict[str, list[int]] = {}
    for k in range(1, len(segments)):
        seg = segments[k]
        ts = (seg.start_ns - start_ns) / 1e9
        new = phasors[k]
        transitions.setdefault(seg.kind, []).append(seg.start_ns)
        if seg.kind == "fault":
            xr = x_over_r if x_over_r is not None else estimate_x_over_r(phasors[k - 1], new)
            tau = xr / omega
            tau_used = tau
            for c in range(3):
                channels[c].add(ts, new[c])
            for c in range(3, 6):
                now = float(channels[c].value(np.array([ts]), theta0, omega)[0])
                ac = float(np.sqrt(2.0) * np.real(new[c] * np.exp(1j * (theta0 + omega * ts))))
                channels[c].add(ts, new[c], now - ac, tau)
        elif seg.kind == "interrupt":
            t_last = ts
            for c in range(3, 6):
                tz = _first_zero_after(channels[c], ts, theta0, omega, f0)
                channels[c].add(tz, new[c])
                t_last = max(t_last, tz)
            for c in range(3):
                channels[c].add(t_last, new[c])
        else:
            for c in range(6):
                channels[c].add(ts, new[c])

    n = round(duration_s * daq.rate_hz)
    if n < 1:
        raise ValueError("duration_s × rate_hz gives no sample")
    t = np.arange(n) / daq.rate_hz
    if daq.hold_step_s is not None:
        step_ns = round(daq.hold_step_s * 1e9)
        abs_ns = start_ns + np.round(t * 1e9).astype(np.int64)
        t = ((abs_ns // step_ns) * step_ns - start_ns) / 1e9
    analog = np.empty((6, n))
    for c in range(6):
        analog[c] = channels[c].value(t, theta0, omega)

    # ADC range and quantisation
    half = 2 ** (daq.adc_bits - 1)
    peak_v = max(float(np.max(np.abs(p[:3]))) for p in phasors) * np.sqrt(2.0)
    peak_i = max(float(np.max(np.abs(p[3:]))) for p in phasors) * np.sqrt(2.0)
    vt_div = point.vt_ratio if daq.secondary else 1.0
    ct_div = point.ct_ratio if daq.secondary else 1.0
    fs_v = daq.v_full_scale_v / vt_div if daq.v_full_scale_v else 2.0 * peak_v or 1.0
    fs_i = daq.i_full_scale_a / ct_div if daq.i_full_scale_a else 2.5 * peak_i or 1.0
    scale = np.array([fs_v] * 3 + [fs_i] * 3) / half
    x = analog
    if daq.noise_lsb_rms > 0:
        x = x + rng.normal(0.0, 1.0, size=x.shape) * (daq.noise_lsb_rms * scale[:, None])
    raw = np.rint(x / scale[:, None])
    lo, hi = -half, half - 1
    clipped = np.sum((raw < lo) | (raw > hi), axis=1)
    codes = np.clip(raw, lo, hi).astype(np.int32)

    inc_idx = None
    if inception_ns is not None:
        inc_idx = math.ceil((inception_ns - start_ns) * daq.rate_hz / 1e9 - 1e-9)
        if not 0 <= inc_idx < n:
            inc_idx = None
    window = WaveformWindow.from_codes(
        codes,
        [float(s) for s in scale],
        point_id=point.id,
        sampling_rate_hz=daq.rate_hz,
        start_ns=start_ns,
        nominal_frequency_hz=f0,
        channels=list(CHANNELS),
        units=["V", "V", "V", "A", "A", "A"],
        adc_bits=daq.adc_bits,
        inception_index=inc_idx,
        primary_ratio=[float(r) for r in ratio] if daq.secondary else None,
    )
    return Synthesis(window, clipped, analog, tau_used, transitions)


def inception_at_angle(
    point: MeasurementPoint, pre: GridState, not_before_ns: int, angle_deg: float
) -> int:
    """The first instant ≥ ``not_before_ns`` at which phase a's voltage at the point is at
    ``angle_deg`` on its wave, sine convention: 0° = rising zero crossing (largest DC offset in an
    inductive circuit), 90° = positive peak."""
    f0 = pre.frequency_hz
    va = point_phasors(point, pre)[0]
    # v(t) = √2|V|cos(ωt + φ) = √2|V|sin(ωt + φ + π/2); want ωt + φ + π/2 ≡ α (mod 2π)
    now = _angle_at(not_before_ns, f0) + np.angle(va) + math.pi / 2
    delta = (math.radians(angle_deg) - now) % (2 * math.pi)
    return not_before_ns + round(delta / (2 * math.pi * f0) * 1e9)


def synthesize_window(
    point: MeasurementPoint,
    pre: GridState,
    during: GridState | None = None,
    *,
    rate_hz: float | None = None,
    pre_s: float = 0.5,
    post_s: float = 0.5,
    inception_ns: int | None = None,
    inception_angle_deg: float | None = None,
    post_trip: GridState | None = None,
    trip_ns: int | None = None,
    daq: DaqSpec | None = None,
    adc_bits: int | None = None,
    noise_lsb_rms: float | None = None,
    transformers: InstrumentTransformers | None = None,
    x_over_r: float | None = None,
    rng: np.random.Generator | None = None,
) -> WaveformWindow:
    """A fault record as the meter's DAQ captures it: ``pre_s`` of pre-fault cycles, inception at
    ``inception_ns`` (default ``during.time_ns``, or ``pre.time_ns`` if that is 0; moved to the
    next ``inception_angle_deg`` point on wave if given), the during-fault state with the current
    DC offset, and — if ``post_trip`` is given — the breaker interrupting at ``trip_ns``.
    Without ``during`` it is a steady window centred on ``inception_ns``/``pre.time_ns``.
    ``rate_hz``, ``adc_bits`` and ``noise_lsb_rms`` override the ``daq`` fields (default
    :class:`DaqSpec`: 3.2 kHz, 12 bit, no noise). Use :func:`synthesize_fault` to also get the
    clipping count."""
    return synthesize_fault(
        point,
        pre,
        during,
        rate_hz=rate_hz,
        pre_s=pre_s,
        post_s=post_s,
        inception_ns=inception_ns,
        inception_angle_deg=inception_angle_deg,
        post_trip=post_trip,
        trip_ns=trip_ns,
        daq=daq,
        adc_bits=adc_bits,
        noise_lsb_rms=noise_lsb_rms,
        transformers=transformers,
        x_over_r=x_over_r,
        rng=rng,
    ).window


def synthesize_fault(
    point: MeasurementPoint,
    pre: GridState,
    during: GridState | None = None,
    *,
    rate_hz: float | None = None,
    pre_s: float = 0.5,
    post_s: float = 0.5,
    inception_ns: int | None = None,
    inception_angle_deg: float | None = None,
    post_trip: GridState | None = None,
    trip_ns: int | None = None,
    daq: DaqSpec | None = None,
    adc_bits: int | None = None,
    noise_lsb_rms: float | None = None,
    transformers: InstrumentTransformers | None = None,
    x_over_r: float | None = None,
    rng: np.random.Generator | None = None,
) -> Synthesis:
    """:func:`synthesize_window` returning the full :class:`Synthesis`."""
    daq = daq or DaqSpec()
    overrides = {"rate_hz": rate_hz, "adc_bits": adc_bits, "noise_lsb_rms": noise_lsb_rms}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        daq = DaqSpec(**{**daq.__dict__, **overrides})
    if pre_s < 0 or post_s < 0:
        raise ValueError("pre_s and post_s must be >= 0")
    if during is not None and during.frequency_hz != pre.frequency_hz:
        raise ValueError("pre and during states have different frequencies")
    t_ref = inception_ns
    if t_ref is None:
        t_ref = during.time_ns if during is not None and during.time_ns else pre.time_ns
    if during is not None and inception_angle_deg is not None:
        t_ref = inception_at_angle(point, pre, t_ref, inception_angle_deg)
    start_ns = t_ref - round(pre_s * 1e9)
    segments = [Segment(start_ns, pre)]
    if during is not None:
        segments.append(Segment(t_ref, during, "fault"))
        if post_trip is not None:
            t_trip = trip_ns if trip_ns is not None else post_trip.time_ns
            if t_trip < t_ref:
                raise ValueError("trip_ns is before fault inception")
            segments.append(Segment(t_trip, post_trip, "interrupt"))
    return synthesize(
        point,
        segments,
        start_ns=start_ns,
        duration_s=pre_s + post_s,
        daq=daq,
        transformers=transformers,
        x_over_r=x_over_r,
        inception_ns=t_ref if during is not None else None,
        rng=rng,
    )


def window_phasors(window: WaveformWindow, start: int, *, primary: bool = True) -> np.ndarray:
    """(6,) one-cycle DFT phasors of a window from sample ``start``, with the angle referenced
    to the twin's absolute time (so they compare directly with the GridState's phasors) and, if
    the window holds secondary values and ``primary``, scaled back to primary."""
    values = window.values()
    theta0 = _angle_at(window.start_ns, window.nominal_frequency_hz)
    t0 = -theta0 / (2 * math.pi * window.nominal_frequency_hz)
    ph = dft_phasors(
        values, window.sampling_rate_hz, window.nominal_frequency_hz, start=start, t0_s=t0
    )
    if primary and window.primary_ratio:
        ph = ph * np.asarray(window.primary_ratio)
    return ph


def clipped_samples(window: WaveformWindow) -> np.ndarray:
    """Samples per channel sitting on an ADC rail (a clipped DAQ input reads full scale)."""
    codes = window.codes()
    half = 2 ** (window.adc_bits - 1)
    return np.sum((codes <= -half) | (codes >= half - 1), axis=1)


def cycles_in(window: WaveformWindow) -> int:
    return window.n_samples // samples_per_cycle(
        window.sampling_rate_hz, window.nominal_frequency_hz
    )
