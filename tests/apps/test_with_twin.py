"""The meter apps on the twin backend: a real twin (turin-2feeder) behind its real network
interface on a free port, reached through ``make_backends("twin", ...)`` as the node CLI does.
Ground truth is the twin's own grid state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from gridedge.apps import fault_capture, outage, relay, telemetry
from gridedge.broker.mosquitto import free_port
from gridedge.clock import Clock
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.events import FaultRecord
from gridedge.contracts.telemetry import DeviceEvent, EventKind, Telemetry
from gridedge.node.backends import make_backends
from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions
from gridedge.twin.telemetry import MeterAccuracy
from gridedge.twin.waveforms import DaqSpec, point_phasors
from tests.apps.context import FakeContext, eventually

FAULT = {"branch_id": "L-A2-A3", "fraction": 0.5, "kind": "1ph", "r_f_ohm": 0.001}


@pytest.fixture(scope="module")
def twin_server() -> Iterator[TwinServer]:
    from gridedge.twin.model import Twin

    twin = Twin.from_name("turin-2feeder", clock=Clock("wall"), trip_delay_s=0.25)
    opts = TwinServiceOptions(
        daq=DaqSpec(adc_bits=16), accuracy=MeterAccuracy(0.0, 0.0), seed=1, tick_s=0.005
    )
    srv = TwinServer(TwinService(twin, opts), port=free_port()).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
async def test_telemetry_fault_capture_and_switching_on_the_twin(
    twin_server, tmp_path, start_app
) -> None:
    svc = twin_server.service
    daq, act = make_backends(
        "twin",
        {"url": twin_server.url, "point": "M1", "switches": "SW-A5-in,SW-A5-out"},
        device_id="SM-M1",
    )
    clock = Clock("wall")
    tel = FakeContext("SM-M1", clock, daq=daq, params={"interval_s": 0.1})
    start_app(telemetry.factory(), tel)
    await eventually(lambda: len(tel.on("telemetry")) >= 3, 20)
    t = Telemetry.from_json(tel.on("telemetry")[-1].payload)
    truth = point_phasors(svc.points["M1"], svc.twin.state)
    np.testing.assert_allclose(t.voltage_v, np.abs(truth[:3]), rtol=1e-6)
    np.testing.assert_allclose(t.current_a, np.abs(truth[3:]), rtol=1e-6)
    assert [Telemetry.from_json(p.payload).seq for p in tel.on("telemetry")][:3] == [0, 1, 2]

    fc = FakeContext(
        "SM-M1",
        clock,
        daq=daq,
        params={"pre_s": 0.2, "post_s": 0.2, "poll_interval_s": 0.02, "record_dir": str(tmp_path)},
    )
    start_app(fault_capture.factory(), fc)
    await asyncio.sleep(0.3)  # references settle on healthy readings
    pre = svc.twin.state
    info = await daq.client.apply_fault(**FAULT)
    await eventually(lambda: fc.on("fault"), 30)
    rec = FaultRecord.from_json(fc.on("fault")[0].payload)
    during = next(st for _, st in svc.twin.history if st.faulted)
    point = svc.points["M1"]
    p_pre, p_dur = point_phasors(point, pre), point_phasors(point, during)
    assert rec.inception_source == "daq"
    # the first sample at or after the inception
    assert 0 <= rec.inception_ns - info.inception_ns < 1e9 / rec.sampling_rate_hz
    assert rec.trigger == "overcurrent" and "a" in rec.trigger_phases
    got_pre = np.array([complex(*z) for z in rec.pre.voltage + rec.pre.current])
    got_dur = np.array([complex(*z) for z in rec.during.voltage + rec.during.current])
    # pre-fault: steady state, only the 16-bit ADC between truth and estimate
    np.testing.assert_allclose(got_pre, p_pre, rtol=2e-3, atol=np.abs(p_pre).max() * 1e-3)
    # during: one cycle after inception, DC offset absorbed by the least-squares estimate
    assert abs(got_dur[3]) == pytest.approx(abs(p_dur[3]), rel=0.01)
    assert abs(got_dur[0]) == pytest.approx(abs(p_dur[0]), rel=0.01)
    assert abs(np.angle(got_dur[3] / p_dur[3], deg=True)) < 1.0
    assert rec.comtrade is not None

    # the relay app drives the twin's switches and reports what the twin says
    rc = FakeContext("SM-M1", clock, actuators=act)
    start_app(relay.factory(), rc)
    await eventually(lambda: rc.subscriptions)
    cmd = Command(device_id="SM-M1", target="SW-A5-in", action=CommandAction.OPEN)
    await rc.deliver("gridedge/v1/data/SM-M1/command", cmd.to_json())
    await eventually(lambda: rc.on("command-result"), 10)
    res = CommandResult.from_json(rc.on("command-result")[0].payload)
    assert (res.ok, res.closed) == (True, False)
    assert (await daq.client.status()).switches["SW-A5-in"] is False
    bad = Command(device_id="SM-M1", target="CB-A", action=CommandAction.CLOSE)
    await rc.deliver("gridedge/v1/data/SM-M1/command", bad.to_json())
    await eventually(lambda: len(rc.on("command-result")) == 2, 10)
    res = CommandResult.from_json(rc.on("command-result")[1].payload)
    assert not res.ok and "CB-A" in res.reason
    await daq.client.aclose()


@pytest.mark.slow
async def test_outage_and_restore_on_the_twin(start_app) -> None:
    """Opening the feeder breaker in the twin: the downstream meter's last gasp, then its restore
    with the outage's duration when the breaker closes again."""
    from gridedge.twin.model import Twin

    twin = Twin.from_name("turin-2feeder", clock=Clock("wall"))
    srv = TwinServer(
        TwinService(twin, TwinServiceOptions(accuracy=MeterAccuracy(0.0, 0.0), tick_s=0.005)),
        port=free_port(),
    ).start()
    try:
        daq, _ = make_backends("twin", {"url": srv.url, "point": "M2"}, device_id="SM-M2")
        ctx = FakeContext("SM-M2", Clock("wall"), daq=daq, params={"poll_interval_s": 0.05})
        start_app(outage.factory(), ctx)
        await eventually(lambda: ctx.state.get("nominal_v"), 10)
        loop = asyncio.get_running_loop()
        t_open = loop.time()
        assert await daq.client.operate("CB-A", False) is False
        await eventually(lambda: ctx.on("event"), 10)
        gasp = DeviceEvent.from_json(ctx.on("event")[0].payload)
        assert gasp.kind is EventKind.LAST_GASP and gasp.detail["scope"] == "supply"
        assert loop.time() - t_open < 1.0  # 3 polls of 50 ms plus HTTP
        await asyncio.sleep(1.0)
        t_close = loop.time()
        assert await daq.client.operate("CB-A", True) is True
        await eventually(lambda: len(ctx.on("event")) >= 2, 10)
        back = DeviceEvent.from_json(ctx.on("event")[1].payload)
        assert back.kind is EventKind.RESTORE
        outage_s = t_close - t_open
        assert outage_s - 0.3 <= back.detail["duration_s"] <= outage_s + 0.6
        await daq.client.aclose()
    finally:
        srv.stop()
