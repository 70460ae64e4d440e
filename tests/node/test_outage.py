"""Outages: broker stopped (store-and-forward, bound, drops counted), catalog down at boot,
node restarted while the catalog is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridedge.broker.client import MqttClient
from gridedge.broker.mosquitto import EmbeddedBrokers, MosquittoInstance, free_port
from gridedge.contracts.topics import Plane, subscription
from tests.node.helpers import Collector, build_signed
from tests.node.test_node import COUNTER, publish_package, register


@dataclass
class PersistentMosquitto(MosquittoInstance):
    """Mosquitto that keeps sessions across a restart, so the *test's subscriber* misses nothing
    while the broker is down; what the node must not lose is then all that is being tested."""

    def config_text(self) -> str:
        text = super().config_text().replace("persistence false", "persistence true")
        return text + f"persistence_location {self.workdir}/\npersistence_file {self.name}.db\n"


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[EmbeddedBrokers]:
    wd = tmp_path / "mqtt"
    b = EmbeddedBrokers(
        data=PersistentMosquitto("data", free_port(), workdir=wd),
        mgmt=MosquittoInstance("mgmt", free_port(), workdir=wd),
    )
    with b:
        yield b


class SessionCollector:
    """Counter subscriber with a persistent session (clean_session False, QoS 1)."""

    def __init__(self, url: str, pattern: str) -> None:
        self.url, self.pattern = url, pattern
        self.seqs: list[int] = []
        self.telemetry: list[int] = []
        self.events: list[dict] = []
        self.client = self._new()

    def _new(self) -> MqttClient:
        c = MqttClient(self.url, client_id="outage-collector", clean_session=False)
        c.subscribe(self.pattern, self._on, qos=1)
        return c

    def _on(self, t: str, payload: bytes) -> None:
        import json

        body = json.loads(payload)
        if t.endswith("/counter"):
            self.seqs.append(body["seq"])
        elif t.endswith("/telemetry"):
            self.telemetry.append(body["seq"])
        elif t.endswith("/event"):
            self.events.append(body)

    async def connect(self) -> None:
        await self.client.connect()


async def _outage(brokers: EmbeddedBrokers, seconds: float) -> None:
    brokers.data.stop()
    await asyncio.sleep(seconds)
    brokers.data.start()


async def _through_outage(
    catalog_server: Any,
    make_node: Any,
    device: str,
    app: dict[str, Any],
    state_key: str,
    outage_s: float = 3.0,
    drain_s: float = 15.0,
    **node_kw: Any,
) -> tuple[Any, SessionCollector, int]:
    """A node running ``app`` through a data-broker outage of ``outage_s``, watched by a
    collector with a persistent session: the node (apps stopped, outbox drained), the
    collector (disconnected) and how many messages the app says it published."""
    brokers = catalog_server.brokers
    secret = await register(catalog_server, device, [app])
    col = SessionCollector(brokers.data.url, subscription(Plane.DATA, device))
    await col.connect()
    node = await make_node(device, secret, **node_kw)
    await asyncio.sleep(0.5)
    await _outage(brokers, outage_s)
    await col.client.wait_connected(15)
    await asyncio.sleep(1.0)
    await node.apps.stop_all()
    published = node.apps.app_state[app["name"]][state_key]
    assert await node.planes[Plane.DATA].outbox.drain(drain_s)
    await asyncio.sleep(0.5)
    await col.client.disconnect()
    return node, col, published


async def test_broker_outage_loses_no_reading(catalog_server: Any, make_node: Any) -> None:
    node, col, published = await _through_outage(catalog_server, make_node, "O1", COUNTER, "seq")
    assert node.dropped == 0
    got = sorted(set(col.seqs))
    assert len(got) == published  # every reading, including those of the outage, arrived
    assert got == list(range(1, len(got) + 1))
    # delivered in order (duplicates are allowed by QoS 1, reordering is not)
    firsts = [s for i, s in enumerate(col.seqs) if s not in col.seqs[:i]]
    assert firsts == sorted(firsts)


async def test_broker_outage_loses_no_telemetry_reading(
    catalog_server: Any, make_node: Any
) -> None:
    # the telemetry app on the runtime's shared timer, the lean publish and PUBACK paths of the
    # MQTT client: through an outage every reading still arrives, in order
    from gridedge.node.fleet import SyntheticDaq

    app = {"name": "telemetry", "version": "1.0.0", "params": {"interval_s": 0.05}}
    node, col, published = await _through_outage(
        catalog_server, make_node, "O3", app, "next_seq", daq=SyntheticDaq("O3", 3)
    )
    assert node.dropped == 0 and published >= 60  # readings kept coming during the outage
    assert sorted(set(col.telemetry)) == list(range(published))
    firsts = [s for i, s in enumerate(col.telemetry) if s not in col.telemetry[:i]]
    assert firsts == sorted(firsts)


@pytest.mark.slow
async def test_broker_outage_30s_loses_no_reading(catalog_server: Any, make_node: Any) -> None:
    app = {**COUNTER, "params": {"interval_s": 0.1}}
    node, col, published = await _through_outage(
        catalog_server, make_node, "O30", app, "seq", outage_s=30.0, drain_s=20.0
    )
    got = sorted(set(col.seqs))
    assert node.dropped == 0 and published >= 300
    assert got == list(range(1, published + 1))


async def test_outbox_bound_drops_are_counted_and_reported(
    catalog_server: Any, make_node: Any
) -> None:
    brokers = catalog_server.brokers
    secret = await register(catalog_server, "O2", [{**COUNTER, "params": {"interval_s": 0.02}}])
    col = SessionCollector(brokers.data.url, subscription(Plane.DATA, "O2"))
    await col.connect()
    node = await make_node("O2", secret, outbox_max_messages=30)
    await asyncio.sleep(0.3)
    brokers.data.stop()
    await asyncio.sleep(2.0)  # ≈100 readings into a 30-message outbox
    brokers.data.start()
    await col.client.wait_connected(15)
    await asyncio.sleep(1.0)
    await node.apps.stop_all()  # no more readings: what was published can now all be accounted
    assert await node.planes[Plane.DATA].outbox.drain(15)
    await asyncio.sleep(1.5)
    published = node.apps.app_state["counter"]["seq"]
    dropped = node.planes[Plane.DATA].outbox.dropped
    assert dropped > 30
    got = set(col.seqs)
    # every reading either arrived or was counted as dropped — nothing vanished silently
    assert len(got) + dropped >= published
    assert len(got) + dropped <= published + 1  # an in-flight row trimmed after it arrived
    alarms = [e for e in col.events if e["kind"] == "alarm"]
    assert alarms and alarms[-1]["detail"]["reason"] == "outbox-overflow"
    assert sum(a["detail"]["dropped"] for a in alarms) >= dropped - 1


async def test_catalog_down_at_boot_then_works(catalog_server: Any, make_node: Any) -> None:
    secret = await register(catalog_server, "C1", [COUNTER])
    catalog_server.stop()
    boot = asyncio.create_task(make_node("C1", secret))
    await asyncio.sleep(2.0)
    assert not boot.done()  # still retrying
    await asyncio.to_thread(catalog_server.start)
    node = await asyncio.wait_for(boot, 15)
    assert node.catalog_ok is True and "counter" in node.apps.runners


async def test_restart_with_catalog_down_runs_on_persisted_settings(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    data, sig = build_signed(tmp_path, signing_key, "meterapp", "1.0.0")
    await publish_package(catalog_server, data, sig)
    secret = await register(
        catalog_server, "C2", [COUNTER, {"name": "meterapp", "version": "1.0.0"}]
    )
    state_dir = tmp_path / "nodes" / "C2-persist"
    first = await make_node("C2", secret, state_dir=state_dir)
    assert set(first.apps.runners) == {"counter", "meterapp"}
    await first.stop()
    catalog_server.stop()
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "C2")) as col:
        t0 = time.monotonic()
        second = await make_node("C2", None, state_dir=state_dir)  # no secret: token from disk
        await col.wait_for(lambda: col.on("counter") and col.on("versioned"), 10)
        assert time.monotonic() - t0 < 5
        assert second.catalog_ok is False
        assert set(second.apps.runners) == {"counter", "meterapp"}
        # the catalog returns: the token from disk is accepted, settings unchanged (304)
        await asyncio.to_thread(catalog_server.start)
        for _ in range(100):
            if second.catalog_ok:
                break
            await asyncio.sleep(0.1)
        assert second.catalog_ok is True


async def test_packet_ids_of_messages_lost_with_a_session_are_given_back(
    mosquitto: MosquittoInstance,
) -> None:
    """In-flight QoS 1 messages a clean-session reconnect throws away are re-sent by the outbox
    under new packet ids; the old ids must return to the client's allocator, or each outage leaks
    a window of the 65,535 ids until publishing fails (gmqtt itself does not give them back)."""
    import os
    import signal as sig

    from gridedge.node.outbox import MemoryOutbox, Outbox, track_acks

    client = MqttClient(mosquitto.url, client_id="ids")
    tracker = track_acks(client)
    await client.connect()
    outbox = Outbox(MemoryOutbox(), window=64)
    outbox.attach(client, tracker)
    outbox.start()
    ids = client._client._package_handler.id_generator
    assert mosquitto.pid
    os.kill(mosquitto.pid, sig.SIGSTOP)  # the broker hears nothing: no PUBACK comes back
    try:
        for k in range(20):
            outbox.put("gridedge/v1/data/ids/telemetry", f"{k}".encode())
        await asyncio.sleep(0.2)
        assert len(ids._used_ids) >= 20  # all in flight
    finally:
        os.kill(mosquitto.pid, sig.SIGKILL)
    mosquitto.stop()
    mosquitto.start()  # a fresh broker: the reconnect's CONNACK has no session
    assert await outbox.drain(20), "the outbox re-sent and delivered every message"
    assert outbox.delivered == 20
    assert len(ids._used_ids) == 0, f"packet ids never given back: {sorted(ids._used_ids)[:10]}"
    await outbox.stop()
    await client.disconnect()
