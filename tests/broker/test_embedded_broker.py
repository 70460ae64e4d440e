import asyncio

import pytest

from gridedge.broker.client import BrokerUnavailable, MqttClient
from gridedge.broker.mosquitto import (
    BrokerError,
    EmbeddedBrokers,
    MosquittoInstance,
    free_port,
    port_open,
)
from gridedge.broker.urls import parse_broker_url
from gridedge.contracts import Plane, Stream, topic
from gridedge.contracts.catalog import Heartbeat


async def _wait_for(pred, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_planes_are_separate_brokers(brokers: EmbeddedBrokers) -> None:
    assert brokers.data.port != brokers.mgmt.port
    got_mgmt: list[str] = []
    got_data: list[str] = []
    m = await MqttClient(brokers.mgmt.url).connect()
    d = await MqttClient(brokers.data.url).connect()
    m.subscribe("gridedge/#", lambda t, p: got_mgmt.append(t), qos=1)
    d.subscribe("gridedge/#", lambda t, p: got_data.append(t), qos=1)
    await asyncio.sleep(0.1)
    m.publish(topic(Plane.MGMT, "M1", Stream.HEARTBEAT), Heartbeat(device_id="M1"), qos=1)
    await _wait_for(lambda: got_mgmt)
    await asyncio.sleep(0.1)
    assert got_mgmt == ["gridedge/v1/mgmt/M1/heartbeat"]
    assert got_data == []
    await m.disconnect()
    await d.disconnect()


async def test_handler_error_does_not_kill_delivery(mosquitto: MosquittoInstance) -> None:
    ok: list[bytes] = []
    c = await MqttClient(mosquitto.url).connect()

    def bad(t: str, p: bytes) -> None:
        raise RuntimeError("boom")

    c.subscribe("x/#", bad)
    c.subscribe("x/#", lambda t, p: ok.append(p))
    await asyncio.sleep(0.1)
    for i in range(3):
        c.publish("x/y", str(i).encode())
    await _wait_for(lambda: len(ok) == 3)
    assert c.handler_errors == 3
    await c.disconnect()


async def test_subscriptions_survive_broker_restart(tmp_path) -> None:
    port = free_port()
    inst = MosquittoInstance("r", port, workdir=tmp_path).start()
    got: list[bytes] = []
    c = MqttClient(inst.url, reconnect_delay_s=0.2)
    await c.connect()
    c.subscribe("r/#", lambda t, p: got.append(p))
    inst.stop()
    await _wait_for(lambda: not c.is_connected, 5)
    inst.start()
    await c.wait_connected(10)
    await asyncio.sleep(0.2)
    pub = await MqttClient(inst.url).connect()
    pub.publish("r/1", b"after")
    await _wait_for(lambda: got == [b"after"], 5)
    await pub.disconnect()
    await c.disconnect()
    inst.stop()


async def test_unreachable_broker_is_a_clear_error() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}"):
        await MqttClient(f"mqtt://127.0.0.1:{port}").connect(timeout_s=2)


def test_port_in_use_is_reported(tmp_path) -> None:
    with MosquittoInstance("a", free_port(), workdir=tmp_path) as a:
        other = MosquittoInstance("b", a.port, workdir=tmp_path)
        with pytest.raises(BrokerError, match="already in use"):
            other.start()


def test_embedded_brokers_listen_on_loopback_only(tmp_path) -> None:
    with EmbeddedBrokers.create(workdir=tmp_path) as b:
        conf = (tmp_path / "data.conf").read_text()
        assert f"listener {b.data.port} 127.0.0.1" in conf
        assert port_open("127.0.0.1", b.data.port) and port_open("127.0.0.1", b.mgmt.port)
    assert not b.data.running() and not b.mgmt.running()


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user"),
    [
        ("mqtt://127.0.0.1:1883", "127.0.0.1", 1883, False, None),
        ("mqtts://broker.example:8884", "broker.example", 8884, True, None),
        ("mqtt://u%40x:p@h", "h", 1883, False, "u@x"),
    ],
)
def test_parse_broker_url(url: str, host: str, port: int, tls: bool, user: str | None) -> None:
    a = parse_broker_url(url)
    assert (a.host, a.port, a.tls, a.username) == (host, port, tls, user)


@pytest.mark.parametrize("url", ["http://h:1", "mqtt://", "mqtt://h:99999"])
def test_bad_broker_url(url: str) -> None:
    with pytest.raises(ValueError, match="broker url"):
        parse_broker_url(url)
