"""The command as a user runs it: ``gridedge catalog serve`` (``gridedge demo`` has its own tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gridedge.broker.mosquitto import free_port, port_open

GRIDEDGE = [sys.executable, "-m", "gridedge.cli"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDEDGE_")}
    env["GRIDEDGE_DATA_DIR"] = str(tmp / "data")
    return env


def test_catalog_serve_spawns_brokers_and_stops_them(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*GRIDEDGE, "catalog", "serve", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert health["status"] == "ok" and health["mgmt_broker_connected"] is True
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/devices",
            json={"id": "M1", "kind": "meter"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201 and r.json()["provisioning_secret"]
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
        assert (
            "/v1/devices/{device_id}/settings"
            in httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]
        )
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert (tmp_path / "data" / "catalog.db").exists()
    # the embedded brokers it spawned are gone
    mqtt_ports = [int(p) for p in re.findall(r"mqtt://127\.0\.0\.1:(\d+)", output)]
    assert len(mqtt_ports) == 2, output
    assert not any(port_open("127.0.0.1", p) for p in mqtt_ports)
