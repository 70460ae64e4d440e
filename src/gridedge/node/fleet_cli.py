"""``gridedge fleet run``: many simulated meters in one process (see gridedge.node.fleet)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from gridedge.config import Config

app = typer.Typer(help="Simulated meter fleets: one process, one event loop.", no_args_is_help=True)
console = Console(stderr=True)


def run_loop(coro):  # type: ignore[no-untyped-def]
    """Run the fleet on uvloop when it is installed: with thousands of sockets on one loop,
    asyncio's selector loop and its Python transports cost about as much CPU per reading as the
    node runtime itself (libuv does the epoll, reads and writes in C)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


@app.callback()
def _group() -> None:
    """Simulated meter fleets: one process, one event loop."""


@app.command()
def run(
    grid: str = typer.Option(
        ..., "--grid", help="grid name the meters belong to (catalog location)"
    ),
    meters: int = typer.Option(..., "--meters", min=1, max=20000, help="number of meters"),
    interval: float = typer.Option(1.0, "--interval", min=0.01, help="telemetry interval, s"),
    catalog: str = typer.Option(None, "--catalog", envvar="GRIDEDGE_CATALOG_URL"),
    admin_token: str | None = typer.Option(
        None, "--admin-token", envvar="GRIDEDGE_ADMIN_TOKEN", help="to register the meters"
    ),
    prefix: str | None = typer.Option(None, help="device id prefix (default: the grid name)"),
    start_index: int = typer.Option(0, help="first meter number (to split a fleet over processes)"),
    state_dir: Path | None = typer.Option(
        None, help="tokens and settings (default DATA_DIR/fleet)"
    ),
    duration: float | None = typer.Option(
        None, help="stop after this many seconds (default: Ctrl-C)"
    ),
    update_period: float = typer.Option(60.0, help="catalog check-in period per meter, s"),
    stats_json: Path | None = typer.Option(
        None, "--stats-json", help="write final statistics here"
    ),
    ready_file: Path | None = typer.Option(
        None, "--ready-file", help="touched once every meter is up"
    ),
    snapshot_file: Path | None = typer.Option(
        None,
        "--snapshot-file",
        help="on SIGUSR1, append the current statistics here as one JSON line "
        "(a benchmark brackets its measuring window with two)",
    ),
) -> None:
    """Register, provision and run N meters, each publishing telemetry every --interval s."""
    from gridedge.node.fleet import Fleet, FleetOptions

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = Config()
    token = admin_token or cfg.admin_token_value()
    opts = FleetOptions(
        catalog_url=catalog or cfg.catalog_url,
        admin_token=token,
        grid=grid,
        meters=meters,
        interval_s=interval,
        prefix=prefix,
        start_index=start_index,
        state_root=state_dir or cfg.data_dir / "fleet",
        update_period_s=update_period,
    )

    async def main() -> dict:
        fleet = Fleet(opts)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(
                NotImplementedError, RuntimeError, ValueError
            ):  # not main thread
                loop.add_signal_handler(sig, stop.set)
        if snapshot_file is not None:

            def snapshot() -> None:
                line = json.dumps({"at": time.time(), **fleet.stats()})
                with snapshot_file.open("a") as f:
                    f.write(line + "\n")

            loop.add_signal_handler(signal.SIGUSR1, snapshot)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"booting {meters} meters", total=meters)
            booting = asyncio.create_task(fleet.start(lambda n: bar.advance(task, n)))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({booting, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not booting.done():  # Ctrl-C while booting: stop what is up, then leave
                booting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await booting
                await fleet.stop()
                return fleet.stats()
            stopper.cancel()
            booting.result()
        s = fleet.stats()
        if ready_file:
            ready_file.write_text(json.dumps(s))
        console.print(
            f"fleet {fleet.prefix}: {s['meters']} meters up in {s['boot_s']:.1f} s ({s['failed']} failed)"
        )
        try:
            if duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)
            else:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 10)
                    s = fleet.stats()
                    console.print(
                        f"published {s['published']}, pending {s['pending']}, dropped {s['dropped']}, connected {s['connected']}/{s['meters']}"
                    )
            await fleet.stop_apps()
            await fleet.drain(30)
            final = fleet.stats()
            if stats_json:  # before the (slow) orderly disconnect of thousands of nodes
                stats_json.write_text(json.dumps(final))
            return final
        finally:
            await fleet.stop()

    stats = run_loop(main())
    console.print(json.dumps(stats))
    if stats_json:
        stats_json.write_text(json.dumps(stats))
