"""``gridedge node run``: one node (meter, concentrator or service host) in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import typer
from rich.console import Console

from gridedge.config import Config
from gridedge.contracts.topics import valid_device_id
from gridedge.node import packages

app = typer.Typer(
    help="Run a node: self-configuring, auto-updating, running signed apps.", no_args_is_help=True
)
console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Run a node: self-configuring, auto-updating, running signed apps."""


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


def _options(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            _fail(f"--daq-opt {p!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def trusted_keys_from(paths: list[Path]) -> list:
    """Trusted keys: explicit files, plus every *.pub in $GRIDEDGE_TRUSTED_KEYS (a folder)."""
    files = list(paths)
    folder = os.environ.get("GRIDEDGE_TRUSTED_KEYS", "").strip()
    if folder and Path(folder).is_dir():
        files += sorted(Path(folder).glob("*.pub"))
    keys = []
    for f in files:
        try:
            keys.append(packages.load_public_key(f))
        except packages.PackageError as exc:
            _fail(f"--trusted-key: {exc.reason}")
    return keys


@app.command()
def run(
    device_id: str = typer.Option(..., "--id", help="device id registered in the catalog"),
    catalog: str = typer.Option(
        None, "--catalog", envvar="GRIDEDGE_CATALOG_URL", help="catalog URL"
    ),
    secret: str | None = typer.Option(
        None, "--secret", envvar="GRIDEDGE_NODE_SECRET", help="provisioning secret"
    ),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="file holding the provisioning secret"
    ),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="token, settings, packages, outbox (default DATA_DIR/nodes/ID)"
    ),
    trusted_key: list[Path] = typer.Option(
        [], "--trusted-key", help="public key whose signed packages this node accepts (repeatable)"
    ),
    daq: str = typer.Option("none", "--daq", "--backend", help="twin | pzem | replay | none"),
    daq_opt: list[str] = typer.Option(
        [], "--daq-opt", help="backend option KEY=VALUE (repeatable)"
    ),
    outbox_max_messages: int = typer.Option(
        100_000, min=1, help="store-and-forward bound (messages)"
    ),
    outbox_max_mb: float = typer.Option(64.0, min=0.001, help="store-and-forward bound (MB)"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Boot, self-configure from the catalog and run the assigned apps until Ctrl-C."""
    from gridedge.node.backends import BackendConfigError, make_backends
    from gridedge.node.runtime import Node, NodeOptions

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not valid_device_id(device_id):
        _fail(f"--id {device_id!r} is not a valid device id")
    cfg = Config()
    catalog = catalog or cfg.catalog_url
    if secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except OSError as exc:
            _fail(f"--secret-file {secret_file}: {exc.strerror}")
    keys = trusted_keys_from(trusted_key)
    try:
        daq_backend, actuators = make_backends(daq, _options(daq_opt), device_id=device_id)
    except BackendConfigError as exc:
        _fail(str(exc))
    opts = NodeOptions(
        device_id=device_id,
        catalog_url=catalog,
        state_dir=state_dir or cfg.data_dir / "nodes" / device_id,
        secret=secret,
        trusted_keys=keys,
        daq=daq_backend,
        actuators=actuators,
        outbox_max_messages=outbox_max_messages,
        outbox_max_bytes=int(outbox_max_mb * 1024 * 1024),
    )
    if not keys:
        console.print(
            "[yellow]warning:[/yellow] no --trusted-key: every downloaded package will be refused (built-in apps still run)"
        )

    async def main() -> None:
        node = Node(opts)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(
                NotImplementedError, RuntimeError, ValueError
            ):  # not main thread
                loop.add_signal_handler(sig, node.request_stop)
        console.print(f"node {device_id}: booting against {catalog}")
        await node.start()
        console.print(
            f"node {device_id}: running settings v{node.settings.version}, apps {sorted(node.apps.runners)}"
        )
        try:
            await node._stop.wait()
        finally:
            await node.stop()
            console.print(f"node {device_id}: stopped")

    try:
        asyncio.run(main())
    except Exception as exc:  # a refused provisioning, unreadable state: say why, no traceback
        from gridedge.node.catalog_link import CatalogRefused

        if isinstance(exc, CatalogRefused):
            _fail(str(exc))
        raise
