"""The ``gridedge`` command. Each role contributes a Typer sub-app from its own ``cli`` module;
this file only wires them together, so importing it stays cheap (heavy imports live inside
commands)."""

from __future__ import annotations

import importlib
import logging

import typer
from rich.console import Console

from gridedge import __version__

console = Console()
app = typer.Typer(
    name="gridedge",
    help="gridedge: smart meters, device catalog, FLISR, grid twin and IEC 61850 at the grid edge.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

# (command name, module, attribute). A role that is not built yet simply has no module.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("broker", "gridedge.broker.cli", "app"),
    ("catalog", "gridedge.catalog.cli", "app"),
    ("twin", "gridedge.twin.cli", "app"),
    ("node", "gridedge.node.cli", "app"),
    ("app", "gridedge.node.app_cli", "app"),
    ("fleet", "gridedge.node.fleet_cli", "app"),
    ("iec61850", "gridedge.gateways.iec61850.cli", "app"),
    ("dashboard", "gridedge.dashboard.cli", "app"),
    ("bench", "gridedge.bench.cli", "app"),
]
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "gridedge.demo", "demo"),
]


def _load(module: str, attr: str) -> object | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None  # role not present in this build
        raise
    return getattr(mod, attr)


for _name, _module, _attr in SUBCOMMANDS:
    _sub = _load(_module, _attr)
    if _sub is not None:
        app.add_typer(_sub, name=_name)  # type: ignore[arg-type]
for _name, _module, _attr in COMMANDS:
    _cmd = _load(_module, _attr)
    if _cmd is not None:
        app.command(name=_name)(_cmd)  # type: ignore[arg-type]


@app.command()
def version() -> None:
    """Print the gridedge version."""
    console.print(f"gridedge {__version__}")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # gmqtt reports every SUBACK and clean close at INFO: noise in every command's output.
        logging.getLogger("gmqtt").setLevel(logging.WARNING)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
