"""docs/apps.md, executed: the files come out of the page, the commands are the page's commands
(run as subprocesses of the installed ``gridedge``), against a real catalog and Mosquitto."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from gridedge.contracts.topics import Plane, subscription
from gridedge.node import app_cli
from tests.node.helpers import Collector

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "apps.md"
# `gridedge node …` as its own process; the module is invoked directly because the root CLI
# imports every role (the twin's pandapower alone takes seconds).
NODE_CLI = [sys.executable, "-c", "from gridedge.node.cli import app; app()"]


def doc_files() -> dict[str, str]:
    text = DOC.read_text()
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S))


def gridedge(*args: str, cwd: Path, env: dict[str, str]) -> str:
    """``gridedge app …``: the same Typer app, invoked in-process (in a worker thread)."""
    assert args[0] == "app"
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app_cli.app, list(args[1:]), env=env)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, f"gridedge {' '.join(args)} failed:\n{result.output}"
    return result.output


async def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return await asyncio.to_thread(gridedge, *args, cwd=cwd, env=env)


async def wait_app_state(cat: Any, device: str, app: str, version: str, state: str) -> Any:
    for _ in range(150):
        rec = await cat.admin.get_device(device)
        for s in rec.app_states:
            if s.app == app and s.version == version and s.state.value == state:
                return s
        await asyncio.sleep(0.1)
    raise AssertionError(f"{app} {version} never reached {state}: {rec.app_states}")


async def test_walkthrough(catalog_server: Any, tmp_path: Path) -> None:
    cat = catalog_server
    files = doc_files()
    assert set(files) == {"hello/hello_app/__init__.py", "hello/manifest.json"}
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    env = {
        **os.environ,
        "GRIDEDGE_CATALOG_URL": cat.url,
        "GRIDEDGE_ADMIN_TOKEN": cat.admin_token,
        "GRIDEDGE_DATA_DIR": str(tmp_path / "data"),
    }

    # steps 2-4: key, pack, sign, verify, publish
    await run_cli("app", "keygen", "--out", "keys/publisher.pem", cwd=tmp_path, env=env)
    await run_cli("app", "pack", "hello", "--out", "dist/hello-1.0.0.zip", cwd=tmp_path, env=env)
    await run_cli(
        "app", "sign", "dist/hello-1.0.0.zip", "--key", "keys/publisher.pem", cwd=tmp_path, env=env
    )
    out = await run_cli(
        "app",
        "verify",
        "dist/hello-1.0.0.zip",
        "--trusted-key",
        "keys/publisher.pem.pub",
        cwd=tmp_path,
        env=env,
    )
    assert "ok" in out
    await run_cli("app", "publish", "dist/hello-1.0.0.zip", cwd=tmp_path, env=env)

    # step 5: register (the curl of the page) and run the node
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{cat.url}/v1/devices",
            headers={"Authorization": f"Bearer {cat.admin_token}"},
            json={"id": "M7", "kind": "meter", "update_period_s": 60},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["provisioning_secret"]
    node = subprocess.Popen(
        [
            *NODE_CLI,
            "run",
            "--id",
            "M7",
            "--secret",
            secret,
            "--trusted-key",
            "keys/publisher.pem.pub",
            "--daq",
            "none",
            "--state-dir",
            "state/M7",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with Collector(cat.brokers.data.url, subscription(Plane.DATA, "M7", "hello")) as col:
            # step 6: deploy, re-parameterise, update, roll back (refused), remove
            await run_cli(
                "app",
                "assign",
                "--device",
                "M7",
                "--name",
                "hello",
                "--version",
                "1.0.0",
                "--params",
                '{"interval_s": 0.2}',
                cwd=tmp_path,
                env=env,
            )
            await col.wait_for(lambda: len(col.items) >= 3, 20)
            await run_cli(
                "app",
                "assign",
                "--device",
                "M7",
                "--name",
                "hello",
                "--version",
                "1.0.0",
                "--params",
                '{"interval_s": 0.2, "greeting": "hi"}',
                cwd=tmp_path,
                env=env,
            )
            await col.wait_for(lambda: col.items[-1][2]["greeting"] == "hi", 10)

            manifest = tmp_path / "hello" / "manifest.json"
            manifest.write_text(manifest.read_text().replace('"1.0.0"', '"1.1.0"'))
            code = tmp_path / "hello" / "hello_app" / "__init__.py"
            code.write_text(
                code.read_text().replace(
                    '"count": ctx.state["count"]}', '"count": ctx.state["count"], "v": 2}'
                )
            )
            await run_cli(
                "app", "pack", "hello", "--out", "dist/hello-1.1.0.zip", cwd=tmp_path, env=env
            )
            await run_cli(
                "app",
                "sign",
                "dist/hello-1.1.0.zip",
                "--key",
                "keys/publisher.pem",
                cwd=tmp_path,
                env=env,
            )
            await run_cli("app", "publish", "dist/hello-1.1.0.zip", cwd=tmp_path, env=env)
            await run_cli(
                "app",
                "assign",
                "--device",
                "M7",
                "--name",
                "hello",
                "--version",
                "1.1.0",
                "--params",
                '{"interval_s": 0.2}',
                cwd=tmp_path,
                env=env,
            )
            await col.wait_for(lambda: col.items[-1][2].get("v") == 2, 15)
            counts = [b["count"] for _, _, b in col.items]
            assert counts == list(
                range(counts[0], counts[0] + len(counts))
            )  # ctx.state carried over

            await run_cli(
                "app",
                "assign",
                "--device",
                "M7",
                "--name",
                "hello",
                "--version",
                "1.0.0",
                cwd=tmp_path,
                env=env,
            )
            st = await wait_app_state(cat, "M7", "hello", "1.0.0", "rejected")
            assert "rollback" in st.reason
            await run_cli(
                "app",
                "assign",
                "--device",
                "M7",
                "--name",
                "hello",
                "--version",
                "1.1.0",
                "--remove",
                cwd=tmp_path,
                env=env,
            )
            await wait_app_state(cat, "M7", "hello", "1.1.0", "stopped")
    finally:
        node.send_signal(signal.SIGINT)
        try:
            log = node.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            node.kill()
            log = node.communicate()[0]
    assert node.returncode == 0, log
