"""The built-in meter apps started by the real node runtime (entry point
``gridedge.apps.<name>:factory``), configured by the real catalog, talking over real Mosquitto,
with real backends: a replay DAQ and a Modbus relay board on pymodbus' serial server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridedge.broker.client import MqttClient
from gridedge.clock import Clock
from gridedge.contracts.commands import Command, CommandAction
from gridedge.contracts.topics import Plane, Stream, subscription, topic
from gridedge.node.backends.modbus_link import ModbusLink, ModbusLinkConfig
from gridedge.node.backends.modbus_relay import ModbusRelay
from gridedge.node.backends.replay import ReplayDaq
from gridedge.node.runtime import Node, NodeOptions
from tests.apps.context import BrokerCollector, eventually
from tests.apps.signals import balanced, synthesize
from tests.backends.modbus_sim import SimulatedBus, device, pzem_registers

RATE = 3200.0


@pytest.mark.slow
async def test_meter_apps_on_a_node(catalog_server: Any, tmp_path: Path) -> None:
    clock = Clock("wall")
    start = clock.now_ns() - 1_000_000_000
    x = synthesize(
        [(0.0, balanced(230.0), balanced(7.0, -15.0))], start_ns=start, duration_s=2.0, rate_hz=RATE
    )
    daq = ReplayDaq.from_samples(x, RATE, clock, origin_ns=start, loop=True)
    bus = await SimulatedBus([device(2, pzem_registers(230, 1, 230, 0, 50, 1))]).start()
    link = ModbusLink(ModbusLinkConfig(port=bus.line.client_tty, timeout_s=0.5, retries=0))
    act = ModbusRelay(link, address=2, relay_coil=0)
    apps = [
        {"name": "telemetry", "version": "1.0.0", "params": {"interval_s": 0.1}},
        {"name": "outage", "version": "1.0.0", "params": {"poll_interval_s": 0.1}},
        {"name": "relay", "version": "1.0.0", "params": {}},
    ]
    creds = await catalog_server.add_device("SM-7", apps=apps, update_period_s=30.0)
    node = Node(
        NodeOptions(
            device_id="SM-7",
            catalog_url=catalog_server.url,
            state_dir=tmp_path / "node",
            secret=creds.provisioning_secret,
            daq=daq,
            actuators=act,
            clock=clock,
        )
    )
    url = catalog_server.brokers.data.url
    try:
        async with BrokerCollector(url, subscription(Plane.DATA, "SM-7")) as col:
            await node.start()
            await eventually(lambda: len(col.on("telemetry")) >= 8, 20)
            tel = col.on("telemetry")
            assert [t["seq"] for t in tel] == list(range(len(tel)))
            assert np.allclose(tel[-1]["voltage_v"], 230.0, rtol=1e-3)
            assert np.allclose(tel[-1]["current_a"], 7.0, rtol=1e-3)
            assert tel[-1]["relay_closed"] is False  # read from the relay board
            # FLISR-style command over the broker; the answer is the board's read-back state
            sender = MqttClient(url, client_id="flisr-test")
            await sender.connect()
            try:
                cmd = Command(device_id="SM-7", action=CommandAction.CLOSE, origin="test")
                sender.publish(topic(Plane.DATA, "SM-7", Stream.COMMAND), cmd, qos=1)
                await eventually(lambda: col.on("command-result"), 15)
            finally:
                await sender.disconnect()
            res = col.on("command-result")[0]
            assert (res["command_id"], res["ok"], res["closed"]) == (cmd.command_id, True, True)
            assert await act.read_coil(0) is True
            await eventually(lambda: any(b["relay_closed"] for b in col.on("telemetry")), 10)
            assert col.on("event") and col.on("event")[0]["kind"] == "relay-changed"
    finally:
        with contextlib.suppress(Exception):
            await node.stop()
        link.close()
        await bus.stop()
