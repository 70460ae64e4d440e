"""Liveness: a silent device is marked disconnected after its timeout and the change is published
retained on the management plane; its next sign of life (check-in or MQTT heartbeat) brings it back."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from gridedge.broker.client import MqttClient
from gridedge.contracts.catalog import DeviceStatus, Heartbeat
from gridedge.contracts.topics import Plane, Stream, topic
from tests.catalog.helpers import Recorder


async def test_silent_device_disconnects_and_comes_back(catalog_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gridedge.catalog")
    status_topic = topic(Plane.MGMT, "M1", Stream.STATUS)
    rec = await Recorder(catalog_server.brokers.mgmt.url).start(status_topic)
    client, _ = await catalog_server.provisioned("M1", update_period_s=0.3)
    await rec.wait_for(lambda: any(p["status"] == "connected" for p in rec.on(status_topic)))
    await rec.wait_for(
        lambda: rec.on(status_topic)[-1]["status"] == "disconnected", 5, "disconnected"
    )
    gone = rec.on(status_topic)[-1]
    silent = (
        datetime.fromisoformat(gone["ts"]) - datetime.fromisoformat(gone["last_seen"])
    ).total_seconds()
    assert 0.9 <= silent < 0.9 + 0.5, silent  # timeout 3 x 0.3 s, sweep every 0.1 s
    assert rec.on(status_topic)[-1]["timeout_s"] == pytest.approx(0.9)
    assert (await catalog_server.admin.get_device("M1")).status == DeviceStatus.DISCONNECTED

    # a late subscriber still learns it: the status is retained
    late = await Recorder(catalog_server.brokers.mgmt.url).start(status_topic)
    assert late.on(status_topic)[-1]["status"] == "disconnected"

    await client.check_in()
    await rec.wait_for(lambda: rec.on(status_topic)[-1]["status"] == "connected", 5, "reconnect")
    assert (await catalog_server.admin.get_device("M1")).status == DeviceStatus.CONNECTED
    # logged once each way, not on every sweep
    await rec.wait_for(
        lambda: rec.on(status_topic)[-1]["status"] == "disconnected", 5, "second disconnect"
    )
    msgs = [r.getMessage() for r in caplog.records if r.name.startswith("gridedge.catalog")]
    assert sum("M1 disconnected" in m for m in msgs) == 2
    assert sum("M1 connected again" in m for m in msgs) == 1
    await rec.stop()
    await late.stop()


async def test_mqtt_heartbeat_keeps_a_device_alive(catalog_server) -> None:
    await catalog_server.provisioned("M2", update_period_s=0.3)
    await catalog_server.provisioned("M3", update_period_s=0.3)  # stays silent
    node = await MqttClient(catalog_server.brokers.mgmt.url).connect()
    hb_topic = topic(Plane.MGMT, "M2", Stream.HEARTBEAT)
    for _ in range(15):  # 1.5 s, well past the 0.9 s timeout
        node.publish(hb_topic, Heartbeat(device_id="M2", settings_version=1), qos=0)
        await asyncio.sleep(0.1)
    assert (await catalog_server.admin.get_device("M2")).status == DeviceStatus.CONNECTED
    assert (await catalog_server.admin.get_device("M3")).status == DeviceStatus.DISCONNECTED
    # a heartbeat brings a disconnected device back too
    node.publish(topic(Plane.MGMT, "M3", Stream.HEARTBEAT), Heartbeat(device_id="M3"), qos=0)
    for _ in range(50):
        if (await catalog_server.admin.get_device("M3")).status == DeviceStatus.CONNECTED:
            break
        await asyncio.sleep(0.02)
    assert (await catalog_server.admin.get_device("M3")).status == DeviceStatus.CONNECTED
    await node.disconnect()


async def test_registered_but_never_provisioned_devices_are_not_swept(catalog_server) -> None:
    await catalog_server.add_device("NEW", update_period_s=0.1)
    await asyncio.sleep(0.6)
    assert (await catalog_server.admin.get_device("NEW")).status == DeviceStatus.REGISTERED


async def test_app_state_over_mqtt_is_recorded_and_counts_as_life(catalog_server) -> None:
    from gridedge.contracts.catalog import AppStateReport, AppUpdateState

    await catalog_server.provisioned("M4", update_period_s=0.3)
    node = await MqttClient(catalog_server.brokers.mgmt.url).connect()
    node.publish(
        topic(Plane.MGMT, "M4", Stream.APP_STATE),
        AppStateReport(device_id="M4", app="outage", version="1.0.0", state=AppUpdateState.FAILED,
                       reason="signature mismatch"),
        qos=1,
    )  # fmt: skip
    # a report claiming to be another device on M4's topic is ignored
    node.publish(
        topic(Plane.MGMT, "M4", Stream.APP_STATE),
        AppStateReport(device_id="M5", app="x", version="1.0.0", state=AppUpdateState.RUNNING),
        qos=1,
    )
    for _ in range(100):
        rec = await catalog_server.admin.get_device("M4")
        if rec.app_states:
            break
        await asyncio.sleep(0.02)
    assert [(s.app, s.state, s.reason) for s in rec.app_states] == [
        ("outage", AppUpdateState.FAILED, "signature mismatch")
    ]
    assert rec.status == DeviceStatus.CONNECTED
    await node.disconnect()
