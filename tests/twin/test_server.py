"""The twin's network interface end to end: a real Twin behind a real uvicorn server on a free
port, driven through TwinClient / TwinDaq / TwinActuators as a meter node would."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import numpy as np
import pytest

from gridedge.broker.mosquitto import free_port
from gridedge.clock import Clock
from gridedge.dsp import samples_per_cycle
from gridedge.node.appapi import ActuatorBackend, DaqBackend
from gridedge.twin.client import TwinActuators, TwinApiError, TwinClient, TwinDaq
from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions
from gridedge.twin.telemetry import MeterAccuracy
from gridedge.twin.waveforms import DaqSpec, point_phasors, window_phasors

START_NS = 1_763_700_000_000_000_000
FAULT = {"branch_id": "L-A2-A3", "fraction": 0.5, "kind": "1ph", "r_f_ohm": 0.001}


def _server(clock: Clock, trip_delay_s: float = 0.3) -> TwinServer:
    from gridedge.twin.model import Twin

    twin = Twin.from_name("turin-2feeder", clock=clock, trip_delay_s=trip_delay_s)
    opts = TwinServiceOptions(
        daq=DaqSpec(adc_bits=16), accuracy=MeterAccuracy(0.0, 0.0), seed=1, tick_s=0.005
    )
    return TwinServer(TwinService(twin, opts), port=free_port()).start()


@pytest.fixture
def stepped() -> Iterator[TwinServer]:
    srv = _server(Clock("stepped", start_ns=START_NS))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def wall() -> Iterator[TwinServer]:
    srv = _server(Clock("wall"), trip_delay_s=0.2)
    try:
        yield srv
    finally:
        srv.stop()


async def advance(client: TwinClient, seconds: float) -> None:
    before = (await client.clock())["now_ns"]
    st = await client.advance(seconds)
    assert st.time_ns == before + round(seconds * 1e9)


async def test_points_and_telemetry_match_the_twin(stepped: TwinServer) -> None:
    twin = stepped.service.twin
    async with TwinClient(stepped.url) as c:
        pts = {p.id: p for p in await c.points()}
        assert {"M1", "M2"} <= set(pts)
        assert pts["M1"].ct_ratio == pytest.approx(120.0)
        t = await c.telemetry("M1", device_id="SM-M1")
    assert t.device_id == "SM-M1"
    ph = point_phasors(stepped.service.points["M1"], twin.state)
    np.testing.assert_allclose(t.voltage_v, np.abs(ph[:3]), rtol=1e-9)
    np.testing.assert_allclose(t.current_a, np.abs(ph[3:]), rtol=1e-9)
    s = ph[:3] * np.conj(ph[3:])
    np.testing.assert_allclose(t.active_power_w, s.real, rtol=1e-6)
    assert sum(t.active_power_w) > 0  # feeder A draws power from the primary
    assert t.frequency_hz == 50.0


async def test_every_switch_is_a_point_for_its_field_unit(stepped: TwinServer) -> None:
    """A field unit at a switch branch (e.g. a fault passage indicator) reads the current through it
    and the voltage on its from side; the grid's own point list stays as the grid defines it."""
    twin = stepped.service.twin
    async with TwinClient(stepped.url) as c:
        t = await c.telemetry("SW-A3-in", device_id="FU-A3")
        listed = {p.id for p in await c.points()}
        with pytest.raises(TwinApiError) as exc:
            await c.telemetry("SW-NOPE")
    assert "SW-A3-in" not in listed
    k = twin.branch_ids.index("SW-A3-in")
    from_node = twin.branch_ends()[k][0]
    np.testing.assert_allclose(t.voltage_v, np.abs(twin.state.node_voltage(from_node)), rtol=1e-9)
    np.testing.assert_allclose(
        t.current_a, np.abs(twin.state.branch_current("SW-A3-in", "from")), rtol=1e-9
    )
    assert min(t.current_a) > 1.0  # it carries the load of SS-A3 onwards
    assert exc.value.status == 404 and "any switch branch id" in str(exc.value)


