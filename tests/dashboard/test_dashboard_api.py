"""Dashboard API on a real uvicorn server, real Mosquitto and a real SQLite historian."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gridedge.broker.client import MqttClient
from gridedge.broker.mosquitto import EmbeddedBrokers, free_port
from gridedge.contracts.catalog import DeviceStatus, DeviceStatusChanged
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.topics import Plane, Stream, topic
from gridedge.dashboard.latency import transfer_class
from gridedge.dashboard.service import DashboardOptions, DashboardService
from gridedge.historian.store import sqlite_url

TOKEN = "test-admin-token-0123456789"


@pytest.fixture
async def dash(brokers: EmbeddedBrokers, tmp_path: Path):
    opts = DashboardOptions(
        data_broker=brokers.data.url,
        mgmt_broker=brokers.mgmt.url,
        db_url=sqlite_url(tmp_path / "h.db"),
        admin_token=TOKEN,
        port=free_port(),
        flush_interval_s=0.1,
    )
    svc = await DashboardService(opts).start()
    try:
        yield svc
    finally:
        await svc.stop()


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_state_series_and_live_stream(dash: DashboardService, brokers: EmbeddedBrokers):
    async with httpx.AsyncClient(base_url=dash.url, timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "supervisory panel" in page.text
        assert (await http.get("/static/app.js")).status_code == 200

        frames: list[str] = []

        async def listen() -> None:
            async with http.stream("GET", "/api/stream") as resp:
                async for line in resp.aiter_lines():
                    frames.append(line)

        listener = asyncio.create_task(listen())
        await wait_for(lambda: _true(dash.live.bus.clients == 1))
        pub = await MqttClient(brokers.data.url, "pub").connect()
        mgmt = await MqttClient(brokers.mgmt.url, "pubm").connect()
        try:
            for i in range(5):
                pub.publish(
                    topic(Plane.DATA, "M1", Stream.TELEMETRY),
                    Telemetry(
                        device_id="M1",
                        seq=i,
                        ts=datetime.now(UTC),
                        voltage_v=[230.0 + i] * 3,
                        current_a=[1.0] * 3,
                    ),
                    qos=1,
                )
            mgmt.publish(
                topic(Plane.MGMT, "M1", Stream.STATUS),
                DeviceStatusChanged(device_id="M1", status=DeviceStatus.CONNECTED, timeout_s=3),
                qos=1,
            )

            async def stored() -> bool:
                s = (
                    await http.get(
                        "/api/series", params={"device_id": "M1", "quantity": "voltage_v"}
                    )
                ).json()
                return len(s["points"]) == 5

            await wait_for(stored)
            state = (await http.get("/api/state")).json()
            assert state["latest"]["M1"]["seq"] == 4
            assert state["statuses"]["M1"] == "connected"
            assert state["historian"]["readings_stored"] == 5
            assert state["topology"] is None  # no grid interface attached
            paths = {p["path"]: p for p in state["latency"]}
            tel = paths["telemetry (meter → platform)"]
            assert tel["count"] == 5 and tel["class_max"] == transfer_class(tel["max_ms"])
            await wait_for(lambda: _true(any('"seq": 4' in f for f in frames)))
            assert any(f == "event: status" for f in frames)
        finally:
            listener.cancel()
            await pub.disconnect()
            await mgmt.disconnect()


def _true(value: bool):
    async def inner() -> bool:
        return value

    return inner()


async def test_errors_name_the_field_and_actions_need_the_admin_token(dash: DashboardService):
    async with httpx.AsyncClient(base_url=dash.url, timeout=10) as http:
        r = await http.get("/api/series", params={"device_id": "M1", "quantity": "volts"})
        assert r.status_code == 400 and "quantity 'volts'" in r.json()["title"]
        r = await http.get("/api/series", params={"device_id": "M1", "max_points": 0})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "max_points"
        # no token, wrong token, then a right token but no grid attached
        r = await http.post("/api/switches/SW-1", json={"closed": False})
        assert r.status_code == 401
        r = await http.post(
            "/api/switches/SW-1", json={"closed": False}, headers={"Authorization": "Bearer nope"}
        )
        assert r.status_code == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = await http.post("/api/faults", json={"branch_id": "L1", "position": 2}, headers=auth)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "position"
        r = await http.post("/api/switches/SW-1", json={"closed": False}, headers=auth)
        assert r.status_code == 503 and "no grid interface" in r.json()["title"]


def test_transfer_classes_follow_iec_61850_5():
    assert transfer_class(0.5) == "TT6"
    assert transfer_class(3.0) == "TT6"
    assert transfer_class(3.1) == "TT5"
    assert transfer_class(15) == "TT4"
    assert transfer_class(99) == "TT3"
    assert transfer_class(499) == "TT2"
    assert transfer_class(1000) == "TT1"
    assert transfer_class(1000.1) == "TT0"
    with pytest.raises(ValueError):
        transfer_class(-1)


def test_flisr_steps_from_a_record():
    from gridedge.dashboard.live import flisr_steps

    steps = flisr_steps(
        {
            "steps": [
                {"name": "detect", "duration_ms": 20},
                {"name": "locate", "duration_s": 0.5},
                {"bad": 1},
            ]
        }
    )
    assert steps == [
        {"name": "detect", "start_ms": 0.0, "duration_ms": 20.0},
        {"name": "locate", "start_ms": 20.0, "duration_ms": 500.0},
    ]
    assert json.dumps(steps)
