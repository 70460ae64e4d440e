"""A small real relay on MQTT for the gateway tests: obeys ``Command`` on data/<id>/command, then
(after the relay "moves") answers ``CommandResult`` with its actual state and publishes telemetry
carrying ``relay_closed`` — what a platform meter does."""

from __future__ import annotations

import asyncio

from gridedge.broker.client import MqttClient
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.topics import Plane, Stream, parse_topic, subscription, topic


class RelayResponder:
    def __init__(self, url: str, move_s: float = 0.05, stuck: set[str] | None = None) -> None:
        self.client = MqttClient(url, "test-relays")
        self.closed: dict[str, bool] = {}
        self.commands: list[Command] = []
        self.move_s = move_s
        self.stuck = stuck or set()  # relays that refuse to move (welded contacts)
        self.ignore: set[str] = set()  # devices whose commands another relay answers

    async def start(self) -> RelayResponder:
        self.client.subscribe(subscription(Plane.DATA, "+", Stream.COMMAND), self._on_command, 1)
        await self.client.connect()
        return self

    async def _on_command(self, t: str, payload: bytes) -> None:
        cmd = Command.from_json(payload)
        assert parse_topic(t).device_id == cmd.device_id
        self.commands.append(cmd)
        if cmd.device_id in self.ignore:
            return
        await asyncio.sleep(self.move_s)
        before = self.closed.get(cmd.device_id, True)
        want = cmd.action == CommandAction.CLOSE
        now = before if cmd.device_id in self.stuck else want
        self.closed[cmd.device_id] = now
        res = CommandResult(
            command_id=cmd.command_id,
            device_id=cmd.device_id,
            target=cmd.target,
            ok=now == want,
            closed=now,
            reason="" if now == want else "relay did not move",
        )
        self.client.publish(topic(Plane.DATA, cmd.device_id, Stream.COMMAND_RESULT), res, qos=1)

    def telemetry(self, device_id: str, volts: float, amps: float, **kw: object) -> Telemetry:
        t = Telemetry(
            device_id=device_id,
            voltage_v=[volts, volts + 1, volts + 2],
            current_a=[amps, amps, amps],
            active_power_w=[volts * amps * 0.9] * 3,
            power_factor=[0.9, 0.9, 0.9],
            frequency_hz=50.0,
            energy_wh=1234.0,
            relay_closed=self.closed.get(device_id, True),
            **kw,  # type: ignore[arg-type]
        )
        self.client.publish(topic(Plane.DATA, device_id, Stream.TELEMETRY), t, qos=1)
        return t

    async def stop(self) -> None:
        await self.client.disconnect()
