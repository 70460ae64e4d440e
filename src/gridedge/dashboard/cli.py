"""``gridedge dashboard …``: the supervisory web page (with its historian), or the historian alone."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Supervisory dashboard and historian.", no_args_is_help=True)
console = Console()


def _brokers(data_broker: str | None, mgmt_broker: str | None) -> tuple[str, str | None]:
    from gridedge.config import Config

    cfg = Config()
    data = data_broker or cfg.data_broker
    if not data:
        console.print(
            "[red]error:[/red] --data-broker (or GRIDEDGE_DATA_BROKER) is required: the dashboard reads the data plane"
        )
        raise typer.Exit(2)
    return data, mgmt_broker or cfg.mgmt_broker


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback unless you mean otherwise)"),
    port: int = typer.Option(8080, help="HTTP port"),
    db: str | None = typer.Option(
        None, help="historian SQLAlchemy URL (default: sqlite in the data dir)"
    ),
    data_broker: str | None = typer.Option(None, help="data-plane broker URL"),
    mgmt_broker: str | None = typer.Option(None, help="management-plane broker URL"),
    twin: str | None = typer.Option(
        None, help="twin network interface URL (for the diagram and the demo controls)"
    ),
    catalog: str | None = typer.Option(None, help="catalog URL (devices, topology)"),
    grid: str | None = typer.Option(None, help="grid name (topology in the catalog)"),
) -> None:
    """Serve the dashboard and run the historian that feeds it, until Ctrl-C."""
    from gridedge.config import Config
    from gridedge.dashboard.service import DashboardOptions, DashboardService
    from gridedge.historian.store import sqlite_url

    cfg = Config()
    data, mgmt = _brokers(data_broker, mgmt_broker)
    opts = DashboardOptions(
        data_broker=data,
        mgmt_broker=mgmt,
        db_url=db or sqlite_url(cfg.ensure_data_dir() / "historian.db"),
        admin_token=cfg.admin_token_value(),
        host=host,
        port=port,
        twin_url=twin,
        catalog_url=catalog or cfg.catalog_url,
        grid=grid,
    )

    async def main() -> None:
        svc = await DashboardService(opts).start()
        console.print(f"dashboard  {svc.url}   (admin token: {cfg.data_dir / 'admin-token'})")
        try:
            await _until_signal()
        finally:
            await svc.stop()

    asyncio.run(main())


@app.command()
def historian(
    db: str | None = typer.Option(None, help="SQLAlchemy URL (default: sqlite in the data dir)"),
    data_broker: str | None = typer.Option(None, help="data-plane broker URL"),
    mgmt_broker: str | None = typer.Option(None, help="management-plane broker URL"),
    batch_size: int = typer.Option(5000, min=1, help="flush when this many rows are waiting"),
    flush_interval: float = typer.Option(1.0, min=0.01, help="flush at least this often (s)"),
) -> None:
    """Run the historian alone: store readings and events in batches until Ctrl-C."""
    from gridedge.config import Config
    from gridedge.historian.ingest import Historian
    from gridedge.historian.store import HistorianStore, sqlite_url

    cfg = Config()
    data, mgmt = _brokers(data_broker, mgmt_broker)
    url = db or sqlite_url(cfg.ensure_data_dir() / "historian.db")

    async def main() -> None:
        store = HistorianStore(url)
        hist = await Historian(
            store, data, mgmt, batch_size=batch_size, flush_interval_s=flush_interval
        ).start()
        console.print(f"historian storing into {url}")
        try:
            await _until_signal()
        finally:
            await hist.stop()
            s = hist.stats
            console.print(
                f"stored {s.readings_stored} readings, {s.events_stored} events; rejected {s.rejected}, dropped {s.dropped}"
            )
            store.close()

    asyncio.run(main())


@app.command()
def bench(
    repeats: int = typer.Option(3, min=1, help="demo start-ups to time"),
    messages: int = typer.Option(20000, min=100, help="telemetry messages for the historian test"),
    json_out: Path | None = typer.Option(None, "--json", help="write the results here"),
) -> None:
    """Benchmark: command → ready dashboard, historian ingest per batch size, /api/state latency."""
    from gridedge.dashboard.bench import run

    run(repeats=repeats, messages=messages, json_out=json_out)
