"""The benchmark command runs end to end on a tiny fleet (its figures are not asserted: they
belong in docs/benchmarks.md, not in a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_catalog_small_fleet(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-c", "from gridedge.bench.cli import app; app()", "catalog",
         "--devices", "40", "--duration", "1", "--affected", "10", "--workers", "1",
         "--json", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["provisioning"]["errors"] == 0
    ci = r["check_ins"]
    assert ci["errors"] == 0 and ci["answered"] == ci["sent"] > 0
    assert ci["status_codes"] == {"304": ci["answered"]}  # nothing changed: every answer a 304
    fo = r["fanout"]
    assert fo["affected_reported"] == fo["subscribers"] == fo["received"] == 10
    assert fo["unaffected_that_received"] == 0
    assert r["liveness"]["detected_after_s"] is not None
    assert r["liveness"]["detected_after_s"] >= r["liveness"]["timeout_s"]
    assert plot.stat().st_size > 10_000
