"""``gridedge demo`` as a user runs it: a subprocess, real everything, free ports."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gridedge.broker.mosquitto import port_open
from tests.demo.running import GRIDEDGE, demo_env, start_demo


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_headless_demo_completes_the_scenario_and_prints_its_summary(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            *GRIDEDGE,
            "demo",
            "--headless",
            "--duration",
            "60",
            "--port",
            "0",
            "--dashboard-port",
            "0",
        ],
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "scenario             COMPLETED" in text
    assert re.search(r"fault\s+1ph on L-A2-A3 at 50%", text)
    assert re.search(r"protection\s+tripped CB-A", text)
    m = re.search(r"healthy part\s+(\d+)/(\d+) nodes energised", text)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0
    assert re.search(r"time to restore\s+\d+\.\d+ s", text)
    # what the build lacks is said, not faked
    if "FLISR          not available" in text:
        assert "MANUAL operator switching" in text and "not located" in text
    assert re.search(r"MMS endpoint\s+127\.0\.0\.1:\d+", text)
    assert "all stopped" in text.splitlines()[-1]
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    assert len(ports) >= 6 and not any(port_open("127.0.0.1", p) for p in ports)


@pytest.mark.slow
def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    running = start_demo(tmp_path)
    proc, text, url = running.proc, running.text, running.url
    try:
        state = httpx.get(f"{url}/api/state", timeout=10).json()
        assert state["topology"]["grid"] == "turin-2feeder"
        children = _descendants(proc.pid)
        assert len(children) >= 2, "the two Mosquitto brokers are child processes"
        ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, text + rest
    assert "all stopped" in rest.splitlines()[-1]
    time.sleep(0.5)
    assert not [p for p in children if _alive(p)]
    assert not [p for p in ports if port_open("127.0.0.1", p)]
