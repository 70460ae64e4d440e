"""Energisation is not a fault: the feeder breaker reclosing onto a healthy feeder raises the
head meter's current from ~zero to the load current, which must not produce a fault record
(the demo's second, spurious FLISR run came from exactly that record). A real fault after the
energisation is still captured."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gridedge.apps import fault_capture
from gridedge.broker.mosquitto import free_port
from gridedge.clock import Clock
from gridedge.contracts.events import FaultRecord
from gridedge.node.backends import make_backends
from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions
from gridedge.twin.telemetry import MeterAccuracy
from gridedge.twin.waveforms import DaqSpec
from tests.apps.context import FakeContext, eventually, run_stepped
from tests.apps.test_fault_capture import (
    F_I,
    F_V,
    PRE_I,
    PRE_V,
    T0,
    ZERO,
    _ctx,
    _records,
)


@pytest.mark.parametrize("dead_s", [1.5, 0.1])  # reference decayed fully / only partly
async def test_breaker_reclose_onto_a_healthy_feeder_is_no_fault(
    tmp_path, start_app, dead_s
) -> None:
    # the head meter's voltage is the busbar's: present all along; the current stops when the
    # breaker opens (record time 1.5 s) and comes back when it recloses; a real fault at 4.5 s
    segs = [
        (0.0, PRE_V, PRE_I),
        (1.5, PRE_V, ZERO),
        (1.5 + dead_s, PRE_V, PRE_I),
        (4.5, F_V, F_I),
        (4.7, PRE_V, ZERO),
    ]
    ctx = _ctx(tmp_path, segs, duration=7.0)
    start_app(fault_capture.factory(), ctx)
    await run_stepped(ctx.clock, 3.0, step_s=0.01)  # to record time 4.0 s: past the reclose
    await asyncio.sleep(0.2)
    assert ctx.on("fault") == []
    assert ctx.state.get("energisations") == 1
    assert "de-energised" in ctx.state["last_energisation"]
    await run_stepped(ctx.clock, 1.5, step_s=0.01)  # the real fault still gives its record
    await eventually(lambda: ctx.on("fault"))
    (r,) = _records(ctx)
    assert r.trigger == "overcurrent" and r.trigger_phases == ["a"]
    assert abs(r.inception_ns - (T0 + 3_500_000_000)) <= 1e9 / 3200  # record 4.5 s = clock 3.5 s


async def test_window_without_current_before_the_inception_is_an_energisation(tmp_path) -> None:
    """The window check alone (the RMS reference may not have decayed after a short dead time):
    the cycle before the located inception carries no current, and the voltage does not sag."""
    app = fault_capture.factory()
    ctx = _ctx(tmp_path, [(0.0, PRE_V, ZERO), (2.0, PRE_V, PRE_I)])
    app._apply(ctx.params)
    ctx.clock.advance(1.5)  # record time 2.5 s: the whole window exists
    window = await ctx.daq.read_window(0.3, 0.3, around_ns=ctx.clock.now_ns() - 500_000_000)
    with pytest.raises(fault_capture.Energisation, match="de-energised"):
        app.analyse(window, "overcurrent", ["a"], ctx.clock.now_ns() - 500_000_000, ctx)
    # switching onto a fault sags the voltage: that stays a fault
    ctx2 = _ctx(tmp_path, [(0.0, PRE_V, ZERO), (2.0, F_V, F_I)])
    ctx2.clock.advance(1.5)
    w2 = await ctx2.daq.read_window(0.3, 0.3, around_ns=ctx2.clock.now_ns() - 500_000_000)
    rec = app.analyse(w2, "overcurrent", ["a"], ctx2.clock.now_ns() - 500_000_000, ctx2)
    assert rec.kind == "waveform" and "a" in rec.trigger_phases


@pytest.mark.slow
async def test_reclose_on_the_twin_gives_no_fault_record(tmp_path, start_app) -> None:
    """On the real twin (turin-2feeder, wall clock): CB-A opened for 1.5 s and reclosed with the
    head meter M1's fault capture running → no record; a fault afterwards → one record."""
    from gridedge.twin.model import Twin

    twin = Twin.from_name("turin-2feeder", clock=Clock("wall"), trip_delay_s=0.25)
    opts = TwinServiceOptions(
        daq=DaqSpec(adc_bits=12), accuracy=MeterAccuracy(0.0, 0.0), seed=2, tick_s=0.005
    )
    srv = TwinServer(TwinService(twin, opts), port=free_port()).start()
    try:
        daq, _ = make_backends("twin", {"url": srv.url, "point": "M1"}, device_id="SM-M1")
        ctx = FakeContext(
            "SM-M1",
            Clock("wall"),
            daq=daq,
            params={"pre_s": 0.2, "post_s": 0.2, "record_dir": str(tmp_path)},
        )
        start_app(fault_capture.factory(), ctx)
        await asyncio.sleep(0.4)
        assert await daq.client.operate("CB-A", False) is False
        await asyncio.sleep(1.5)
        assert await daq.client.operate("CB-A", True) is True
        await asyncio.sleep(1.5)
        assert ctx.on("fault") == []
        assert ctx.state.get("energisations", 0) >= 1
        await daq.client.apply_fault(branch_id="L-A2-A3", fraction=0.5, kind="1ph", r_f_ohm=1.0)
        await eventually(lambda: ctx.on("fault"), 30)
        rec = FaultRecord.from_json(ctx.on("fault")[0].payload)
        assert rec.trigger == "overcurrent" and np.abs(rec.during.current_complex()).max() > 1000
        await daq.client.aclose()
    finally:
        srv.stop()
