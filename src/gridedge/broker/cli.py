"""``gridedge broker``: run the embedded brokers on their own (for a multi-process set-up)."""

from __future__ import annotations

import signal
import time

import typer
from rich.console import Console

app = typer.Typer(
    help="Embedded Mosquitto brokers (data and management planes).", no_args_is_help=True
)
console = Console()


@app.command("run")
def run(
    data_port: int = typer.Option(1883, help="data-plane broker port (127.0.0.1)"),
    mgmt_port: int = typer.Option(1884, help="management-plane broker port (127.0.0.1)"),
) -> None:
    """Start both Mosquitto instances on loopback and keep them running until Ctrl-C."""
    from gridedge.broker.mosquitto import BrokerError, EmbeddedBrokers

    brokers = EmbeddedBrokers.create(data_port, mgmt_port)
    try:
        brokers.start()
    except BrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"data plane  {brokers.data.url}\nmgmt plane  {brokers.mgmt.url}")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop and brokers.data.running() and brokers.mgmt.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        brokers.stop()
