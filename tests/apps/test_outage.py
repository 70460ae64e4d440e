"""Outage app: last gasp on supply loss, restore with the outage's duration, per-phase loss,
no events for flicker, an outage that spans an app restart (replay DAQ, stepped clock)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gridedge.apps import outage
from gridedge.apps.params import ParamError
from gridedge.clock import Clock
from gridedge.contracts.events import OutageDetail
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.node.backends.replay import ReplayDaq
from tests.apps.context import FakeContext, run_stepped
from tests.apps.signals import balanced, synthesize

T0 = 1_763_700_000_000_000_000
RATE = 3200.0
V = balanced(230.0)
CUR = balanced(5.0, -10.0)
ZERO = np.zeros(3, dtype=complex)


def _ctx(segments, params=None, state=None, duration=8.0) -> FakeContext:
    clock = Clock("stepped", start_ns=T0)
    x = synthesize(segments, start_ns=T0 - 1_000_000_000, duration_s=duration, rate_hz=RATE)
    daq = ReplayDaq.from_samples(x, RATE, clock, origin_ns=T0 - 1_000_000_000)
    base = {"poll_interval_s": 0.1, "nominal_voltage_v": 230.0}
    return FakeContext(
        "M2",
        clock,
        daq=daq,
        params={**base, **(params or {})},
        state=state if state is not None else {},
    )


def _events(ctx: FakeContext) -> list[DeviceEvent]:
    return [DeviceEvent.from_json(p.payload) for p in ctx.on("event")]


def _t(ns: int) -> float:
    return (ns - T0) / 1e9


async def test_last_gasp_then_restore_with_duration(start_app) -> None:
    # record time = clock time + 1 s: supply lost at clock 1.0 s, back at clock 3.5 s
    ctx = _ctx([(0.0, V, CUR), (2.0, ZERO, ZERO), (4.5, V, CUR)])
    start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 2.0, step_s=0.01)
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.LAST_GASP]
    gasp = OutageDetail.model_validate(ev[0].detail)
    assert gasp.scope == "supply" and gasp.phases == ["a", "b", "c"]
    assert gasp.voltage_v == pytest.approx([0.0] * 3, abs=1e-6)
    assert 1.0 <= _t(gasp.lost_since_ns) <= 1.0 + 0.1 + 0.02  # first low poll (1-cycle RMS lag)
    # published at once: within loss_polls polls of the loss (3 × 0.1 s)
    assert _t(int(ev[0].occurred_at.timestamp() * 1e9)) <= 1.0 + 0.3 + 0.02
    assert ctx.on("event")[0].qos == 1
    await run_stepped(ctx.clock, 3.0, step_s=0.01)
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.LAST_GASP, EventKind.RESTORE]
    back = OutageDetail.model_validate(ev[1].detail)
    assert back.scope == "supply" and back.phases == ["a", "b", "c"]
    assert back.phases_still_lost == []
    # true outage 2.5 s; detection adds up to restore_polls polls (5 × 0.1 s)
    assert 2.5 <= back.duration_s <= 2.5 + 0.5 + 0.02


async def test_single_phase_loss_is_an_alarm_and_its_restore(start_app) -> None:
    vb_lost = V.copy()
    vb_lost[1] = 0.0
    ctx = _ctx([(0.0, V, CUR), (2.0, vb_lost, CUR), (3.0, V, CUR)])
    start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 4.0, step_s=0.01)
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.ALARM, EventKind.RESTORE]
    assert ev[0].detail["alarm"] == "phase-loss"
    lost = OutageDetail.model_validate({k: v for k, v in ev[0].detail.items() if k != "alarm"})
    assert (lost.scope, lost.phases) == ("phase", ["b"])
    back = OutageDetail.model_validate(ev[1].detail)
    assert (back.scope, back.phases) == ("phase", ["b"])
    assert 1.0 <= back.duration_s <= 1.52


async def test_single_phase_meter_losing_its_phase_is_a_supply_loss(start_app) -> None:
    clock = Clock("stepped", start_ns=T0)
    x = synthesize(
        [(0.0, V, CUR), (1.5, ZERO, ZERO)],
        start_ns=T0 - 1_000_000_000,
        duration_s=4.0,
        rate_hz=RATE,
    )
    daq = ReplayDaq(x[[2]], x[[5]], RATE, clock, origin_ns=T0 - 1_000_000_000, phase="c")
    ctx = FakeContext("SM-9", clock, daq=daq, params={"poll_interval_s": 0.1})
    start_app(outage.factory(), ctx)  # nominal learned from the first reading
    await run_stepped(ctx.clock, 1.0, step_s=0.01)
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.LAST_GASP]
    assert ev[0].detail["phases"] == ["c"]
    assert ctx.state["nominal_v"] == pytest.approx(230.0, rel=1e-3)


async def test_flicker_and_a_half_return_raise_nothing(start_app) -> None:
    segs = [(0.0, V, CUR)]
    t = 2.0
    for _ in range(6):  # 0.15 s dips to zero, shorter than 3 polls of 0.1 s
        segs += [(t, ZERO, ZERO), (t + 0.15, V, CUR)]
        t += 0.5
    ctx = _ctx(segs, duration=6.0)
    start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 4.0, step_s=0.01)
    assert _events(ctx) == []
    # an outage whose voltage then comes back only to 0.5 pu (between the thresholds)
    ctx2 = _ctx([(0.0, V, CUR), (2.0, ZERO, ZERO), (3.0, 0.5 * V, CUR)], duration=6.0)
    start_app(outage.factory(), ctx2)
    await run_stepped(ctx2.clock, 4.0, step_s=0.01)
    assert [e.kind for e in _events(ctx2)] == [EventKind.LAST_GASP]


async def test_outage_spanning_a_restart_gives_one_restore_with_full_duration(start_app) -> None:
    state: dict = {}
    ctx = _ctx([(0.0, V, CUR), (2.0, ZERO, ZERO), (5.0, V, CUR)], state=state)
    task = start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 2.0, step_s=0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await run_stepped(ctx.clock, 1.0, step_s=0.01)  # app down (being updated)
    start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 2.0, step_s=0.01)
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.LAST_GASP, EventKind.RESTORE]
    assert 3.0 <= ev[1].detail["duration_s"] <= 3.52


async def test_read_errors_count_as_loss_when_asked(start_app) -> None:
    """A PZEM-powered-from-the-line meter stops answering in an outage."""
    ctx = _ctx([(0.0, V, CUR)], params={"read_error_is_loss": True}, duration=2.0)
    start_app(outage.factory(), ctx)
    await run_stepped(ctx.clock, 1.5, step_s=0.01)  # the record ends at clock 1.0 s
    ev = _events(ctx)
    assert [e.kind for e in ev] == [EventKind.LAST_GASP]


def test_bad_parameters() -> None:
    app = outage.factory()
    with pytest.raises(ParamError, match=r"'restore_pu'.*must be above 'loss_pu'"):
        app.on_params({"loss_pu": 0.5, "restore_pu": 0.4})
    with pytest.raises(ParamError, match="'loss_polls' must be >= 1"):
        app.on_params({"loss_polls": 0})
    with pytest.raises(ParamError, match="read_error_is_loss"):
        app.on_params({"read_error_is_loss": "yes"})
