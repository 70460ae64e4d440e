"""Relay app: commands executed on a Modbus relay board (pymodbus' serial server over a tty
pair), answered with the state read back from the board; refusals with reasons."""

from __future__ import annotations

import json

import pytest

from gridedge.apps import relay
from gridedge.clock import Clock
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.node.backends.modbus_link import ModbusLink, ModbusLinkConfig
from gridedge.node.backends.modbus_relay import ModbusRelay
from tests.apps.context import FakeContext, eventually
from tests.backends.modbus_sim import SimulatedBus, device, pzem_registers

CMD_TOPIC = "gridedge/v1/data/S4/command"


@pytest.fixture
async def rig(start_app):
    bus = await SimulatedBus([device(2, pzem_registers(230, 1, 230, 0, 50, 1))]).start()
    link = ModbusLink(ModbusLinkConfig(port=bus.line.client_tty, timeout_s=0.3, retries=0))
    act = ModbusRelay(link, address=2, relay_coil=0, switch_coils={"SW7": 4}, phase_register=3)
    ctx = FakeContext("S4", Clock(), actuators=act, params={"timeout_s": 2.0})
    app = relay.factory()
    start_app(app, ctx)
    await eventually(lambda: ctx.subscriptions)
    yield ctx, act, bus
    link.close()
    await bus.stop()


async def _send(ctx: FakeContext, payload: bytes | Command) -> CommandResult:
    before = len(ctx.on("command-result"))
    data = payload.to_json() if isinstance(payload, Command) else payload
    assert await ctx.deliver(CMD_TOPIC, data) == 1
    await eventually(lambda: len(ctx.on("command-result")) > before, 10)
    pub = ctx.on("command-result")[-1]
    assert pub.topic == "gridedge/v1/data/S4/command-result" and pub.qos == 1
    return CommandResult.from_json(pub.payload)


async def test_commands_act_and_report_the_read_back_state(rig) -> None:
    ctx, act, _ = rig
    assert ctx.subscriptions[0][0] == CMD_TOPIC
    r = await _send(
        ctx, Command(device_id="S4", target="relay", action=CommandAction.CLOSE, origin="flisr")
    )
    assert (r.ok, r.closed, r.target) == (True, True, "relay")
    assert await act.read_coil(0) is True  # really moved on the board
    r = await _send(ctx, Command(device_id="S4", target="SW7", action=CommandAction.CLOSE))
    assert (r.ok, r.closed) == (True, True) and await act.read_coil(4) is True
    r = await _send(ctx, Command(device_id="S4", target="SW7", action=CommandAction.OPEN))
    assert (r.ok, r.closed) == (True, False) and await act.read_coil(4) is False
    r = await _send(
        ctx,
        Command(
            device_id="S4", target="phase-selector", action=CommandAction.SELECT_PHASE, phase="b"
        ),
    )
    assert (r.ok, r.phase) == (True, "b")
    changed = [DeviceEvent.from_json(p.payload) for p in ctx.on("event")]
    assert [e.kind for e in changed] == [EventKind.RELAY_CHANGED] * 3
    assert changed[0].detail == {
        "target": "relay",
        "closed": True,
        "command_id": changed[0].detail["command_id"],
        "origin": "flisr",
    }


async def test_refusals_name_the_reason(rig) -> None:
    ctx, act, _ = rig
    r = await _send(ctx, Command(device_id="S4", target="SW9", action=CommandAction.OPEN))
    assert not r.ok and "no 'SW9'" in r.reason and "SW7" in r.reason
    r = await _send(ctx, Command(device_id="M1", target="relay", action=CommandAction.OPEN))
    assert not r.ok and "for device 'M1'" in r.reason
    r = await _send(
        ctx, Command(device_id="S4", target="phase-selector", action=CommandAction.SELECT_PHASE)
    )
    assert not r.ok and "'phase'" in r.reason
    r = await _send(
        ctx, json.dumps({"command_id": "c-77", "device_id": "S4", "action": "toggle"}).encode()
    )
    assert (r.ok, r.command_id) == (False, "c-77") and "action" in r.reason
    r = await _send(ctx, b"not json")
    assert not r.ok and r.reason.startswith("malformed command")
    assert await act.read_coil(0) is False  # nothing moved


async def test_redelivered_command_is_answered_without_acting_twice(rig) -> None:
    ctx, act, _ = rig
    cmd = Command(device_id="S4", target="relay", action=CommandAction.CLOSE)
    first = await _send(ctx, cmd)
    assert first.closed is True
    await act.link.call(
        "test: opening behind the app's back", 2, lambda c: c.write_coil(0, False, device_id=2)
    )
    again = await _send(ctx, cmd)  # QoS 1 redelivery of the same command id
    assert again == first
    assert await act.read_coil(0) is False  # not closed a second time


async def test_silent_board_gives_a_failed_result_not_a_hang(rig) -> None:
    ctx, _, bus = rig
    bus.line.mangle = lambda d: b""
    r = await _send(ctx, Command(device_id="S4", target="relay", action=CommandAction.CLOSE))
    assert not r.ok and r.closed is None
    assert "no answer" in r.reason


async def test_idle_app_keeps_telling_the_watchdog(start_app, monkeypatch) -> None:
    monkeypatch.setattr(relay, "IDLE_PING_S", 0.02)
    ctx = FakeContext("S4", Clock())
    start_app(relay.factory(), ctx)
    await eventually(lambda: ctx.alive_calls >= 5, 5)


async def test_device_without_actuators_refuses(start_app) -> None:
    ctx = FakeContext("S4", Clock())
    start_app(relay.factory(), ctx)
    await eventually(lambda: ctx.subscriptions)
    r = await _send(ctx, Command(device_id="S4", target="relay", action=CommandAction.CLOSE))
    assert not r.ok and "no actuators" in r.reason
