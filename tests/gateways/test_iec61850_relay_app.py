"""The whole actuation chain with the platform's own parts: SCADA (independent MMS client) →
gateway CSWI1.Pos → ``Command`` over Mosquitto → the platform's relay app (``gridedge.apps.relay``)
→ a Modbus relay board (pymodbus' serial server on a tty pair) → ``CommandResult`` with the
state read back from the board → XSWI1.Pos."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import iec61850

from gridedge.apps import relay
from gridedge.broker.client import MqttClient
from gridedge.clock import Clock
from gridedge.contracts.catalog import Capabilities
from gridedge.contracts.common import Message
from gridedge.contracts.topics import Plane, topic
from gridedge.node.backends.modbus_link import ModbusLink, ModbusLinkConfig
from gridedge.node.backends.modbus_relay import ModbusRelay
from tests.backends.modbus_sim import SimulatedBus, device, pzem_registers
from tests.gateways.conftest import DBPOS_OFF, DBPOS_ON, meter_address, mms_connect

FC = iec61850.FC


class MqttAppContext:
    """The part of the node's AppContext the relay app uses, on a real MQTT connection."""

    def __init__(self, device_id: str, client: MqttClient, actuators: Any) -> None:
        self.device_id = device_id
        self.client = client
        self.actuators = actuators
        self.params = {"timeout_s": 2.0}
        self.state: dict[str, Any] = {}
        self.clock = Clock()
        self.log = logging.getLogger(f"test.relay.{device_id}")

    def subscribe(self, pattern: str, handler: Any, qos: int = 0) -> None:
        self.client.subscribe(pattern, handler, qos)

    def publish(self, stream: str, payload: Message, qos: int = 0, retain: bool = False) -> None:
        self.client.publish(topic(Plane.DATA, self.device_id, stream), payload, qos, retain)

    def alive(self) -> None:
        pass


async def test_scada_operates_the_platform_relay_app_on_a_modbus_board(platform, brokers) -> None:
    cat = platform.catalog
    platform.relay.ignore.add("S4")  # only the platform's relay app answers for S4
    await cat.add_device("S4", capabilities=Capabilities(phases=3, relay=True))
    bus = await SimulatedBus([device(2, pzem_registers(230, 1, 230, 0, 50, 1))]).start()
    link = ModbusLink(ModbusLinkConfig(port=bus.line.client_tty, timeout_s=0.3, retries=0))
    board = ModbusRelay(link, address=2, relay_coil=0)
    client = await MqttClient(brokers.data.url, "meter-S4").connect()
    app_task = asyncio.ensure_future(relay.factory().run(MqttAppContext("S4", client, board)))
    try:
        gw = platform()
        conn = await mms_connect(await meter_address(gw, "S4"))
        for close, want in ((False, DBPOS_OFF), (True, DBPOS_ON), (False, DBPOS_OFF)):
            ctl = conn.create_control_object("S4MTR/CSWI1.Pos", iec61850.ControlModel.SBO_ENHANCED)
            ctl.set_origin(iec61850.OriginValue(or_cat=3, or_ident=b"scada"))
            await ctl.select_with_value(close)
            assert (await ctl.operate(close)).success
            assert await conn.read("S4MTR/XSWI1.Pos.stVal", FC.ST) == want
            assert await board.relay_state() is close  # the board really is in that state
        assert await conn.read_int32("S4MTR/XSWI1.OpCnt.stVal", FC.ST) == 2
    finally:
        app_task.cancel()
        with contextlib.suppress(BaseException):
            await app_task
        await client.disconnect()
        link.close()
        await bus.stop()
