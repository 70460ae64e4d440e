"""Start ``gridedge demo --no-scenario`` as a user would (a subprocess, free ports, its own data
folder) and wait until it prints "ready after"; shared by the demo and browser tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GRIDEDGE = [sys.executable, "-m", "gridedge.cli"]


def demo_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDEDGE_")}
    env["GRIDEDGE_DATA_DIR"] = str(tmp / "data")
    return env


@dataclass
class RunningDemo:
    proc: subprocess.Popen[str]
    text: str  # everything printed up to "ready after"
    url: str  # the dashboard


def start_demo(tmp: Path, timeout_s: float = 120.0) -> RunningDemo:
    """Callers stop it with SIGINT (as Ctrl-C) and ``communicate()``."""
    proc = subprocess.Popen(
        [*GRIDEDGE, "demo", "--no-scenario", "--port", "0", "--dashboard-port", "0"],
        env=demo_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready after"):
            break
    text = "".join(lines)
    match = re.search(r"dashboard\s+(http://127\.0\.0\.1:\d+)", text)
    if "ready after" not in text or match is None:
        proc.kill()
        proc.communicate(timeout=30)
        raise AssertionError(f"demo did not get ready:\n{text}")
    return RunningDemo(proc, text, match.group(1))
