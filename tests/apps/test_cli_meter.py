"""``gridedge node run --daq replay --daq-opt file=… --daq-opt loop=true`` as a separate
process: the CLI builds the backend with make_backends, the catalog assigns the built-in apps,
telemetry arrives on Mosquitto with the replayed values; a bad option is refused by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridedge.contracts.topics import Plane, subscription
from tests.apps.context import BrokerCollector, eventually
from tests.apps.signals import balanced, synthesize

RATE = 3200.0


def _gridedge(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gridedge.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
async def test_node_cli_with_replay_backend(catalog_server: Any, tmp_path: Path) -> None:
    x = synthesize(
        [(0.0, balanced(231.0), balanced(4.0, -20.0))], start_ns=0, duration_s=1.0, rate_hz=RATE
    )
    t = np.arange(x.shape[1]) / RATE
    lines = ["t_s,va,vb,vc,ia,ib,ic"]
    lines += [",".join(f"{v:.6f}" for v in (t[k], *x[:, k])) for k in range(x.shape[1])]
    (tmp_path / "wave.csv").write_text("\n".join(lines))
    apps = [{"name": "telemetry", "version": "1.0.0", "params": {"interval_s": 0.2}}]
    creds = await catalog_server.add_device("SM-CLI", apps=apps, update_period_s=30.0)
    env = {
        **os.environ,
        "GRIDEDGE_CATALOG_URL": catalog_server.url,
        "GRIDEDGE_DATA_DIR": str(tmp_path / "data"),
    }
    # a wrong option is refused before anything starts, naming the option
    bad = _gridedge(
        "node", "run", "--id", "SM-CLI", "--secret", creds.provisioning_secret,
        "--daq", "replay", "--daq-opt", "file=wave.csv", "--daq-opt", "rms_cycles=many",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    out, _ = bad.communicate(timeout=60)
    assert bad.returncode != 0 and "rms_cycles" in out, out
    proc = _gridedge(
        "node", "run", "--id", "SM-CLI", "--secret", creds.provisioning_secret,
        "--daq", "replay", "--daq-opt", "file=wave.csv", "--daq-opt", "loop=true",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        url = catalog_server.brokers.data.url
        async with BrokerCollector(url, subscription(Plane.DATA, "SM-CLI")) as col:
            await eventually(lambda: len(col.on("telemetry")) >= 4 or proc.poll() is not None, 60)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        tel = col.on("telemetry")
        assert [m["seq"] for m in tel] == list(range(tel[0]["seq"], tel[0]["seq"] + len(tel)))
        assert np.allclose(tel[-1]["voltage_v"], 231.0, rtol=1e-3)
        assert np.allclose(tel[-1]["current_a"], 4.0, rtol=1e-3)
        assert tel[-1]["device_id"] == "SM-CLI"
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
