"""``gridedge bench <what>``. Each benchmark module defines one ``run`` command and is registered
here by name."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Benchmarks: print a table, write JSON, compare with the seeds.", no_args_is_help=True
)

BENCHMARKS = ["catalog", "twin", "fleet", "flisr", "iec61850", "dashboard"]

for _name in BENCHMARKS:
    try:
        _mod = importlib.import_module(f"gridedge.bench.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name == f"gridedge.bench.{_name}":
            continue
        raise
    app.command(name=_name)(_mod.run)
