"""``gridedge twin grids | solve | fault | plot`` — the grid-computation commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from gridedge.twin.errors import LoadflowNotConverged, TwinError
from gridedge.twin.faults import Fault

console = Console()


def _twin(grid: str, seed: int | None):
    from gridedge.twin.model import Twin

    try:
        return Twin.from_name(grid, seed=seed)
    except TwinError as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None


def grids() -> None:
    """List the grids the twin can build."""
    from gridedge.twin.grids import build, grid_names
    from gridedge.twin.model import Twin

    t = Table(title="Grids of the digital twin")
    for col in ("name", "buses", "lines", "transformers", "switches", "loads", "feeders"):
        t.add_column(col, justify="left" if col == "name" else "right")
    with console.status("building grids…"):
        for name in grid_names():
            tw = Twin(build(name))
            s = tw.summary()
            t.add_row(
                name,
                *(
                    str(s[k])
                    for k in ("buses", "lines", "transformers", "switches", "loads", "feeders")
                ),
            )
    console.print(t)


def solve(
    grid: str = typer.Option(..., "--grid", help="grid name (gridedge twin grids)"),
    seed: int | None = typer.Option(None, help="generator seed (synthetic grids)"),
    symmetric: bool | None = typer.Option(None, "--symmetric/--asymmetric"),
    top: int = typer.Option(10, help="rows of the lowest-voltage table"),
) -> None:
    """Power flow; prints the lowest node voltages and the feeder-head currents."""
    tw = _twin(grid, seed)
    try:
        st = tw.solve(symmetric=symmetric)
    except LoadflowNotConverged as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    un = tw._u_rated / np.sqrt(3)
    pu = np.abs(st.u) / un[:, None]
    order = np.argsort(pu.min(axis=1))
    t = Table(title=f"{grid}: lowest node voltages (pu, phases a/b/c)")
    for c in ("node", "kV", "a", "b", "c", "energised"):
        t.add_column(c)
    for k in order[:top]:
        t.add_row(
            st.node_ids[k],
            f"{un[k] * np.sqrt(3) / 1e3:g}",
            *(f"{v:.4f}" for v in pu[k]),
            str(bool(st.energised[k])),
        )
    console.print(t)
    m = Table(title="meters")
    for c in ("id", "node", "branch", "|I| a/b/c (A)"):
        m.add_column(c)
    for mp in tw.measurement_points[:20]:
        cur = st.branch_current(mp.branch_id, mp.end) if mp.branch_id else np.zeros(3)
        m.add_row(mp.id, mp.node_id, mp.branch_id or "-", " / ".join(f"{abs(x):.1f}" for x in cur))
    console.print(m)
    console.print(f"radial: {tw.is_radial()}")


def fault(
    grid: str = typer.Option(..., "--grid"),
    branch: str = typer.Option(..., "--branch", help="line id"),
    fraction: float = typer.Option(0.5, "--fraction", help="0 = from-node .. 1 = to-node"),
    kind: str = typer.Option("1ph", "--kind", help="1ph | 2ph | 2ph-g | 3ph"),
    phases: str | None = typer.Option(None, "--phases", help="a, bc, ... (default by kind)"),
    rf: float = typer.Option(0.0, "--rf", help="fault resistance in ohm (PGM convention)"),
    seed: int | None = typer.Option(None),
) -> None:
    """During-fault phasors with loads, and which breaker trips."""
    tw = _twin(grid, seed)
    try:
        f = Fault(branch, fraction, kind, phases, rf)  # type: ignore[arg-type]
        pre = tw.solve()
        st = tw.apply_fault(f)
        tw.advance(tw.trip_delay_s + 1e-3)
    except (TwinError, LoadflowNotConverged) as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    assert st.fault_current is not None
    console.print(
        f"fault {kind} {f.phases} on {branch} at {fraction:.3f}, Rf = {rf} ohm: "
        f"I_f = {' / '.join(f'{abs(x):.1f}' for x in st.fault_current)} A"
    )
    t = Table(title="meters: pre-fault -> during fault")
    for c in ("id", "|V| a/b/c (kV) pre", "during", "|I| a/b/c (A) pre", "during"):
        t.add_column(c)
    for mp in tw.measurement_points[:20]:
        row = [mp.id]
        for s in (pre, st):
            row.append(" / ".join(f"{abs(x) / 1e3:.3f}" for x in s.node_voltage(mp.node_id)))
        for s in (pre, st):
            cur = s.branch_current(mp.branch_id, mp.end) if mp.branch_id else np.zeros(3)
            row.append(" / ".join(f"{abs(x):.1f}" for x in cur))
        t.add_row(row[0], row[1], row[2], row[3], row[4])
    console.print(t)
    for ev in tw.events:
        console.print(f"  t = {ev.time_ns / 1e9:.3f} s  {ev.kind:8s} {ev.target}")
    dead = [n for n, e in zip(tw.state.node_ids, tw.state.energised, strict=True) if not e]
    console.print(f"after the trip {len(dead)} nodes are de-energised")


def plot(
    grid: str = typer.Option(..., "--grid"),
    out: Path = typer.Option(..., "--out", help="PNG file"),
    seed: int | None = typer.Option(None),
) -> None:
    """Single-line picture of a grid (PNG)."""
    from gridedge.twin.plot import plot_grid

    tw = _twin(grid, seed)
    console.print(f"wrote {plot_grid(tw, out)}")


def register(app: typer.Typer) -> None:
    app.command(name="grids")(grids)
    app.command(name="solve")(solve)
    app.command(name="fault")(fault)
    app.command(name="plot")(plot)
