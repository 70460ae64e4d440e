"""The meter's own DSP (gridedge.dsp) against signals with known phasors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridedge.dsp import cycle_rms, dft_phasors, samples_per_cycle, sliding_dft_phasors


def cosine(mag_rms: float, angle: float, rate: float, n: int, f: float = 50.0) -> np.ndarray:
    t = np.arange(n) / rate
    return math.sqrt(2) * mag_rms * np.cos(2 * math.pi * f * t + angle)


@pytest.mark.parametrize("rate", [3200.0, 6400.0, 4000.0])
def test_full_cycle_dft_is_exact_for_a_sinusoid(rate: float) -> None:
    x = cosine(230.0, 0.7, rate, 400)
    ph = dft_phasors(x, rate)
    assert abs(ph) == pytest.approx(230.0, rel=1e-12)
    assert np.angle(ph) == pytest.approx(0.7, abs=1e-12)
    # any later cycle gives the same phasor (angles referenced to sample 0)
    assert dft_phasors(x, rate, start=37) == pytest.approx(ph, rel=1e-12)


def test_dft_rejects_dc_and_harmonics_and_t0_rotates() -> None:
    rate = 3200.0
    x = cosine(100.0, -0.3, rate, 64) + 55.0 + cosine(20.0, 1.0, rate, 64, f=150.0)
    ph = dft_phasors(x, rate)
    assert ph == pytest.approx(100.0 * np.exp(-0.3j), rel=1e-12)
    shifted = dft_phasors(x, rate, t0_s=0.005)  # a quarter cycle later: +90°
    assert shifted == pytest.approx(ph * 1j, rel=1e-12)


def test_sliding_dft_matches_single_cycle_dft() -> None:
    rate = 3200.0
    rng = np.random.default_rng(1)
    x = np.vstack([cosine(10.0, 0.2, rate, 300), rng.normal(size=300)])
    sl = sliding_dft_phasors(x, rate)
    assert sl.shape == (2, 300 - 64 + 1)
    for k in (0, 5, 100, 236):
        np.testing.assert_allclose(sl[:, k], dft_phasors(x, rate, start=k), atol=1e-9)


def test_cycle_rms_and_errors() -> None:
    x = cosine(230.0, 0.1, 3200.0, 64 * 5 + 10)
    np.testing.assert_allclose(cycle_rms(x, 3200.0), 230.0, rtol=1e-12)
    assert samples_per_cycle(6400.0, 50.0) == 128
    with pytest.raises(ValueError, match="outside"):
        dft_phasors(x[:50], 3200.0)
    with pytest.raises(ValueError, match="fewer than 4"):
        samples_per_cycle(100.0, 50.0)
