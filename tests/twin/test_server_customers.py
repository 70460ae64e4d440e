"""Customer relays and phase selectors over the network interface (seed 002 operator units),
on the LV grid with single-phase customers, solved with unbalanced power flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridedge.broker.mosquitto import free_port
from gridedge.clock import Clock
from gridedge.twin.client import TwinActuators, TwinApiError, TwinClient, TwinDaq
from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions
from gridedge.twin.telemetry import IDEAL


@pytest.fixture
def lv() -> Iterator[TwinServer]:
    from gridedge.twin.model import Twin

    twin = Twin.from_name("lv-residential", clock=Clock("stepped", start_ns=0))
    srv = TwinServer(TwinService(twin, TwinServiceOptions(accuracy=IDEAL)), port=free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def test_relay_and_phase_selector_move_the_load(lv: TwinServer) -> None:
    twin = lv.service.twin
    cid = "C01"
    cust = twin.customers[cid]
    head = next(p.id for p in twin.measurement_points if p.node_id == "LV-BB" and p.id != "M-LV"
                and cust.node_id.startswith(p.id.removeprefix("M-")))  # fmt: skip
    k0 = "abc".index(cust.phase)
    async with TwinClient(lv.url) as c:
        meter = TwinDaq(c, cid)
        unit = TwinActuators(c, customer_id=cid)
        t = await meter.read_rms()
        assert t.phase == cust.phase and t.relay_closed is True
        assert len(t.voltage_v) == 1 and 200 < t.voltage_v[0] < 245
        assert t.active_power_w[0] == pytest.approx(cust.p_w, rel=1e-6)
        before = await c.telemetry(head)
        assert await unit.set_relay(False) is False
        t_off = await meter.read_rms()
        after_off = await c.telemetry(head)
        assert t_off.current_a == [0.0] and t_off.relay_closed is False
        assert after_off.active_power_w[k0] == pytest.approx(
            before.active_power_w[k0] - cust.p_w, rel=0.02
        )
        assert await unit.set_relay(True) is True
        new = "abc"[(k0 + 1) % 3]
        assert await unit.select_phase(new) == new
        t_new = await meter.read_rms()
        moved = await c.telemetry(head)
        log = await c.events_log()
        with pytest.raises(TwinApiError) as exc:
            await c.window(cid, pre_s=0.1, post_s=0.0, around="now")
    assert t_new.phase == new and t_new.active_power_w[0] == pytest.approx(cust.p_w, rel=1e-6)
    k1 = "abc".index(new)
    assert moved.active_power_w[k1] == pytest.approx(before.active_power_w[k1] + cust.p_w, rel=0.02)
    assert moved.active_power_w[k0] == pytest.approx(before.active_power_w[k0] - cust.p_w, rel=0.02)
    assert [e.kind for e in log] == ["relay-changed", "relay-changed", "phase-changed"]
    assert exc.value.status == 422 and exc.value.fields == ["point_id"]
