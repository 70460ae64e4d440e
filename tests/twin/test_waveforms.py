"""Sampled windows against the GridState phasors they come from (hand-built states, no solver)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridedge.dsp import dft_phasors, samples_per_cycle
from gridedge.twin.state import GridState, MeasurementPoint
from gridedge.twin.waveforms import (
    DaqSpec,
    InstrumentTransformers,
    clipped_samples,
    point_phasors,
    synthesize,
    synthesize_fault,
    synthesize_window,
    window_phasors,
)

A = np.exp(-2j * np.pi / 3)
ABC = np.array([1, A, A * A])
T0 = 1_763_700_000_123_456_789  # an arbitrary epoch instant, not on a cycle boundary
POINT = MeasurementPoint("M1", "N1", "L1")


def make_state(
    v: np.ndarray, i: np.ndarray, *, time_ns: int = T0, energised: bool = True
) -> GridState:
    """Two nodes, one branch N1→N2; the meter sits at N1 on L1's from-end."""
    return GridState(
        node_ids=("N1", "N2"),
        u=np.array([v, v * 0.98]),
        branch_ids=("L1",),
        i_from=np.array([i]),
        i_to=np.array([-i]),
        energised=np.array([energised, energised]),
        time_ns=time_ns,
    )


def pre_state() -> GridState:
    return make_state(12_701.7 * ABC * np.exp(0.4j), 85.0 * ABC * np.exp(0.4j - 0.35j))


def fault_state(time_ns: int = T0) -> GridState:
    """SLG on phase a downstream: Va sags, Ia jumps lagging by ~75°."""
    v = 12_701.7 * ABC * np.exp(0.4j) * np.array([0.35, 1.05, 1.04])
    i = 85.0 * ABC * np.exp(0.05j) + np.array([2400.0 * np.exp(0.4j - 1.3j), 0, 0])
    return make_state(v, i, time_ns=time_ns)


def test_pre_fault_phasors_exact_within_quantisation_step() -> None:
    pre = pre_state()
    s = synthesize_fault(POINT, pre, None, pre_s=0.1, post_s=0.1, rng=np.random.default_rng(0))
    w = s.window
    truth = point_phasors(POINT, pre)
    n = samples_per_cycle(w.sampling_rate_hz)
    for start in (0, 17, 5 * n):
        err = np.abs(window_phasors(w, start) - truth)
        # each sample is off by at most half a code, so the DFT is off by at most scale/√2
        assert np.all(err <= np.asarray(w.scale) / math.sqrt(2) + 1e-9), err
    # with a 24-bit ADC the same comparison is exact to 1e-5 relative
    w24 = synthesize_window(POINT, pre, None, pre_s=0.1, post_s=0.1, daq=DaqSpec(adc_bits=24))
    rel = np.abs(window_phasors(w24, 3) / truth - 1)
    assert np.max(rel) < 1e-5


def test_during_fault_phasors_after_dc_offset_decayed() -> None:
    pre, dur = pre_state(), fault_state(T0 + 40_000_000)
    w = synthesize_window(POINT, pre, dur, pre_s=0.2, post_s=0.3, x_over_r=2.0, rate_hz=6400)
    n = samples_per_cycle(6400)
    assert w.inception_index == round(0.2 * 6400)
    start = w.inception_index + 10 * n  # τ = 2/ω ≈ 6.4 ms, ten cycles later the DC is gone
    err = np.abs(window_phasors(w, start) - point_phasors(POINT, dur))
    assert np.all(err <= np.asarray(w.scale) / math.sqrt(2) + 1e-9), err
    # and the pre-fault cycle just before inception still shows the pre-fault state
    err_pre = np.abs(window_phasors(w, w.inception_index - n) - point_phasors(POINT, pre))
    assert np.all(err_pre <= np.asarray(w.scale) / math.sqrt(2) + 1e-9), err_pre


