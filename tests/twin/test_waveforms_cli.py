"""``gridedge twin window``: one fault record on a real grid → table, PNG, COMTRADE, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import comtrade
from typer.testing import CliRunner

from gridedge.twin.cli import app


def test_window_command_writes_plot_comtrade_and_json(tmp_path: Path) -> None:
    png, ct, js = tmp_path / "w.png", tmp_path / "ct", tmp_path / "w.json"
    r = CliRunner().invoke(
        app,
        ["window", "--grid", "turin-2feeder", "--point", "M1",
         "--fault", "L-A2-A3:0.5:1ph:0.001", "--pre", "0.1", "--post", "0.4",
         "--plot", str(png), "--comtrade", str(ct), "--json", str(js)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    out = json.loads(js.read_text())
    chans = {c["channel"]: c for c in out["channels"]}
    # the meter's DFT agrees with the twin on the voltages and on the fault current
    for ch in ("va", "vb", "vc"):
        assert abs(chans[ch]["pre_dft"] / chans[ch]["pre_twin"] - 1) < 0.005
    assert abs(chans["ia"]["fault_dft"] / chans["ia"]["fault_twin"] - 1) < 0.01
    assert chans["ia"]["fault_twin"] > 1000
    assert out["trip_ns"] - out["inception_ns"] == 300_000_000
    cfg = next(ct.glob("*.cfg"))
    rec = comtrade.load(str(cfg), str(cfg.with_suffix(".dat")))
    assert rec.total_samples == round(0.5 * 3200)
    assert abs(rec.trigger_time - 0.1) < 1e-6


def test_window_command_refuses_a_bad_fault_spec() -> None:
    r = CliRunner().invoke(app, ["window", "--fault", "L-A2-A3:1.7:1ph:0"])
    assert r.exit_code == 2
    assert "--fault" in r.output and "fraction" in r.output
    r = CliRunner().invoke(app, ["window", "--fault", "NOPE:0.5:1ph:0"])
    assert r.exit_code == 2 and "branch" in r.output
