"""What a meter computes from its own samples: RMS, phasors, powers, frequency.

Shared by the replay backend (its ``read_rms``) and the fault-capture app, so both follow the
phasor convention of :mod:`gridedge.dsp` and the twin: ``x(t) = √2·|X|·cos(ω·t + ∠X)`` with ``t``
the absolute UTC epoch time. Referencing every cycle to the epoch (not to its own first sample)
is what makes a pre-fault and a during-fault phasor — taken from different cycles — comparable,
which the fault locator's ``I_F = I_during − I_pre`` depends on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gridedge.dsp import dft_phasors, samples_per_cycle


def epoch_turns(time_ns: int, frequency_hz: float) -> float:
    """ω·t / 2π modulo 1 at absolute time ``time_ns``, exact for any epoch (a float ω·t at
    t ≈ 1.7e9 s would lose a few hundredths of a degree)."""
    f = Fraction(frequency_hz).limit_denominator(1_000_000)
    return float((time_ns * f / 1_000_000_000) % 1)


def epoch_phasors(
    samples: np.ndarray,
    rate_hz: float,
    frequency_hz: float,
    *,
    start: int,
    first_sample_ns: int,
) -> np.ndarray:
    """One-cycle DFT phasors of ``samples[..., start:start+N]`` referenced to the epoch.

    ``first_sample_ns`` is the UTC time of ``samples[..., 0]``."""
    ph = dft_phasors(samples, rate_hz, frequency_hz, start=start)  # referenced to sample 0
    # x = √2|X0| cos(ω(t − t_s) + φ0) = √2|X0| cos(ωt + φ0 − ω·t_s): rotate by −ω·t_s
    theta = 2 * math.pi * epoch_turns(first_sample_ns, frequency_hz)
    return ph * np.exp(-1j * theta)


@dataclass(frozen=True)
class CycleMeasurement:
    """Per-phase results over the last ``cycles`` whole cycles of a stretch of samples."""

    voltage_rms: np.ndarray
    current_rms: np.ndarray
    voltage_phasor: np.ndarray
    current_phasor: np.ndarray
    active_power_w: np.ndarray
    reactive_power_var: np.ndarray
    power_factor: np.ndarray
    frequency_hz: float | None


def measure_cycles(
    v: np.ndarray,
    i: np.ndarray,
    rate_hz: float,
    nominal_hz: float,
    *,
    end: int,
    cycles: int,
    first_sample_ns: int,
) -> CycleMeasurement:
    """Measure ``cycles`` whole cycles ending (exclusive) at sample ``end``.

    ``v`` and ``i`` are (phases, n). P is the true mean of v·i (all harmonics), Q the
    fundamental's Im(V·I*), PF = P/(Vrms·Irms) (0 when no current flows). Frequency comes from the
    phase advance of the strongest voltage between the last two cycles (needs two cycles of data,
    else None)."""
    n = samples_per_cycle(rate_hz, nominal_hz)
    width = n * cycles
    if end < n:
        raise ValueError(f"need at least one cycle ({n} samples) of data, have {end}")
    start = max(0, end - width)
    vs, is_ = v[:, start:end], i[:, start:end]
    v_rms = np.sqrt(np.mean(vs**2, axis=1))
    i_rms = np.sqrt(np.mean(is_**2, axis=1))
    p = np.mean(vs * is_, axis=1)
    vph = epoch_phasors(v, rate_hz, nominal_hz, start=end - n, first_sample_ns=first_sample_ns)
    iph = epoch_phasors(i, rate_hz, nominal_hz, start=end - n, first_sample_ns=first_sample_ns)
    q = np.imag(vph * np.conj(iph))
    s = v_rms * i_rms
    pf = np.where(s > 1e-9, p / np.where(s > 1e-9, s, 1.0), 0.0)
    freq: float | None = None
    if end >= 2 * n:
        k = int(np.argmax(v_rms))
        if v_rms[k] > 1e-6:
            a = dft_phasors(v[k, end - 2 * n : end - n], rate_hz, nominal_hz)
            b = dft_phasors(v[k, end - n : end], rate_hz, nominal_hz)
            # each phasor is referenced to its own first sample, one nominal period apart
            if abs(a) > 1e-9 and abs(b) > 1e-9:  # not across a supply interruption
                dphi = float(np.angle(b / a))
                freq = nominal_hz + dphi * rate_hz / (2 * math.pi * n)
    return CycleMeasurement(v_rms, i_rms, vph, iph, p, q, pf, freq)


def half_cycle_rms(samples: np.ndarray, rate_hz: float, nominal_hz: float) -> np.ndarray:
    """One-cycle RMS refreshed every half cycle (IEC 61000-4-30 ``Urms(1/2)``), per channel:
    (channels, positions). The sag minimum a meter logs is the min over positions."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    n = samples_per_cycle(rate_hz, nominal_hz)
    half = max(1, n // 2)
    if x.shape[1] < n:
        raise ValueError(f"need at least one cycle ({n} samples), got {x.shape[1]}")
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x**2, axis=1)], axis=1)
    starts = np.arange(0, x.shape[1] - n + 1, half)
    return np.sqrt(np.maximum((c[:, starts + n] - c[:, starts]) / n, 0.0))


