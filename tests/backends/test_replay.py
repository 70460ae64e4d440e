"""Replay backend: RMS, powers, phasors and windows against synthesized ground truth; COMTRADE
round trip through the twin's writer and the independent reader; CSV sources; clear errors."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from gridedge.clock import Clock
from gridedge.node.backends import BackendConfigError, make_backends
from gridedge.node.backends.replay import ReplayDaq, ReplayEnded, ReplayError, RmsReplayDaq
from gridedge.twin.comtrade import write_comtrade
from tests.apps.signals import balanced, synthesize

T0 = 1_763_700_000_000_000_000  # a whole second, UTC ns
RATE = 3200.0


def _daq(segments, duration=1.0, **kw) -> tuple[ReplayDaq, Clock]:
    clock = Clock("stepped", start_ns=T0)
    x = synthesize(segments, start_ns=T0, duration_s=duration, rate_hz=RATE, f_hz=kw.pop("f", 50.0))
    return ReplayDaq.from_samples(x, RATE, clock, origin_ns=T0, **kw), clock


async def test_rms_powers_and_phasors_match_the_source() -> None:
    v = balanced(230.0, 10.0)
    i = balanced(12.0, 10.0 - 30.0)  # current lags 30°: inductive load
    daq, clock = _daq([(0.0, v, i)], rms_cycles=5)
    clock.advance(0.3)
    r = await daq.read_rms()
    assert r.voltage_v == pytest.approx([230.0] * 3, rel=1e-4)
    assert r.current_a == pytest.approx([12.0] * 3, rel=1e-4)
    p = 230.0 * 12.0 * math.cos(math.radians(30))
    q = 230.0 * 12.0 * math.sin(math.radians(30))
    assert r.active_power_w == pytest.approx([p] * 3, rel=1e-3)
    assert r.reactive_power_var == pytest.approx([q] * 3, rel=1e-3)
    assert r.power_factor == pytest.approx([math.cos(math.radians(30))] * 3, abs=1e-3)
    assert r.voltage_angle_deg == pytest.approx([10.0, -110.0, 130.0], abs=0.01)
    assert r.current_angle_deg == pytest.approx([-20.0, -140.0, 100.0], abs=0.01)
    assert r.frequency_hz == pytest.approx(50.0, abs=1e-3)
    assert r.ts.timestamp() == pytest.approx((T0 / 1e9) + 0.3)


async def test_frequency_estimated_from_phase_advance() -> None:
    daq, clock = _daq([(0.0, balanced(230.0), balanced(5.0))], f=50.2)
    clock.advance(0.5)
    r = await daq.read_rms()
    assert r.frequency_hz == pytest.approx(50.2, abs=0.01)


async def test_rms_follows_playback_time() -> None:
    daq, clock = _daq([(0.0, balanced(230.0), balanced(5.0)), (0.5, balanced(20.0), balanced(0.0))])
    clock.advance(0.45)
    assert (await daq.read_rms()).voltage_v[0] == pytest.approx(230.0, rel=1e-3)
    clock.advance(0.1)
    r = await daq.read_rms()
    assert r.voltage_v[0] == pytest.approx(20.0, rel=1e-3)
    assert r.current_a[0] == pytest.approx(0.0, abs=1e-6)


async def test_end_of_record_and_loop() -> None:
    daq, clock = _daq([(0.0, balanced(230.0), balanced(5.0))], duration=0.2)
    clock.advance(0.3)
    with pytest.raises(ReplayEnded, match="loop=true"):
        await daq.read_rms()
    looped, clock2 = _daq([(0.0, balanced(230.0), balanced(5.0))], duration=0.2, loop=True)
    clock2.advance(1.234)
    assert (await looped.read_rms()).voltage_v[1] == pytest.approx(230.0, rel=1e-3)


async def test_window_waits_for_post_trigger_samples_and_returns_the_slice() -> None:
    daq, clock = _daq(
        [(0.0, balanced(230.0), balanced(5.0)), (0.6, balanced(100.0), balanced(50.0))]
    )
    clock.advance(0.62)
    around = T0 + 600_000_000
    task = asyncio.ensure_future(daq.read_window(0.1, 0.1, around_ns=around))
    await asyncio.sleep(0)
    assert not task.done()  # post-trigger samples have not been played yet
    for _ in range(20):
        clock.advance(0.01)
        await asyncio.sleep(0)
    w = await task
    assert w.n_samples == round(0.2 * RATE)
    assert w.start_ns == T0 + 500_000_000
    vals = w.values()
    assert np.max(np.abs(vals[0, :100])) == pytest.approx(230 * math.sqrt(2), rel=1e-3)
    assert np.max(np.abs(vals[3, -100:])) == pytest.approx(50 * math.sqrt(2), rel=1e-3)


async def test_comtrade_round_trip(tmp_path) -> None:
    """A window written by the twin's COMTRADE writer replays with the same values."""
    segs = [
        (0.0, balanced(230.0, 20.0), balanced(8.0, -5.0)),
        (0.3, balanced(150.0), balanced(80.0)),
    ]
    daq, clock = _daq(segs, duration=0.6)
    clock.advance(0.6)
    w = await daq.read_window(0.3, 0.3, around_ns=T0 + 300_000_000)
    cfg, _ = write_comtrade(w, tmp_path, "rec1")
    clock2 = Clock("stepped", start_ns=T0)
    back = ReplayDaq.from_comtrade(cfg, clock2, origin_ns=T0)
    assert back.rate_hz == pytest.approx(RATE)
    assert back.n_samples == w.n_samples
    np.testing.assert_allclose(back.v, w.values()[:3], atol=0.05)
    np.testing.assert_allclose(back.i, w.values()[3:], atol=0.01)
    clock2.advance(0.25)
    r = await back.read_rms()
    assert r.voltage_v == pytest.approx([230.0] * 3, rel=1e-3)
    assert r.voltage_angle_deg[0] == pytest.approx(20.0, abs=0.05)