async def test_fault_window_events_and_trip(stepped: TwinServer) -> None:
    svc = stepped.service
    async with TwinClient(stepped.url) as c:
        await advance(c, 1.0)
        pre = svc.twin.state
        info = await c.apply_fault(**FAULT)
        assert info.inception_ns == START_NS + 1_000_000_000 and info.trip_ns is None
        # the record is not complete until post_s has passed on the twin's clock
        with pytest.raises(TwinApiError) as exc:
            await c.window("M1", pre_s=0.5, post_s=0.5, around="fault")
        assert exc.value.status == 409 and exc.value.fields == ["post_s"]
        await advance(c, 1.0)
        during = next(st for t, st in svc.twin.history if st.faulted)
        w = await c.window("M1", pre_s=0.5, post_s=0.5, around="fault")
        log = await c.events_log()
        status = await c.status()
    assert w.n_samples == 3200 and w.sampling_rate_hz == 3200
    assert w.inception_index == 1600
    assert w.start_ns == info.inception_ns - 500_000_000
    point = svc.points["M1"]
    n = samples_per_cycle(3200)
    tol = np.asarray(w.scale) / math.sqrt(2) + 1e-6
    err_pre = np.abs(window_phasors(w, 1600 - n) - point_phasors(point, pre))
    assert np.all(err_pre <= tol), err_pre
    # last cycle before the breaker trip (0.3 s after inception): DC offset long gone
    k_trip = 1600 + round(0.3 * 3200)
    dur = window_phasors(w, k_trip - n)
    truth = point_phasors(point, during)
    assert abs(dur[3]) == pytest.approx(abs(truth[3]), rel=2e-3)  # faulted phase current
    assert abs(dur[0]) == pytest.approx(abs(truth[0]), rel=2e-3)  # sagged voltage
    assert abs(truth[3]) > 50 * abs(point_phasors(point, pre)[3])
    # after the trip, M1 (source side of CB-A) carries no current
    assert np.all(w.values()[3:, k_trip + n :] == 0.0)
    kinds = [e.kind for e in log]
    assert kinds[:2] == ["fault-inception", "breaker-trip"]
    assert log[1].time_ns - log[0].time_ns == 300_000_000
    assert log[1].detail["target"] == "CB-A"
    assert status.faulted is False and status.switches["CB-A"] is False
    assert status.energised["SS-A1"] is False and status.energised["SS-B1"] is True
    assert status.fault is not None and status.fault.trip_ns == info.inception_ns + 300_000_000


async def test_switching_energises_and_radial_flag(stepped: TwinServer) -> None:
    async with TwinClient(stepped.url) as c:
        st = await c.status()
        assert st.radial and st.energised["SS-A5"] and st.switches["TIE-AB"] is False
        assert await c.operate("SW-A4-out", False) is False
        st = await c.status()
        assert st.energised["SS-A4"] and not st.energised["SS-A5"] and not st.energised["SS-A6"]
        m2 = await c.telemetry("M2")  # SS-A4's LV side stays supplied
        assert min(m2.voltage_v) > 200
        assert await c.operate("TIE-AB", True) is True  # backfeed from feeder B
        st = await c.status()
        assert st.energised["SS-A5"] and st.energised["SS-A6"] and st.radial
        assert await c.operate("SW-A4-out", True) is True  # now a loop between two primaries
        st = await c.status()
        assert not st.radial
        log = await c.events_log()
    assert [e.kind for e in log] == ["switch-changed"] * 3
    assert [e.detail["target"] for e in log] == ["SW-A4-out", "TIE-AB", "SW-A4-out"]


async def test_meter_ports_implement_the_app_api(twin_server: TwinServer) -> None:
    """Through the shared ``twin_server`` fixture (default meter settings: 12 bit, class 0.5)."""
    async with TwinClient(twin_server.url) as c:
        daq = TwinDaq(c, "M2", device_id="SM-M2")
        act = TwinActuators(c, switches={"SW-A5-in", "SW-A5-out"})
        assert isinstance(daq, DaqBackend) and isinstance(act, ActuatorBackend)
        t = await daq.read_rms()
        assert t.device_id == "SM-M2" and min(t.voltage_v) > 200
        # no fault yet: "latest" means now; a window that ends now is complete
        w = await daq.read_window(0.2, 0.0)
        assert w.point_id == "M2" and w.inception_index is None and w.n_samples == 640
        fast = await c.window("M2", pre_s=0.05, post_s=0.0, around="now", rate_hz=6400)
        assert fast.sampling_rate_hz == 6400 and fast.n_samples == 320
        assert await act.operate_switch("SW-A5-in", False) is False
        with pytest.raises(PermissionError, match="switch_id"):
            await act.operate_switch("CB-A", False)
        with pytest.raises(NotImplementedError):
            await act.set_relay(False)
        await advance(c, 0.5)
        await c.apply_fault(**FAULT)
        await advance(c, 0.6)
        w = await daq.read_window(0.1, 0.2)  # around the latest fault inception
        assert w.inception_index == round(0.1 * 3200)


