"""``gridedge demo``: everything on one laptop from one command.

For now: the embedded brokers (data and management planes) and the Device Catalog on 127.0.0.1.
Later issues add the grid twin, a fleet of meters, FLISR and the dashboard to the same function.
"""

from __future__ import annotations

import signal
import threading
import time

import typer
from rich.console import Console

console = Console()


def demo(
    headless: bool = typer.Option(False, "--headless", help="no interactive output; for CI"),
    duration: float | None = typer.Option(
        None, "--duration", help="run this many seconds, then stop and exit 0"
    ),
    port: int = typer.Option(8000, help="catalog HTTP port (0: any free port)"),
) -> None:
    """Start the embedded brokers and the Device Catalog; stop everything on Ctrl-C."""
    from gridedge.broker.mosquitto import BrokerError, EmbeddedBrokers, free_port, port_open
    from gridedge.catalog.server import CatalogServer, endpoint
    from gridedge.catalog.service import CatalogOptions
    from gridedge.config import Config
    from gridedge.contracts.catalog import BrokerPlanes

    cfg = Config()
    port = port or free_port()
    if port_open("127.0.0.1", port):
        console.print(f"[red]error:[/red] port {port} is in use; choose another with --port")
        raise typer.Exit(1)
    try:
        brokers = EmbeddedBrokers.create(workdir=cfg.ensure_data_dir() / "mqtt").start()
    except BrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    url = f"http://127.0.0.1:{port}"
    server = CatalogServer(
        CatalogOptions(
            db_url=cfg.catalog_db_url(),
            brokers=BrokerPlanes(data=endpoint(brokers.data.url), mgmt=endpoint(brokers.mgmt.url)),
            public_url=url,
            admin_token=cfg.admin_token_value(),
        ),
        port=port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    try:
        server.start()
        if not headless:
            console.print("[bold]gridedge demo[/bold] running")
        console.print(f"catalog        {url}  (OpenAPI {url}/docs)")
        console.print(f"data broker    {brokers.data.url}")
        console.print(f"mgmt broker    {brokers.mgmt.url}")
        console.print(f"admin token    {cfg.data_dir / 'admin-token'} (or $GRIDEDGE_ADMIN_TOKEN)")
        if not headless:
            console.print("Ctrl-C stops everything.")
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            if not (brokers.data.running() and brokers.mgmt.running()):
                console.print("[red]a broker stopped unexpectedly[/red]")
                raise typer.Exit(1)
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        devices = len(server.service.devices) if server.service else 0
        server.stop()
        brokers.stop()
    console.print(
        f"demo ran {time.monotonic() - started:.1f} s: catalog with {devices} device(s), "
        "2 brokers; all stopped"
    )
