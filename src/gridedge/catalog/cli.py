"""``gridedge catalog …``: run the Device Catalog, regenerate docs/protocol.md."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="Device Catalog: registry, self-configuration, liveness, topology.", no_args_is_help=True
)
console = Console()


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback unless you mean it)"),
    port: int = typer.Option(8000, help="HTTP port"),
    db: str | None = typer.Option(
        None, help="SQLAlchemy URL (default sqlite:///$GRIDEDGE_DATA_DIR/catalog.db)"
    ),
    data_broker: str | None = typer.Option(
        None, help="data-plane broker URL (default: spawn Mosquitto)"
    ),
    mgmt_broker: str | None = typer.Option(
        None, help="management-plane broker URL (default: spawn Mosquitto)"
    ),
    public_url: str | None = typer.Option(
        None, help="URL devices use to reach the catalog (package URLs)"
    ),
) -> None:
    """Run the catalog (REST under /v1, OpenAPI at /docs) until Ctrl-C."""
    from gridedge.broker.mosquitto import BrokerError, port_open
    from gridedge.catalog.server import serve
    from gridedge.config import Config

    cfg = Config()
    if port_open(host if host != "0.0.0.0" else "127.0.0.1", port):
        console.print(f"[red]error:[/red] port {host}:{port} is already in use (choose --port)")
        raise typer.Exit(1)
    console.print(f"catalog   http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)")
    console.print(f"admin token in {cfg.data_dir / 'admin-token'} (or $GRIDEDGE_ADMIN_TOKEN)")
    try:
        serve(host, port, db, data_broker, mgmt_broker, public_url, cfg)
    except BrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command("protocol-doc")
def protocol_doc(
    out: Path = typer.Option(Path("docs/protocol.md"), help="where to write the document"),
) -> None:
    """Regenerate docs/protocol.md from the contracts and the topic builder."""
    from gridedge.catalog.protocol_doc import render

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render())
    console.print(f"wrote {out}")