async def test_waveform_and_rms_csv(tmp_path) -> None:
    x = synthesize([(0.0, balanced(230.0), balanced(3.0))], start_ns=T0, duration_s=0.2)
    t = np.arange(x.shape[1]) / RATE
    lines = ["t_s,va,vb,vc,ia,ib,ic"] + [
        ",".join(f"{v:.6f}" for v in (t[k], *x[:, k])) for k in range(x.shape[1])
    ]
    wave = tmp_path / "w.csv"
    wave.write_text("\n".join(lines))
    clock = Clock("stepped", start_ns=T0)
    daq, act = make_backends("replay", {"file": str(wave)}, device_id="M7", clock=clock)
    assert act is None
    clock.advance(0.1)
    r = await daq.read_rms()
    assert r.device_id == "M7"
    assert r.voltage_v == pytest.approx([230.0] * 3, rel=1e-4)

    rms = tmp_path / "r.csv"
    rms.write_text(
        "t_s,voltage_v,current_a,active_power_w,energy_wh\n0,231.5,2.0,400,10\n1,229.0,4.0,800,11\n"
    )
    clock2 = Clock("stepped", start_ns=T0)
    daq2 = ReplayDaq.from_csv(rms, clock2, phase="b")
    assert isinstance(daq2, RmsReplayDaq)
    clock2.advance(0.5)
    r = await daq2.read_rms()
    assert (r.voltage_v, r.phase, r.energy_wh) == ([231.5], "b", 10.0)
    clock2.advance(1.0)
    assert (await daq2.read_rms()).current_a == [4.0]
    with pytest.raises(NotImplementedError, match="RMS readings only"):
        await daq2.read_window(0.1, 0.1)


def test_bad_sources_give_clear_errors(tmp_path) -> None:
    clock = Clock("stepped", start_ns=T0)
    bad = tmp_path / "b.csv"
    bad.write_text("time,va\n0,1\n")
    with pytest.raises(ReplayError, match="'t_s'"):
        ReplayDaq.from_csv(bad, clock)
    bad.write_text("t_s,va,ia\n0,1,x\n")
    with pytest.raises(ReplayError, match="must be a number"):
        ReplayDaq.from_csv(bad, clock)
    bad.write_text("t_s,vx,iy\n0,1,1\n0.001,1,1\n")
    with pytest.raises(ReplayError, match="needs channels va vb vc"):
        ReplayDaq.from_csv(bad, clock)
    with pytest.raises(BackendConfigError, match="'file'"):
        make_backends("replay", {})
    with pytest.raises(BackendConfigError, match="does not exist"):
        make_backends("replay", {"file": str(tmp_path / "nope.cfg")})
    with pytest.raises(BackendConfigError, match="unknown option"):
        make_backends("replay", {"file": "x.csv", "speed": 2})
    with pytest.raises(BackendConfigError, match="not one of"):
        make_backends("daq9000")
    assert make_backends("none") == (None, None)
