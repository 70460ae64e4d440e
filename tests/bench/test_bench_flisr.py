"""``gridedge bench flisr`` end to end on a small run: the JSON carries the paired rows
(meters only, and with the switches' fault passage verdicts) and the seed-condition row."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gridedge.cli import app


def test_bench_flisr_writes_paired_rows(tmp_path) -> None:
    out = tmp_path / "flisr.json"
    res = CliRunner().invoke(
        app,
        [
            "bench", "flisr", "--grid", "turin-2feeder", "--faults", "12", "--seed-cases", "3",
            "--timeline", "0", "--json", str(out), "--accuracy-figure", str(tmp_path / "acc.png"),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["realistic"]["n"] == r["realistic_fpi"]["n"] == 12
    # the verdicts come from the twin's currents through each switch: the zone is never wrong
    assert r["realistic_fpi"]["right_zone_rate"] == 1.0
    assert r["realistic_fpi"]["right_section_rate"] >= r["realistic"]["right_section_rate"] - 1e-9
    assert r["seed_conditions"]["right_section_rate"] == 1.0
    # every fault in exactly one resistance bin, for both rows; the figure drawn from them
    assert sum(b["meters"]["n"] for b in r["by_rf"]) == 12
    assert sum(b["field_units"]["n"] for b in r["by_rf"]) == 12
    assert (tmp_path / "acc.png").read_bytes()[:4] == b"\x89PNG"
    assert "field units at the switches" in res.output  # the paired rows are printed too
