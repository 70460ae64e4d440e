"""``gridedge iec61850 …``: serve the gateway, write and validate the SCD."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console

from gridedge.config import Config
from gridedge.gateways.iec61850 import model as m

app = typer.Typer(
    help="IEC 61850 gateway: thesis meter API, SCL, MMS server.", no_args_is_help=True
)
console = Console()


def plan_endpoints(
    specs: list[m.MeterSpec], ip: str, base_port: int, per_shard: int
) -> dict[str, object]:
    """Ports a gateway started on the same meters would use (shards in registration order)."""
    from gridedge.gateways.iec61850.scl import Endpoint

    return {s.device_id: Endpoint(ip, base_port + i // per_shard) for i, s in enumerate(specs)}


def twin_meters(grid: str) -> tuple[list[m.MeterSpec], object]:
    """The measurement points of a twin grid as meters (a quick demo without a catalog)."""
    from gridedge.twin.model import Twin

    twin = Twin.from_name(grid)
    topo = twin.topology_document()
    kv = {n.id: n.voltage_kv for n in topo.nodes}
    specs = [
        m.MeterSpec(
            device_id=mp.id,
            phases=3 if len(mp.phases) == 3 else 1,
            name=mp.description or mp.id,
            node_id=mp.node_id,
            grid=topo.grid,
            voltage_kv=kv.get(mp.node_id),
        )
        for mp in twin.measurement_points
    ]
    return specs, topo


async def catalog_meters(url: str, token: str) -> tuple[list[m.MeterSpec], object]:
    from gridedge.catalog.client import CatalogAdmin
    from gridedge.contracts.catalog import DeviceKind

    async with CatalogAdmin(url, token) as admin:
        listing = await admin.list_devices(kind=DeviceKind.METER)
        grids = {d.location.grid for d in listing.devices if d.location.grid}
        topo = await admin.get_topology(sorted(grids)[0]) if grids else None
    kv = {n.id: n.voltage_kv for n in topo.nodes} if topo else {}
    specs = [
        m.MeterSpec(
            device_id=d.id,
            phases=1 if d.capabilities.phases == 1 else 3,
            name=str(d.metadata.get("name") or d.id),
            node_id=d.location.node_id,
            grid=d.location.grid,
            voltage_kv=kv.get(d.location.node_id or ""),
        )
        for d in listing.devices
    ]
    return specs, topo


@app.command()
def scl(
    out: Path = typer.Option(..., "--out", "-o", help="where to write the SCD"),
    catalog: str | None = typer.Option(None, help="catalog URL (meters + topology from there)"),
    admin_token: str | None = typer.Option(None, help="catalog admin token (default: config)"),
    gateway: str | None = typer.Option(
        None, help="URL of a running gateway: fetch its GET /SCL (actual ports)"
    ),
    twin: str = typer.Option("turin-2feeder", help="twin grid for a demo when no catalog given"),
    mms_ip: str = typer.Option("127.0.0.1", help="IP written into the Communication section"),
    base_port: int = typer.Option(10102, help="first MMS port (planned, one per shard)"),
    meters_per_shard: int = typer.Option(100, min=1),
    ctl_model: m.CtlModel = typer.Option(m.CtlModel.SBO_ENHANCED, help="CSWI1.Pos ctlModel"),
) -> None:
    """Write the SCD of the virtual substation and validate it (XSD 2007B4 + semantics)."""
    import httpx

    from gridedge.gateways.iec61850.scl import SclOptions, build_scd, check_semantics, validate_xsd

    cfg = Config()
    if gateway:
        token = admin_token or cfg.admin_token_value()
        resp = httpx.get(
            gateway.rstrip("/") + "/SCL", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        if resp.status_code != 200:
            console.print(f"[red]gateway answered {resp.status_code}: {resp.text[:300]}")
            raise typer.Exit(1)
        data = resp.content
    else:
        if catalog:
            specs, topo = asyncio.run(
                catalog_meters(catalog, admin_token or cfg.admin_token_value())
            )
        else:
            specs, topo = twin_meters(twin)
        eps = plan_endpoints(specs, mms_ip, base_port, meters_per_shard)
        data = build_scd(specs, eps, topo, SclOptions(cswi_ctl_model=ctl_model))  # type: ignore[arg-type]
    out.write_bytes(data)
    errors, issues = validate_xsd(data), check_semantics(data)
    console.print(f"wrote {out} ({len(data):,} bytes)")
    console.print(
        f"XSD 2007B4: {'[green]0 errors' if not errors else f'[red]{len(errors)} errors'}[/]; "
        f"semantic check: {'[green]0 issues' if not issues else f'[red]{len(issues)} issues'}[/]"
    )
    for e in [*errors, *issues][:20]:
        console.print(f"  {e}")
    if errors or issues:
        raise typer.Exit(1)


@app.command()
def validate(file: Path = typer.Argument(..., exists=True, readable=True)) -> None:
    """Validate an SCL file against the IEC 61850-6 2007B4 XSD and the semantic checks."""
    from gridedge.gateways.iec61850.scl import check_semantics, validate_xsd

    data = file.read_bytes()
    try:
        errors, issues = validate_xsd(data), check_semantics(data)
    except Exception as exc:  # not XML at all
        console.print(f"[red]{file}: not a readable SCL file: {exc}")
        raise typer.Exit(2) from None
    for e in errors:
        console.print(f"[red]XSD[/] {e}")
    for e in issues:
        console.print(f"[yellow]semantic[/] {e}")
    console.print(f"{len(errors)} schema error(s), {len(issues)} semantic issue(s)")
    raise typer.Exit(1 if errors or issues else 0)


@app.command()
def serve(
    catalog: str | None = typer.Option(None, help="catalog URL (default: none = standalone)"),
    catalog_token: str | None = typer.Option(None, help="catalog admin token (default: admin)"),
    admin_token: str | None = typer.Option(None, help="gateway admin token (default: config)"),
    data_broker: str | None = typer.Option(None, help="data-plane MQTT URL (default: config)"),
    mgmt_broker: str | None = typer.Option(None, help="management-plane MQTT URL"),
    host: str = typer.Option("127.0.0.1", help="REST bind address"),
    port: int = typer.Option(8061, help="REST port"),
    mms_ip: str = typer.Option("127.0.0.1", help="MMS bind address"),
    mms_base_port: int = typer.Option(10102, help="first MMS port; 0 = any free port"),
    meters_per_shard: int = typer.Option(100, min=1, help="meters per MMS server at start"),
    ctl_model: m.CtlModel = typer.Option(m.CtlModel.SBO_ENHANCED, help="CSWI1.Pos ctlModel"),
    buffered_reports: bool = typer.Option(
        False, help="a BRCB per meter (each makes every update of its server dearer)"
    ),
    data_dir: Path | None = typer.Option(None, help="default: $GRIDEDGE_DATA_DIR"),
) -> None:
    """Run the gateway: thesis REST API + REST mapping on HOST:PORT, MMS shards from the base port."""
    from gridedge.gateways.iec61850.gateway import GatewayOptions
    from gridedge.gateways.iec61850.server import GatewayRunner

    cfg = Config()
    token = admin_token or cfg.admin_token_value()
    opts = GatewayOptions(
        data_dir=(data_dir or cfg.ensure_data_dir()),
        admin_token=token,
        data_broker=data_broker or cfg.data_broker,
        mgmt_broker=mgmt_broker or cfg.mgmt_broker,
        catalog_url=catalog,
        catalog_admin_token=catalog_token,
        mms_ip=mms_ip,
        base_port=mms_base_port,
        meters_per_shard=meters_per_shard,
        ctl_model=ctl_model,
        buffered_reports=buffered_reports,
    )
    runner = GatewayRunner(opts, host=host, port=port).start()
    gw = runner.gateway
    assert gw is not None
    console.print(f"REST  {runner.url}  (OpenAPI at {runner.url}/docs)")
    for shard in gw.shards.shards:
        console.print(f"MMS   {shard.ip}:{shard.port}  {len(shard.nodes)} meter(s)")
    if not gw.shards.shards:
        console.print("MMS   no meters yet: each new batch of meters starts a server")
    console.print(f"SCD   GET {runner.url}/SCL (admin token)")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    runner.stop()
