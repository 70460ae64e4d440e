"""Telemetry app on a replay DAQ fed with synthesized samples (stepped clock: deterministic)."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from gridedge.apps import telemetry
from gridedge.apps.params import ParamError
from gridedge.clock import Clock
from gridedge.contracts.telemetry import Telemetry
from gridedge.node.backends.replay import ReplayDaq
from tests.apps.context import FakeContext, run_stepped
from tests.apps.signals import balanced, synthesize

T0 = 1_763_700_000_000_000_000
RATE = 3200.0
PF_ANGLE = 25.0


def _ctx(params: dict, state: dict | None = None, duration: float = 30.0) -> FakeContext:
    clock = Clock("stepped", start_ns=T0)
    x = synthesize(
        [(0.0, balanced(230.0), balanced(10.0, -PF_ANGLE))],
        start_ns=T0 - 1_000_000_000,
        duration_s=duration,
        rate_hz=RATE,
    )
    daq = ReplayDaq.from_samples(x, RATE, clock, origin_ns=T0 - 1_000_000_000, rms_cycles=1)
    return FakeContext(
        "M1", clock, daq=daq, params=params, state=state if state is not None else {}
    )


def _readings(ctx: FakeContext) -> list[Telemetry]:
    return [Telemetry.from_json(p.payload) for p in ctx.on("telemetry")]


async def test_publishes_readings_every_interval(start_app) -> None:
    ctx = _ctx({"interval_s": 0.2})
    start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 1.01)
    pubs = ctx.on("telemetry")
    assert len(pubs) == 6  # t = 0.005 (first step), 0.205, ..., 1.005
    assert {p.topic for p in pubs} == {"gridedge/v1/data/M1/telemetry"}
    assert {p.qos for p in pubs} == {1}
    rs = _readings(ctx)
    assert [r.seq for r in rs] == list(range(6))
    r = rs[-1]
    assert r.device_id == "M1"
    assert r.voltage_v == pytest.approx([230.0] * 3, rel=1e-4)
    assert r.current_a == pytest.approx([10.0] * 3, rel=1e-4)
    p = 2300.0 * math.cos(math.radians(PF_ANGLE))
    assert r.active_power_w == pytest.approx([p] * 3, rel=1e-3)
    assert r.reactive_power_var == pytest.approx(
        [2300.0 * math.sin(math.radians(PF_ANGLE))] * 3, rel=1e-3
    )
    assert r.power_factor == pytest.approx([math.cos(math.radians(PF_ANGLE))] * 3, abs=1e-3)
    assert r.frequency_hz == pytest.approx(50.0, abs=1e-3)
    times = [x.ts.timestamp() for x in rs]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [0.2] * 5


async def test_energy_register_integrates_active_power(start_app) -> None:
    ctx = _ctx({"interval_s": 0.5})
    start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 10.0, step_s=0.05)
    rs = _readings(ctx)
    p_total = 3 * 2300.0 * math.cos(math.radians(PF_ANGLE))
    elapsed = rs[-1].ts.timestamp() - rs[0].ts.timestamp()
    assert elapsed == pytest.approx(9.5)  # first reading one clock step after the start
    assert rs[0].energy_wh == 0.0
    assert rs[-1].energy_wh == pytest.approx(p_total * elapsed / 3600.0, rel=1e-3)
    assert all(b.energy_wh >= a.energy_wh for a, b in itertools.pairwise(rs))


async def test_sequence_and_energy_continue_across_a_restart(start_app) -> None:
    state: dict = {}
    ctx = _ctx({"interval_s": 0.25}, state)
    task = start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    first = _readings(ctx)
    # the runtime restarts the app (e.g. after an update) with the same state
    ctx.published.clear()
    start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 1.0)
    second = _readings(ctx)
    assert second[0].seq == first[-1].seq + 1
    assert [r.seq for r in second] == list(range(second[0].seq, second[0].seq + len(second)))
    assert second[0].energy_wh > first[-1].energy_wh


async def test_new_interval_applies_without_restart(start_app) -> None:
    ctx = _ctx({"interval_s": 5.0})
    app = telemetry.factory()
    start_app(app, ctx)
    await run_stepped(ctx.clock, 1.0)
    assert len(ctx.on("telemetry")) == 1  # only the t=0 reading
    app.on_params({"interval_s": 0.1})
    await run_stepped(ctx.clock, 1.0)
    rs = _readings(ctx)
    # the next reading comes one new interval after the last one (t=0.1, already past: at once)
    assert 10 <= len(rs) - 1 <= 11
    assert rs[1].ts.timestamp() - rs[0].ts.timestamp() == pytest.approx(1.0, abs=0.011)
    assert [r.seq for r in rs] == list(range(len(rs)))


async def test_long_interval_sleeps_in_naps_the_watchdog_can_see(start_app) -> None:
    """The runtime's watchdog hears from an app only when it sleeps or calls alive(): a 60 s
    interval must not look like a 60 s stall."""
    ctx = _ctx({"interval_s": 60.0}, duration=200.0)
    start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 125.0, step_s=0.5)
    rs = _readings(ctx)
    assert len(rs) == 3
    assert rs[2].ts.timestamp() - rs[1].ts.timestamp() == pytest.approx(60.0)
    assert max(ctx.naps) <= 5.0


async def test_stop_still_stops_when_it_meets_a_parameter_change() -> None:
    """on_params interrupts the sleep with a cancellation the app takes back; the runtime's own
    cancellation arriving at the same moment must still end the app."""
    ctx = _ctx({"interval_s": 5.0})
    app = telemetry.factory()
    task = asyncio.ensure_future(app.run(ctx))
    await run_stepped(ctx.clock, 0.1)
    app.on_params({"interval_s": 2.0})
    task.cancel()
    await run_stepped(ctx.clock, 0.1)
    assert task.cancelled()
    # and a change alone keeps it running
    ctx2 = _ctx({"interval_s": 5.0})
    app2 = telemetry.factory()
    task2 = asyncio.ensure_future(app2.run(ctx2))
    await run_stepped(ctx2.clock, 0.1)
    app2.on_params({"interval_s": 2.0})
    await run_stepped(ctx2.clock, 2.1)
    assert not task2.done() and len(ctx2.on("telemetry")) == 2
    task2.cancel()
    await asyncio.gather(task2, return_exceptions=True)


async def test_bad_parameters_are_refused_by_name() -> None:
    app = telemetry.factory()
    with pytest.raises(ParamError, match="'interval_s' must be > 0"):
        app.on_params({"interval_s": 0})
    with pytest.raises(ParamError, match="'interval_s' must be a number"):
        app.on_params({"interval_s": "fast"})
    with pytest.raises(ParamError, match="unknown parameter"):
        app.on_params({"intervall_s": 1})
    assert app.interval_s == 1.0  # kept


async def test_failing_daq_is_survived_and_recovery_publishes(start_app) -> None:
    ctx = _ctx({"interval_s": 0.1}, duration=1.5)  # the record ends after 0.5 s of playback
    start_app(telemetry.factory(), ctx)
    await run_stepped(ctx.clock, 1.0)
    n = len(ctx.on("telemetry"))
    assert 5 <= n <= 6
    assert ctx.state["read_errors"] >= 4
    # the operator loads a looping record: the same app instance keeps going
    ctx.daq.loop = True
    await run_stepped(ctx.clock, 0.5)
    assert len(ctx.on("telemetry")) >= n + 4


async def test_no_daq_is_a_clear_error() -> None:
    ctx = FakeContext("M1", Clock("stepped", start_ns=T0))
    with pytest.raises(RuntimeError, match="needs a DAQ backend"):
        await telemetry.factory().run(ctx)
