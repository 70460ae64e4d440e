"""``gridedge bench twin``: speed of the grid twin against issue 3's targets and REFERENCE §1.4.

Measures (medians over repeats, on whatever machine runs it):
1. one power flow on turin-urban (model built once, reused: the twin's normal path);
2. fault scenarios per second through ``Twin.fault_batch`` — worst case (every scenario at a
   different line/position, so each needs its own split model) and grouped (40 scenarios per
   line position: fault types x phases x resistances share one PGM batch);
3. synthesising a 1-s, 3.2 kHz fault window at a feeder-head meter (the measurement side's
   ``gridedge.twin.waveforms``)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run(
    json_out: Path | None = typer.Option(None, "--json", help="write results as JSON"),
    grid: str = typer.Option("turin-urban", help="grid to measure"),
    repeats: int = typer.Option(30, help="repeats for the per-call medians"),
    scenarios: int = typer.Option(400, help="fault scenarios per batch measurement"),
    seed: int = typer.Option(1, help="random seed of the fault scenarios"),
) -> None:
    """Power flow time, fault scenarios per second, 1-s waveform window synthesis time."""
    from gridedge.twin import Fault, Twin

    rows: list[dict] = []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("building the grid", total=5)
        t0 = time.perf_counter()
        twin = Twin.from_name(grid)
        build_s = time.perf_counter() - t0
        rows.append(
            {
                "metric": f"build {grid} (pandapower -> PGM, once)",
                "value": build_s * 1e3,
                "unit": "ms",
                "target": None,
                "reference": "converter 12 ms (CIGRE MV) .. 0.39-0.46 s (10k buses)",
            }
        )
        prog.advance(task)
        prog.update(task, description="power flow")
        twin.solve()
        pf_raw = _median_ms(lambda: twin._pf(True), repeats)
        pf_state = _median_ms(twin.solve, repeats)
        n = len(twin.node_ids)
        rows.append(
            {
                "metric": f"power flow {grid} ({n} buses), PGM NR, model reused",
                "value": pf_raw,
                "unit": "ms",
                "target": "<= 10",
                "reference": "PGM NR 0.34 ms (144 buses) / 7.6-8.1 ms (10k buses)",
            }
        )
        rows.append(
            {
                "metric": "power flow + GridState (phasors, energised)",
                "value": pf_state,
                "unit": "ms",
                "target": "<= 10",
                "reference": "pandapower 35-193 ms",
            }
        )
        prog.advance(task)

        rng = np.random.default_rng(seed)
        lines = [ln.id for ln in twin.line_data() if ln.closed]
        kinds = ["1ph", "2ph", "2ph-g", "3ph"]
        prog.update(task, description="fault batch (distinct positions)")
        faults = [
            Fault(
                str(rng.choice(lines)),
                float(rng.uniform(0.05, 0.95)),
                str(rng.choice(kinds)),
                r_f_ohm=float(rng.choice([0.001, 0.5, 5.0, 20.0])),
            )
            for _ in range(scenarios)
        ]
        t0 = time.perf_counter()
        out = twin.fault_batch(faults)
        distinct = len(out) / (time.perf_counter() - t0)
        rows.append(
            {
                "metric": "fault scenarios/s, each at its own line position",
                "value": distinct,
                "unit": "1/s",
                "target": ">= 200",
                "reference": "PGM SC 0.13 ms/solve; pandapower SC 45-230 ms",
            }
        )
        prog.advance(task)
        prog.update(task, description="fault batch (grouped)")
        grouped = []
        for ln in rng.choice(lines, max(1, scenarios // 40), replace=False):
            for k in kinds:
                phs = {
                    "1ph": ["a", "b", "c"],
                    "2ph": ["ab", "bc", "ac"],
                    "2ph-g": ["ab", "bc", "ac"],
                    "3ph": ["abc"],
                }[k]
                for ph in phs:
                    for rf in (0.001, 5.0, 20.0):
                        grouped.append(Fault(str(ln), 0.5, k, ph, rf))
        t0 = time.perf_counter()
        out = twin.fault_batch(grouped)
        grouped_rate = len(out) / (time.perf_counter() - t0)
        rows.append(
            {
                "metric": f"fault scenarios/s, {len(grouped) // max(1, scenarios // 40)} "
                "per line position (one PGM batch each)",
                "value": grouped_rate,
                "unit": "1/s",
                "target": ">= 200",
                "reference": "-",
            }
        )
        prog.advance(task)

        prog.update(task, description="waveform window")
        try:
            from gridedge.twin import waveforms
        except ImportError:
            waveforms = None  # type: ignore[assignment]
        if waveforms is None or not hasattr(waveforms, "synthesize_window"):
            rows.append(
                {
                    "metric": "1-s window at 3.2 kHz",
                    "value": None,
                    "unit": "ms",
                    "target": "-",
                    "reference": "TODO not measured: waveforms module absent",
                }
            )
        else:
            mp = twin.measurement_points[0]
            pre = twin.solve()
            during = twin.compute_fault(Fault(lines[0], 0.5, "1ph"))
            wrng = np.random.default_rng(0)

            def synth() -> None:
                waveforms.synthesize_window(
                    mp,
                    pre,
                    during,
                    rate_hz=3200.0,
                    pre_s=0.5,
                    post_s=0.5,
                    inception_ns=10**9,
                    rng=wrng,
                )

            w_ms = _median_ms(synth, max(5, repeats // 3))
            rows.append(
                {
                    "metric": f"1-s window, 3.2 kHz, 6 channels at {mp.id}",
                    "value": w_ms,
                    "unit": "ms",
                    "target": "-",
                    "reference": "seed: Opal-RT real time (1 s per 1 s window)",
                }
            )
        prog.advance(task)

    t = Table(title=f"gridedge bench twin ({grid})")
    for c in ("metric", "value", "unit", "target", "reference (REFERENCE §1.4 / seeds)"):
        t.add_column(c)
    for r in rows:
        v = (
            "—"
            if r["value"] is None
            else (f"{r['value']:.0f}" if r["value"] >= 100 else f"{r['value']:.3g}")
        )
        t.add_row(r["metric"], v, r["unit"], r["target"] or "", r["reference"])
    console.print(t)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"benchmark": "twin", "grid": grid, "rows": rows}, indent=2))
        console.print(f"wrote {json_out}")