def test_noise_gives_the_expected_phasor_scatter() -> None:
    sigma_lsb = 4.0
    pre = pre_state()
    w = synthesize_window(
        POINT,
        pre,
        None,
        pre_s=0.5,
        post_s=0.5,
        daq=DaqSpec(noise_lsb_rms=sigma_lsb),
        rng=np.random.default_rng(42),
    )
    n = samples_per_cycle(w.sampling_rate_hz)
    truth = point_phasors(POINT, pre)
    errs = np.array([window_phasors(w, k * n) - truth for k in range(w.n_samples // n)])
    rms = np.sqrt(np.mean(np.abs(errs) ** 2, axis=0))
    # white noise of σ (plus 1/12 LSB² of quantisation) through a one-cycle DFT: σ·√(2/N)
    expected = np.sqrt(sigma_lsb**2 + 1 / 12) * np.asarray(w.scale) * math.sqrt(2 / n)
    assert np.all(rms > 0.75 * expected) and np.all(rms < 1.25 * expected), (rms, expected)
    # seeded: the same seed gives the same window
    w2 = synthesize_window(
        POINT, pre, None, pre_s=0.5, post_s=0.5,
        daq=DaqSpec(noise_lsb_rms=sigma_lsb), rng=np.random.default_rng(42),
    )  # fmt: skip
    assert w2.codes_b64 == w.codes_b64


def _inductive_fault(angle_deg: float, x_over_r: float) -> tuple[np.ndarray, float, int]:
    """A bolted fault with a purely inductive loop (current lags Va by 90°), no load before."""
    v = 12_701.7 * ABC
    pre = make_state(v, np.zeros(3, dtype=complex))
    i_f = 3000.0
    dur = make_state(v * np.array([0.1, 1, 1]), np.array([i_f * -1j, 0, 0]))
    s = synthesize_fault(
        POINT, pre, dur, pre_s=0.05, post_s=0.2, inception_angle_deg=angle_deg,
        x_over_r=x_over_r, daq=DaqSpec(adc_bits=16, rate_hz=6400),
    )  # fmt: skip
    assert s.window.inception_index is not None
    return s.window.values()[3], i_f * math.sqrt(2), s.window.inception_index


def test_dc_offset_doubles_the_first_peak_at_voltage_zero_and_vanishes_at_peak() -> None:
    ia, peak, k0 = _inductive_fault(0.0, x_over_r=50.0)
    n = samples_per_cycle(6400)
    first = np.max(np.abs(ia[k0 : k0 + n]))
    assert 1.8 * peak < first < 2.0 * peak  # classic doubling, minus half a cycle of decay
    assert abs(ia[k0]) < 0.05 * peak  # the current does not jump at inception
    ia90, _, k90 = _inductive_fault(90.0, x_over_r=50.0)
    assert np.max(np.abs(ia90[k90 : k90 + n])) < 1.05 * peak


def test_dc_offset_decays_with_the_x_over_r_time_constant() -> None:
    x_over_r = 8.0
    ia, _, k0 = _inductive_fault(0.0, x_over_r)
    n = samples_per_cycle(6400)
    means = [np.mean(ia[k0 + m * n : k0 + (m + 1) * n]) for m in range(4)]
    tau = x_over_r / (2 * math.pi * 50)
    expected = math.exp(-0.02 / tau)  # one cycle later
    for m in range(3):
        assert means[m + 1] / means[m] == pytest.approx(expected, rel=0.02)


def test_inception_index_and_pre_samples_untouched() -> None:
    pre, dur = pre_state(), fault_state()
    inc = T0 + 7_000_000
    w = synthesize_window(POINT, pre, dur, inception_ns=inc, pre_s=0.1, post_s=0.1)
    ref = synthesize_window(
        POINT, pre, None, inception_ns=inc, pre_s=0.1, post_s=0.1,
        daq=DaqSpec(v_full_scale_v=w.scale[0] * 2048, i_full_scale_a=w.scale[3] * 2048),
    )  # fmt: skip
    k = w.inception_index
    assert k == math.ceil(0.1 * 3200)
    assert w.start_ns == inc - 100_000_000
    assert np.array_equal(w.codes()[:, :k], ref.codes()[:, :k])
    assert not np.array_equal(w.codes()[0, k : k + 4], ref.codes()[0, k : k + 4])


def test_point_on_wave_inception() -> None:
    pre, dur = pre_state(), fault_state()
    w = synthesize_window(POINT, pre, dur, inception_angle_deg=90.0, pre_s=0.05, post_s=0.05)
    va_peak = math.sqrt(2) * abs(point_phasors(POINT, pre)[0])
    k = w.inception_index
    # the sample just before inception is at (within one sample of) phase a's positive peak
    assert w.values()[0, k - 1] > va_peak * math.cos(2 * math.pi / 64) - w.scale[0]


def test_clipping_is_counted_and_codes_sit_on_the_rails() -> None:
    pre, dur = pre_state(), fault_state()
    fs = 1000.0  # a range set for load current, far below the 2.4 kA fault
    s = synthesize_fault(POINT, pre, dur, pre_s=0.1, post_s=0.1, daq=DaqSpec(i_full_scale_a=fs))
    w = s.window
    assert s.clipped[3] > 0 and s.clipped[:3].sum() == 0
    assert np.array_equal(clipped_samples(w)[3:4], s.clipped[3:4])
    codes = w.codes()
    assert codes.min() >= -2048 and codes.max() <= 2047
    assert np.max(np.abs(w.values()[3])) <= fs + 1e-9
    k = w.inception_index
    assert np.all(np.abs(w.values()[3, :k]) < fs)  # nothing clipped before the fault
    # where nothing clipped, quantisation error is at most half a code
    ok = np.abs(s.analog) < np.asarray(w.scale)[:, None] * 2047
    err = np.abs(w.values() - s.analog)[ok]
    assert err.max() <= max(w.scale) / 2 + 1e-9


def test_instrument_transformer_errors_applied() -> None:
    pre = pre_state()
    it = InstrumentTransformers.uniform(
        vt_ratio_error=[0.01, -0.005, 0.0], ct_phase_error_rad=0.01, ct_ratio_error=0.002
    )
    w = synthesize_window(
        POINT, pre, None, pre_s=0.05, post_s=0.05, transformers=it, daq=DaqSpec(adc_bits=20)
    )
    ratio = window_phasors(w, 0) / point_phasors(POINT, pre)
    np.testing.assert_allclose(np.abs(ratio[:3]), [1.01, 0.995, 1.0], atol=1e-4)
    np.testing.assert_allclose(np.angle(ratio[:3]), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.abs(ratio[3:]), 1.002, atol=1e-4)
    np.testing.assert_allclose(np.angle(ratio[3:]), 0.01, atol=1e-4)
    # class-drawn errors stay within the class limits
    drawn = InstrumentTransformers.from_class(0.5, 0.5, rng=np.random.default_rng(3))
    assert max(abs(x) for x in drawn.vt_ratio_error) <= 0.005
    assert max(abs(x) for x in drawn.ct_phase_error_rad) <= 30 * math.pi / 180 / 60


def test_secondary_values_and_primary_ratio() -> None:
    point = MeasurementPoint("M1", "N1", "L1", vt_ratio=22000 / 100, ct_ratio=400 / 5)
    pre = pre_state()
    w = synthesize_window(point, pre, None, pre_s=0.05, post_s=0.05, daq=DaqSpec(secondary=True))
    assert w.primary_ratio == pytest.approx([220.0] * 3 + [80.0] * 3)
    sec = window_phasors(w, 0, primary=False)
    assert abs(sec[0]) == pytest.approx(abs(point_phasors(point, pre)[0]) / 220, rel=2e-3)
    prim = window_phasors(w, 0)
    assert abs(prim[3]) == pytest.approx(85.0, rel=5e-3)


def test_zero_order_hold_gives_a_staircase() -> None:
    pre = pre_state()
    daq = DaqSpec(rate_hz=6400, hold_step_s=250e-6, adc_bits=16)
    w = synthesize_window(POINT, pre, None, pre_s=0.05, post_s=0.05, daq=daq)
    changes = np.count_nonzero(np.diff(w.codes()[0]))
    # the signal changes only every 250 µs: ≈ 4000 changes per second, not 6400
    assert abs(changes - 0.1 * 4000) <= 2


def test_breaker_interrupts_each_phase_at_current_zero() -> None:
    pre, dur = pre_state(), fault_state()
    dead = make_state(np.zeros(3, complex), np.zeros(3, complex), energised=False)
    inc = T0
    trip = T0 + 100_000_000
    s = synthesize_fault(
        POINT, pre, dur, post_trip=dead, inception_ns=inc, trip_ns=trip,
        pre_s=0.05, post_s=0.2, daq=DaqSpec(adc_bits=16), x_over_r=3.0,
    )  # fmt: skip
    w = s.window
    vals = w.values()
    k_trip = w.inception_index + round(0.1 * 3200)
    n = samples_per_cycle(3200)
    assert np.all(vals[:, k_trip + n :] == 0.0)  # all poles open within a cycle
    for c in range(3, 6):
        nz = np.nonzero(vals[c])[0]
        last = nz[-1]
        assert last >= k_trip - 1
        peak = np.max(np.abs(vals[c, k_trip - n : k_trip]))
        # the last sample before the pole opens is near a current zero, not at a peak
        assert abs(vals[c, last]) < 0.2 * peak


def test_bad_input_is_refused() -> None:
    pre = pre_state()
    with pytest.raises(ValueError, match="duration_s"):
        synthesize_window(POINT, pre, None, pre_s=6, post_s=6)
    with pytest.raises(ValueError, match="rate_hz"):
        DaqSpec(rate_hz=0)
    with pytest.raises(ValueError, match="adc_bits"):
        DaqSpec(adc_bits=4)
    with pytest.raises(ValueError, match="segments"):
        synthesize(POINT, [], start_ns=0, duration_s=0.1)
    with pytest.raises(ValueError, match="trip_ns"):
        synthesize_window(POINT, pre, fault_state(), post_trip=pre, trip_ns=T0 - 1)


def test_dft_helper_agrees_with_window_reference() -> None:
    """dft_phasors (window-relative angles) and window_phasors (absolute) differ only by the
    rotation of the window's first sample."""
    pre = pre_state()
    w = synthesize_window(POINT, pre, None, pre_s=0.05, post_s=0.05, daq=DaqSpec(adc_bits=20))
    rel = dft_phasors(w.values(), w.sampling_rate_hz)
    ab = window_phasors(w, 0)
    rot = rel / ab
    np.testing.assert_allclose(np.abs(rot), 1.0, atol=1e-9)
    np.testing.assert_allclose(rot / rot[0], 1.0, atol=1e-9)