async def test_bad_input_names_the_field(stepped: TwinServer) -> None:
    async with TwinClient(stepped.url) as c:
        cases = [
            (c.telemetry("NOPE"), 404, "point_id"),
            (c.window("NOPE"), 404, "point_id"),
            (c.window("M1", pre_s=-1.0, post_s=0.0, around="now"), 422, "pre_s"),
            (c.window("M1", pre_s=6.0, post_s=6.0, around="now"), 422, "post_s"),
            (c.window("M1", pre_s=0.1, post_s=0.0, rate_hz=0.0), 422, "rate_hz"),
            (c.window("M1", pre_s=0.1, post_s=0.0, rate_hz=100.0), 422, "rate_hz"),
            (c.window("M1", around="fault"), 404, "around"),
            (c.window("M1", around_ns=START_NS + 3600 * 10**9), 422, "around_ns"),
            (c.operate("NOPE", True), 404, "switch_id"),
            (c.set_relay("nobody", True), 404, "customer_id"),
            (c.apply_fault("NOPE"), 404, "branch_id"),
        ]
        for coro, status, fld in cases:
            with pytest.raises(TwinApiError) as exc:
                await coro
            assert exc.value.status == status, (fld, exc.value)
            assert fld in exc.value.fields, (fld, exc.value)
        r = await c._http.post("/v1/switches/CB-A", json={"closed": "maybe"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "closed"
        r = await c._http.post("/v1/fault", json={"branch_id": "L-A2-A3", "fraction": 2})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fraction"
        r = await c._http.post("/v1/fault", json={"branch_id": "L-A2-A3", "kind": "4ph"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
        r = await c._http.post("/v1/fault", json={"branch_id": "L-A2-A3", "phases": "bc"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phases"
        r = await c._http.post("/v1/customers/x/phase", json={"phase": "d"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phase"
        assert r.headers["content-type"].startswith("application/problem+json")
        # the twin is unharmed by all that
        assert (await c.status()).faulted is False


async def test_event_stream_and_waiting_window_on_a_wall_clock(wall: TwinServer) -> None:
    async with TwinClient(wall.url) as c:
        got: list = []

        async def listen() -> None:
            async for ev in c.events():
                got.append(ev)
                if ev.kind == "breaker-trip":
                    return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.3)  # let the stream connect
        info = await c.apply_fault(**FAULT)
        await asyncio.wait_for(task, timeout=10)
        # asked right away, the record waits until its post-trigger time has passed
        w = await c.window("M1", pre_s=0.1, post_s=0.3, around="fault")
        clock_now = (await c.clock())["now_ns"]
        with pytest.raises(TwinApiError) as exc:
            await c.advance(1.0)  # a wall clock moves by itself
    assert exc.value.status == 409 and exc.value.fields == ["seconds"]
    assert [e.kind for e in got] == ["fault-inception", "breaker-trip"]
    assert got[0].time_ns == info.inception_ns
    assert got[1].time_ns - got[0].time_ns == pytest.approx(200_000_000, abs=30_000_000)
    assert clock_now >= info.inception_ns + 300_000_000
    assert w.inception_index == round(0.1 * 3200)
    k_trip = w.inception_index + round((got[1].time_ns - got[0].time_ns) * 3200 / 1e9)
    n = samples_per_cycle(3200)
    vals = w.values()
    assert np.max(np.abs(vals[3, w.inception_index : k_trip])) > 1000  # fault current flowed
    assert np.all(vals[3:, k_trip + n :] == 0.0)  # and was interrupted
