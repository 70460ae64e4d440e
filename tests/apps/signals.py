"""Synthesized three-phase samples with known phasors: the ground truth of the app tests.

x(t) = √2·|X|·cos(ω·t + ∠X) with t the absolute epoch time, the convention of the twin and of
:mod:`gridedge.dsp`; a record is a list of segments, each with its own phasors from a start time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SHIFT = np.exp(-2j * np.pi / 3 * np.arange(3))  # a, b, c


def balanced(magnitude: float, angle_deg: float = 0.0) -> np.ndarray:
    return magnitude * np.exp(1j * math.radians(angle_deg)) * SHIFT


def synthesize(
    segments: list[tuple[float, np.ndarray, np.ndarray]],
    *,
    start_ns: int,
    duration_s: float,
    rate_hz: float = 3200.0,
    f_hz: float = 50.0,
    noise: float = 0.0,
    seed: int = 1,
) -> np.ndarray:
    """segments: (start_s relative to the record, V phasors (3,), I phasors (3,)). Returns
    (6, n) samples va vb vc ia ib ic."""
    n = round(duration_s * rate_hz)
    k = np.arange(n)
    # ω·t for absolute t, computed without losing precision at t ≈ 1.7e9 s
    turns0 = (start_ns % 1_000_000_000_000) / 1e9 * f_hz % 1.0
    theta = 2 * np.pi * (turns0 + f_hz * k / rate_hz)
    t_rel = k / rate_hz
    out = np.zeros((6, n))
    for m, (t0, v, i) in enumerate(segments):
        t1 = segments[m + 1][0] if m + 1 < len(segments) else math.inf
        sel = (t_rel >= t0) & (t_rel < t1)
        ph = np.concatenate([v, i])
        out[:, sel] = np.sqrt(2) * np.real(ph[:, None] * np.exp(1j * theta[sel])[None, :])
    if noise:
        rng = np.random.default_rng(seed)
        out += rng.normal(0.0, noise, out.shape) * np.max(np.abs(out), axis=1, keepdims=True)
    return out


def two_node_state(u: np.ndarray, i: np.ndarray, t_ns: int) -> Any:
    """A twin GridState of one line N1–N2 carrying ``i`` at voltage ``u`` on both ends: what the
    twin's DAQ model needs to synthesize a meter's window at N1."""
    from gridedge.twin.state import GridState

    return GridState(
        node_ids=("N1", "N2"),
        u=np.array([u, u]),
        branch_ids=("L1",),
        i_from=np.array([i]),
        i_to=np.array([-i]),
        energised=np.array([True, True]),
        time_ns=t_ns,
    )
