"""Meter readings from GridState phasors: powers, angles, accuracy class noise."""

from __future__ import annotations

import numpy as np
import pytest

from gridedge.contracts.telemetry import Telemetry
from gridedge.twin.state import MeasurementPoint
from gridedge.twin.telemetry import MeterAccuracy, telemetry_from_state
from tests.twin.test_waveforms import ABC, POINT, make_state


def unbalanced_state():  # type: ignore[no-untyped-def]
    v = np.array([231.0, 228.0 * np.exp(-2.1j), 233.0 * np.exp(2.05j)]) * np.exp(0.3j)
    i = np.array([12.0 * np.exp(-0.2j), 3.0 * np.exp(-2.5j), 20.0 * np.exp(2.5j)]) * np.exp(0.3j)
    return make_state(v, i), v, i


def test_ideal_meter_reads_the_phasors() -> None:
    state, v, i = unbalanced_state()
    t = telemetry_from_state(POINT, state, device_id="SM-1")
    assert isinstance(t, Telemetry) and t.device_id == "SM-1"
    s = v * np.conj(i)
    np.testing.assert_allclose(t.voltage_v, np.abs(v), rtol=1e-12)
    np.testing.assert_allclose(t.current_a, np.abs(i), rtol=1e-12)
    np.testing.assert_allclose(t.active_power_w, s.real, rtol=1e-9)
    np.testing.assert_allclose(t.reactive_power_var, s.imag, rtol=1e-9)
    np.testing.assert_allclose(t.power_factor, s.real / np.abs(s), rtol=1e-9)
    # angles relative to the meter's own phase-a voltage
    ref = np.angle(v[0])
    exp_v = np.degrees(np.angle(v * np.exp(-1j * ref)))
    exp_i = np.degrees(np.angle(i * np.exp(-1j * ref)))
    np.testing.assert_allclose(t.voltage_angle_deg, exp_v, atol=1e-9)
    np.testing.assert_allclose(t.current_angle_deg, exp_i, atol=1e-9)
    assert t.voltage_angle_deg[0] == pytest.approx(0.0, abs=1e-12)
    assert t.frequency_hz == 50.0
    # the wire form round-trips
    assert Telemetry.from_json(t.to_json()).active_power_w == t.active_power_w


def test_meter_at_the_to_end_sees_the_reverse_flow() -> None:
    state, _, _ = unbalanced_state()
    at_to = MeasurementPoint("M2", "N2", "L1", end="to")
    t_from = telemetry_from_state(POINT, state)
    t_to = telemetry_from_state(at_to, state)
    assert all(a > 0 for a in t_from.active_power_w[:1])
    assert np.sign(t_to.active_power_w[0]) == -np.sign(t_from.active_power_w[0])


def test_accuracy_class_noise_is_seeded_and_sized() -> None:
    state = make_state(230.0 * ABC, 10.0 * ABC * np.exp(-0.2j))
    acc = MeterAccuracy(0.5)
    a = telemetry_from_state(POINT, state, accuracy=acc, rng=np.random.default_rng(7))
    b = telemetry_from_state(POINT, state, accuracy=acc, rng=np.random.default_rng(7))
    assert a.voltage_v == b.voltage_v and a.frequency_hz == b.frequency_hz
    rng = np.random.default_rng(11)
    errs = np.array(
        [
            np.array(telemetry_from_state(POINT, state, accuracy=acc, rng=rng).voltage_v) / 230.0
            - 1
            for _ in range(2000)
        ]
    )
    sigma = errs.std()
    assert sigma == pytest.approx(0.5 / 300, rel=0.1)
    assert np.mean(np.abs(errs) < 0.005) > 0.99  # within class 0.5 almost always


def test_voltage_only_and_deenergised_points() -> None:
    state = make_state(np.zeros(3, complex), np.zeros(3, complex), energised=False)
    t = telemetry_from_state(MeasurementPoint("V1", "N2"), state)
    assert t.voltage_v == [0.0, 0.0, 0.0] and t.current_a == [0.0, 0.0, 0.0]
    assert t.frequency_hz is None
    with pytest.raises(ValueError):
        MeterAccuracy(-1)
