"""Signal processing a meter does on its own samples: full-cycle DFT phasors and RMS.

Neutral module (no twin, no node imports) so that meter apps, the twin's tests and the fault
locator all compute phasors the same way — the way the 3SMA does it (seed 003 §III-B: one cycle
of samples before and one cycle after fault inception, full-cycle DFT).

Phasor convention used across gridedge: RMS magnitude, angle of the cosine,
``x(t) = √2·|X|·cos(ω·t + ∠X)``. :func:`dft_phasors` references the angle to the time of the
first sample of the window (``t = 0``); pass ``t0_s`` to reference it elsewhere (e.g. to the twin's
absolute-time reference, see :func:`gridedge.twin.waveforms.window_phasors`).
"""

from __future__ import annotations

import numpy as np


def samples_per_cycle(rate_hz: float, frequency_hz: float = 50.0) -> int:
    """Samples in one nominal cycle (rounded; exact for 3.2/6.4 kHz at 50 Hz)."""
    if rate_hz <= 0 or frequency_hz <= 0:
        raise ValueError("rate_hz and frequency_hz must be > 0")
    n = round(rate_hz / frequency_hz)
    if n < 4:
        raise ValueError(f"rate_hz={rate_hz} gives fewer than 4 samples per cycle")
    return n


def dft_phasors(
    samples: np.ndarray,
    rate_hz: float,
    frequency_hz: float = 50.0,
    *,
    start: int = 0,
    t0_s: float | None = None,
) -> np.ndarray:
    """One-cycle full-cycle DFT phasor of every channel.

    ``samples`` is (n,) or (channels, n); the cycle used is ``samples[..., start:start+N]`` with
    N samples per cycle. A full-cycle DFT rejects DC and every integer harmonic exactly, but not a
    decaying DC offset — which is why a meter takes its "during fault" cycle a little after
    inception, or accepts the error. Returns complex RMS phasors referenced to the first sample of
    ``samples`` (or to ``t0_s`` seconds after it)."""
    x = np.asarray(samples, dtype=np.float64)
    n = samples_per_cycle(rate_hz, frequency_hz)
    if start < 0 or start + n > x.shape[-1]:
        raise ValueError(f"cycle [{start}, {start + n}) is outside the {x.shape[-1]}-sample window")
    k = np.arange(start, start + n)
    kernel = np.exp(-2j * np.pi * frequency_hz * k / rate_hz)
    ph = (np.sqrt(2.0) / n) * (x[..., start : start + n] @ kernel)
    if t0_s is not None:
        ph = ph * np.exp(2j * np.pi * frequency_hz * t0_s)
    return ph


def sliding_dft_phasors(
    samples: np.ndarray, rate_hz: float, frequency_hz: float = 50.0
) -> np.ndarray:
    """Full-cycle DFT phasor for every window position (..., n - N + 1), each referenced to the
    first sample of the whole record, as a meter that tracks phasors sample by sample would."""
    x = np.asarray(samples, dtype=np.float64)
    n = samples_per_cycle(rate_hz, frequency_hz)
    if x.shape[-1] < n:
        raise ValueError(f"need at least one cycle ({n} samples), got {x.shape[-1]}")
    k = np.arange(x.shape[-1])
    rotated = x * np.exp(-2j * np.pi * frequency_hz * k / rate_hz)
    c = np.cumsum(rotated, axis=-1)
    c = np.concatenate([np.zeros((*x.shape[:-1], 1), dtype=complex), c], axis=-1)
    return (np.sqrt(2.0) / n) * (c[..., n:] - c[..., :-n])


def cycle_rms(samples: np.ndarray, rate_hz: float, frequency_hz: float = 50.0) -> np.ndarray:
    """RMS over each consecutive whole cycle (..., n_cycles): what a sag detector logs."""
    x = np.asarray(samples, dtype=np.float64)
    n = samples_per_cycle(rate_hz, frequency_hz)
    m = x.shape[-1] // n
    if m == 0:
        raise ValueError(f"need at least one cycle ({n} samples), got {x.shape[-1]}")
    blocks = x[..., : m * n].reshape(*x.shape[:-1], m, n)
    return np.sqrt(np.mean(blocks**2, axis=-1))