def locate_inception(
    samples: np.ndarray,
    rate_hz: float,
    nominal_hz: float,
    *,
    relative: float = 0.1,
    floor: np.ndarray | None = None,
) -> int | None:
    """First sample where any channel departs from its own value one cycle earlier.

    The cycle-difference ("superimposed quantity") detector used by relays: in steady state
    x[k] − x[k−N] ≈ 0; a fault makes it jump at once. The threshold per channel is the largest
    of ``relative`` × the channel's peak over the first cycle, 3 × the largest difference seen
    over the first cycle of differences (the channel's own noise and quantisation: a small load
    current on a DAQ ranged for fault currents is only a few codes), and ``floor`` (absolute,
    per channel, e.g. a few ADC steps). Returns None when nothing changes."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    n = samples_per_cycle(rate_hz, nominal_hz)
    if x.shape[1] < 3 * n:
        return None
    d = np.abs(x[:, n:] - x[:, :-n])
    peak = np.max(np.abs(x[:, :n]), axis=1)
    thr = np.maximum(relative * peak, 3.0 * np.max(d[:, :n], axis=1))
    if floor is not None:
        thr = np.maximum(thr, floor)
    thr = np.maximum(thr, 1e-9)
    hits = d[:, n:] > thr[:, None]  # the first cycle of differences is the noise reference
    first = [int(np.argmax(h)) for h in hits if h.any()]
    if not first:
        return None
    return min(first) + 2 * n


def ls_phasors(
    samples: np.ndarray,
    rate_hz: float,
    frequency_hz: float,
    *,
    start: int,
    first_sample_ns: int,
    cycles: float = 1.0,
    poly_order: int = 2,
) -> np.ndarray:
    """Epoch-referenced phasors by least squares over ``cycles`` cycles from ``start``, with a
    polynomial (order ``poly_order``) absorbing the decaying DC offset of a fault current.

    A full-cycle DFT rejects a constant but not a decaying exponential: right after inception it
    errs by several per cent at X/R ≥ 5. Expanding ``A·e^{−t/τ}`` to a low-order polynomial over the
    cycle and fitting it together with the fundamental (``numpy.linalg.lstsq``) removes most of
    that error without knowing τ."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    n = round(samples_per_cycle(rate_hz, frequency_hz) * cycles)
    if start < 0 or start + n > x.shape[1]:
        raise ValueError(f"window [{start}, {start + n}) is outside the {x.shape[1]}-sample record")
    k = np.arange(start, start + n)
    theta = 2 * math.pi * (epoch_turns(first_sample_ns, frequency_hz) + frequency_hz * k / rate_hz)
    tau = (k - start) / n
    cols = [np.cos(theta), np.sin(theta)] + [tau**p for p in range(poly_order + 1)]
    design = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(design, x[:, start : start + n].T, rcond=None)
    # x ≈ √2·Re(X·e^{jθ}) = √2·(Xr·cos θ − Xi·sin θ)
    return (coef[0] - 1j * coef[1]) / math.sqrt(2)
