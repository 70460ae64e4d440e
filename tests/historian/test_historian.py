"""Historian against a real Mosquitto and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridedge.broker.client import MqttClient
from gridedge.broker.mosquitto import EmbeddedBrokers, MosquittoInstance
from gridedge.contracts.catalog import DeviceStatus, DeviceStatusChanged
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.telemetry import DeviceEvent, EventKind, Telemetry
from gridedge.contracts.topics import Plane, Stream, topic
from gridedge.historian.ingest import Historian
from gridedge.historian.store import HistorianStore, QueryError, sqlite_url


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def reading(device: str, seq: int, ts: datetime, volts: float = 230.0) -> Telemetry:
    return Telemetry(
        device_id=device,
        seq=seq,
        ts=ts,
        voltage_v=[volts, volts + 1, volts + 2],
        current_a=[1.0, 2.0, 3.0],
        energy_wh=100.0 + seq,
    )


@pytest.fixture
def store(tmp_path: Path) -> HistorianStore:
    s = HistorianStore(sqlite_url(tmp_path / "hist.db"))
    yield s
    s.close()


async def test_messages_are_stored_in_order(mosquitto: MosquittoInstance, store: HistorianStore):
    hist = await Historian(store, mosquitto.url, flush_interval_s=0.2).start()
    pub = await MqttClient(mosquitto.url, "pub").connect()
    try:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(50):
            pub.publish(
                topic(Plane.DATA, "M1", Stream.TELEMETRY),
                reading("M1", i, t0 + timedelta(seconds=i)),
                qos=1,
            )
        for i in range(10):
            pub.publish(
                topic(Plane.DATA, "M2", Stream.TELEMETRY),
                reading("M2", i, t0 + timedelta(seconds=i), 231.0),
                qos=1,
            )
        await wait_for(lambda: hist.stats.readings_stored == 60)
        rows = store.readings("M1")
        assert [r["seq"] for r in rows] == list(range(50))
        assert rows[3]["voltage_v"] == [230.0, 231.0, 232.0]
        assert rows[3]["energy_wh"] == 103.0
        latest = store.latest_readings()
        assert latest["M1"]["seq"] == 49 and latest["M2"]["seq"] == 9
        assert hist.stats.rejected == 0 and hist.stats.dropped == 0
    finally:
        await pub.disconnect()
        await hist.stop()


async def test_flush_on_size_before_interval(mosquitto: MosquittoInstance, store: HistorianStore):
    # interval far away: only the size trigger can flush
    hist = await Historian(store, mosquitto.url, batch_size=25, flush_interval_s=30).start()
    pub = await MqttClient(mosquitto.url, "pub").connect()
    try:
        t0 = datetime.now(UTC)
        for i in range(25):
            pub.publish(topic(Plane.DATA, "M1", Stream.TELEMETRY), reading("M1", i, t0), qos=1)
        await wait_for(lambda: store.count("readings") == 25, 3.0)
        assert hist.stats.flushes == 1 and hist.stats.last_flush_rows == 25
        for i in range(5):  # below the batch size: stays pending
            pub.publish(topic(Plane.DATA, "M1", Stream.TELEMETRY), reading("M1", 25 + i, t0), qos=1)
        await wait_for(lambda: hist.pending == 5, 3.0)
        assert store.count("readings") == 25
    finally:
        await pub.disconnect()
        await hist.stop()
    # stop() flushes what was pending
    assert store.count("readings") == 30


async def test_flush_on_time(mosquitto: MosquittoInstance, store: HistorianStore):
    hist = await Historian(store, mosquitto.url, batch_size=10_000, flush_interval_s=0.3).start()
    pub = await MqttClient(mosquitto.url, "pub").connect()
    try:
        for i in range(3):
            pub.publish(
                topic(Plane.DATA, "M1", Stream.TELEMETRY),
                reading("M1", i, datetime.now(UTC)),
                qos=1,
            )
        await wait_for(lambda: hist.stats.received == 3, 3.0)
        t_seen = time.monotonic()
        await wait_for(lambda: hist.stats.readings_stored == 3, 3.0)
        assert time.monotonic() - t_seen < 1.0
        assert store.count("readings") == 3
    finally:
        await pub.disconnect()
        await hist.stop()


async def test_bad_payloads_are_counted_and_kept(
    mosquitto: MosquittoInstance, store: HistorianStore
):
    hist = await Historian(store, mosquitto.url, flush_interval_s=0.2).start()
    pub = await MqttClient(mosquitto.url, "pub").connect()
    try:
        t = topic(Plane.DATA, "M1", Stream.TELEMETRY)
        pub.publish(t, b"not json", qos=1)
        pub.publish(
            t,
            json.dumps(
                {
                    "schema": "gridedge.telemetry/1",
                    "device_id": "M1",
                    "voltage_v": [1, 2],
                    "current_a": [1, 2, 3],
                }
            ),
            qos=1,
        )
        pub.publish(t, reading("M9", 0, datetime.now(UTC)), qos=1)  # wrong device for topic
        pub.publish(t, reading("M1", 7, datetime.now(UTC)), qos=1)  # good one after the bad ones
        await wait_for(lambda: store.count("readings") == 1 and store.count("rejected") == 3)
        assert hist.stats.rejected == 3
        reasons = [p["reason"] for p in store.rejected()]
        assert any("voltage_v" in r for r in reasons)
        assert any("does not match" in r for r in reasons)
        assert any("json" in r.lower() for r in reasons)
        assert store.readings("M1")[0]["seq"] == 7
    finally:
        await pub.disconnect()
        await hist.stop()


async def test_events_commands_status_and_flisr(brokers: EmbeddedBrokers, store: HistorianStore):
    hist = await Historian(store, brokers.data.url, brokers.mgmt.url, flush_interval_s=0.2).start()
    data = await MqttClient(brokers.data.url, "pub-d").connect()
    mgmt = await MqttClient(brokers.mgmt.url, "pub-m").connect()
    seen: list[str] = []
    hist.add_listener(lambda kind, rec: seen.append(kind))
    try:
        now = datetime.now(UTC)
        data.publish(
            topic(Plane.DATA, "M3", Stream.EVENT),
            DeviceEvent(device_id="M3", kind=EventKind.LAST_GASP, occurred_at=now),
            qos=1,
        )
        cmd = Command(device_id="S1", target="SW-1", action=CommandAction.OPEN, origin="flisr")
        data.publish(topic(Plane.DATA, "S1", Stream.COMMAND), cmd, qos=1)
        data.publish(
            topic(Plane.DATA, "S1", Stream.COMMAND_RESULT),
            CommandResult(
                command_id=cmd.command_id, device_id="S1", target="SW-1", ok=True, closed=False
            ),
            qos=1,
        )
        data.publish(
            topic(Plane.DATA, "flisr", "record"),
            json.dumps(
                {
                    "schema": "gridedge.flisr-record/1",
                    "ts": now.isoformat(),
                    "faulted_section": "L3",
                }
            ),
            qos=1,
            retain=True,
        )
        mgmt.publish(
            topic(Plane.MGMT, "M3", Stream.STATUS),
            DeviceStatusChanged(device_id="M3", status=DeviceStatus.DISCONNECTED, timeout_s=3),
            qos=1,
        )
        mgmt.publish(
            topic(Plane.MGMT, "M3", Stream.STATUS),
            DeviceStatusChanged(device_id="M3", status=DeviceStatus.CONNECTED, timeout_s=3),
            qos=1,
        )
        await wait_for(lambda: store.count("events") == 6)
        evs = store.events(newest_first=False)
        # one broker keeps its order; the two planes are independent of each other
        data_evs = [e for e in evs if e["plane"] == "data"]
        assert [e["stream"] for e in data_evs] == ["event", "command", "command-result", "record"]
        assert [e["kind"] for e in data_evs[:3]] == ["last-gasp", "open", "ok"]
        assert [e["kind"] for e in evs if e["plane"] == "mgmt"] == ["disconnected", "connected"]
        assert store.last_flisr_record()["faulted_section"] == "L3"
        assert store.device_statuses()["M3"]["status"] == "connected"
        assert seen.count("status") == 2 and seen.count("event") == 4
    finally:
        await data.disconnect()
        await mgmt.disconnect()
        await hist.stop()


def test_series_downsamples_and_validates(store: HistorianStore):
    base = 1_700_000_000_000_000_000
    rows = []
    for i in range(1000):
        row = {
            "device_id": "M1",
            "ts_ns": base + i * 1_000_000_000,
            "received_ns": base,
            "seq": i,
            "relay_closed": True,
        }
        row.update({c: None for c in ("voltage_v_a", "voltage_v_b", "voltage_v_c")})
        row["voltage_v_a"] = float(i)
        rows.append(row)
    store.write_batch(rows, [])
    full = store.series("M1", "voltage_v_a", max_points=2000)
    assert len(full["points"]) == 1000 and not full["downsampled"]
    down = store.series("M1", "voltage_v", max_points=100)
    assert down["downsampled"] and 90 <= len(down["points"]) <= 100
    # bucket averages of a ramp stay on the ramp and cover its range
    assert down["points"][0][1] == pytest.approx(4.5, abs=1)
    assert down["points"][-1][1] > 980
    window = store.series("M1", "voltage_v_a", start_ns=base + 10 * 10**9, end_ns=base + 19 * 10**9)
    assert [p[1] for p in window["points"]] == [float(i) for i in range(10, 20)]
    with pytest.raises(QueryError, match="quantity 'volts'"):
        store.series("M1", "volts")
    with pytest.raises(QueryError, match="end must not be before start"):
        store.series("M1", "voltage_v", start_ns=5, end_ns=1)


async def test_a_full_buffer_drops_and_counts(mosquitto: MosquittoInstance, store: HistorianStore):
    # nothing flushes until stop(): the buffer bound is what limits memory, and every drop counts
    hist = await Historian(
        store, mosquitto.url, batch_size=10_000, flush_interval_s=30, max_buffer=5
    ).start()
    pub = await MqttClient(mosquitto.url, "pub").connect()
    try:
        t0 = datetime.now(UTC)
        for i in range(20):
            pub.publish(topic(Plane.DATA, "M1", Stream.TELEMETRY), reading("M1", i, t0), qos=1)
        await wait_for(lambda: hist.stats.received == 20)
        assert hist.stats.dropped == 15 and hist.stats.reasons["buffer full"] == 15
        assert hist.pending == 5
    finally:
        await pub.disconnect()
        await hist.stop()
    assert [r["seq"] for r in store.readings("M1")] == [0, 1, 2, 3, 4]
