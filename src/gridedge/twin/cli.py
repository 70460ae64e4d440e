"""``gridedge twin …``. Commands live in the modules that implement them (grid computation in
``grid_commands``, measurements and the network interface in ``io_commands``); each exposes
``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Grid digital twin: grids, power flow, faults, waveforms, network interface.",
    no_args_is_help=True,
)

for _module in ("gridedge.twin.grid_commands", "gridedge.twin.io_commands"):
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
