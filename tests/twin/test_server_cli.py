"""``gridedge twin serve`` as its own process, as a deployment runs it."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from gridedge.broker.mosquitto import free_port
from gridedge.twin.client import TwinClient

CLI = [sys.executable, "-m", "gridedge.cli", "twin", "serve"]


@pytest.mark.slow
async def test_serve_command_runs_the_interface() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "--grid", "turin-2feeder", "--port", str(port), "--clock", "stepped",
         "--trip-delay", "0.25"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "twin serve did not come up"
            time.sleep(0.2)
        async with TwinClient(url) as c:
            assert (await c.clock())["mode"] == "stepped"
            assert "M1" in {p.id for p in await c.points()}
            info = await c.apply_fault("L-A4-A5", fraction=0.2, kind="3ph")
            st = await c.advance(0.5)
            w = await c.window("M1", pre_s=0.1, post_s=0.3)
        assert st.switches["CB-A"] is False and st.fault is not None
        assert st.fault.trip_ns == info.inception_ns + 250_000_000
        assert w.inception_index == 320
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_bad_options() -> None:
    """Checked before anything binds a port (in-process: the same Typer app)."""
    from typer.testing import CliRunner

    from gridedge.twin.cli import app

    r = CliRunner().invoke(app, ["serve", "--grid", "atlantis", "--port", str(free_port())])
    assert r.exit_code == 2 and "atlantis" in r.output and "--grid" in r.output
    r = CliRunner().invoke(app, ["serve", "--clock", "sundial", "--port", str(free_port())])
    assert r.exit_code == 2 and "--clock" in r.output
    r = CliRunner().invoke(app, ["serve", "--profiles", "nonsense", "--port", str(free_port())])
    assert r.exit_code == 2 and "--profiles" in r.output
