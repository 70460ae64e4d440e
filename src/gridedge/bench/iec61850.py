"""``gridedge bench iec61850``: the IEC 61850 gateway at fleet scale (issue 6's figures), beside
the seed thesis' (004): SCD size and validity, MMS read latency with N meters served, time from
registration to MMS visibility, reports per second.

Everything runs against real parts on this machine: the gateway (pyiec61850 shards + REST), two
Mosquitto brokers and the Device Catalog for the catalog-registration path, and *independent* MMS
clients (PyPI ``iec61850``, Rust core) next to pyiec61850's own client. Client and server share
the machine, so latencies include the client's own overhead.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()

THESIS = {
    "scd_bytes_per_meter": 2800,
    "scd_schema_findings": "10 warnings, 20 errors (sclwebcheck, Fig. 5.14)",
    "add_meter": "MMS server stopped and restarted with a new SCL (§4.3.2)",
    "controls": "switching dropped (§4.1)",
    "reports": "none",
}


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _topology(n_nodes: int) -> Any:
    from gridedge.contracts.catalog import TopologyBranch, TopologyDocument, TopologyNode

    nodes = [TopologyNode(id="SUB", kind="source", voltage_kv=11.0)]
    branches = []
    for i in range(n_nodes):
        nodes.append(TopologyNode(id=f"LV{i}", voltage_kv=0.4, feeder=f"F{i % 4}"))
        branches.append(
            TopologyBranch(id=f"T{i}", from_node="SUB", to_node=f"LV{i}", kind="transformer")
        )
    return TopologyDocument(grid="bench", nodes=nodes, branches=branches)


def bench_scd(n: int) -> dict[str, Any]:
    from gridedge.gateways.iec61850 import model as m
    from gridedge.gateways.iec61850.scl import Endpoint, build_scd, check_semantics, validate_xsd

    topo = _topology(max(1, n // 25))
    specs = [
        m.MeterSpec(
            device_id=f"SM-{i:06d}",
            phases=3 if i % 4 else 1,
            node_id=f"LV{i % max(1, n // 25)}",
            grid="bench",
            voltage_kv=0.4,
        )
        for i in range(n)
    ]
    eps = {s.device_id: Endpoint("127.0.0.1", 10102 + i // 100) for i, s in enumerate(specs)}
    t0 = time.perf_counter()
    scd = build_scd(specs, eps, topo)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    errors = validate_xsd(scd)
    t_xsd = time.perf_counter() - t0
    t0 = time.perf_counter()
    issues = check_semantics(scd)
    t_sem = time.perf_counter() - t0
    return {
        "meters": n,
        "scd_bytes": len(scd),
        "scd_bytes_per_meter": len(scd) / n,
        "generation_s": t_gen,
        "xsd_validation_s": t_xsd,
        "semantic_check_s": t_sem,
        "xsd_errors": len(errors),
        "semantic_issues": len(issues),
    }


async def _read_latency_rust(addr: str, ref: str, count: int) -> list[float]:
    import iec61850

    conn = await _connect(addr)
    lat = []
    for _ in range(count):
        t0 = time.perf_counter()
        await conn.read_float(ref, iec61850.FC.MX)
        lat.append(time.perf_counter() - t0)
    await conn.disconnect()
    return lat


def _read_latency_pyiec(addr: str, ref: str, count: int) -> list[float]:
    import pyiec61850 as iec

    host, port = addr.rsplit(":", 1)
    con = iec.IedConnection_create()
    try:
        for i in range(20):
            if iec.IedConnection_connect(con, host, int(port)) == iec.IED_ERROR_OK:
                break
            time.sleep(0.05 * (i + 1))
        lat = []
        for _ in range(count):
            t0 = time.perf_counter()
            res = iec.pyWrap_IedConnection_readObject(con, ref, iec.IEC61850_FC_MX)
            lat.append(time.perf_counter() - t0)
            value = res[0] if isinstance(res, list | tuple) else None  # bare int on error
            if value is None:
                raise RuntimeError(f"pyiec61850 read of {ref} failed: {res}")
            iec.MmsValue_delete(value)
        return lat
    finally:
        iec.IedConnection_close(con)
        iec.IedConnection_destroy(con)


async def _connect(addr: str) -> Any:
    import iec61850

    last: Exception | None = None
    for i in range(30):
        try:
            conn = await iec61850.IedConnection.connect(addr, timeout_ms=3000)
            await conn.get_server_directory()
            return conn
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.02 * (i + 1))
    raise RuntimeError(f"{addr}: {last}")


async def _visible(addr: str, domain: str, t0: float) -> float:
    import iec61850

    while True:
        try:
            conn = await iec61850.IedConnection.connect(addr, timeout_ms=2000)
            if domain in await conn.get_server_directory():
                dt = time.perf_counter() - t0
                await conn.disconnect()
                return dt
        except Exception:
            pass
        await asyncio.sleep(0.005)


async def _reports(gw: Any, seconds: float) -> dict[str, Any]:
    """Enable one URCB on every meter of the first shard over one association, then update
    those meters flat out from another thread; count what arrives."""
    import iec61850

    from gridedge.gateways.iec61850.mms import Reading

    shard = gw.shards.shards[0]
    devices = list(shard.nodes)
    conn = await _connect(f"{shard.ip}:{shard.port}")
    received = {"reports": 0, "entries": 0}

    def on_report(rpt: Any) -> None:
        received["reports"] += 1
        received["entries"] += sum(1 for e in rpt.entries if e.value is not None)

    for d in devices:
        ref = f"{shard.nodes[d].spec.domain}/LLN0.RP.urcbMeas01"
        await conn.install_report_handler(ref, on_report, rpt_id="urcbMeas")
        rcb = await conn.get_rcb_values(ref)
        rcb.rpt_ena = True
        await conn.set_rcb_values(rcb, iec61850.RcbWriteMask.fields("rpt_ena"), single_request=True)
    await conn.poll_reports(200)
    received.update(reports=0, entries=0)
    stop = threading.Event()
    updates = {"n": 0}

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            now = int(time.time() * 1000)
            for d in devices:
                v = 230.0 + (k % 50) * 0.1
                shard.update(d, Reading(now, [v, v, v], [1.0, 1.0, 1.0], [v, v, v], [], [0.9] * 3))
                updates["n"] += 1
            time.sleep(0.05)  # a reading every 50 ms per meter: 20 Hz, far above real meters

    th = threading.Thread(target=writer, daemon=True)
    t0 = time.perf_counter()
    th.start()
    while time.perf_counter() - t0 < seconds:
        await conn.poll_reports(50)
    stop.set()
    th.join()
    elapsed = time.perf_counter() - t0
    await conn.poll_reports(200)
    await conn.disconnect()
    return {
        "meters_reporting": len(devices),
        "duration_s": elapsed,
        "updates": updates["n"],
        "reports": received["reports"],
        "reports_per_s": received["reports"] / elapsed,
        "updates_per_s": updates["n"] / elapsed,
    }


async def _bench_gateway(
    n: int,
    per_shard: int,
    reads: int,
    visibility_samples: int,
    report_s: float,
    tmp: Path,
    buffered: bool,
) -> dict[str, Any]:
    import httpx

    from gridedge.broker.mosquitto import EmbeddedBrokers
    from gridedge.catalog.testing import start_catalog
    from gridedge.contracts.catalog import Capabilities, DeviceKind, DeviceRegistration
    from gridedge.gateways.iec61850 import model as m
    from gridedge.gateways.iec61850.gateway import GatewayOptions
    from gridedge.gateways.iec61850.mms import Reading
    from gridedge.gateways.iec61850.server import GatewayRunner
    from gridedge.gateways.iec61850.store import GatewayStore, MeterRow

    out: dict[str, Any] = {"meters": n, "meters_per_shard": per_shard, "brcb": buffered}
    store = GatewayStore(tmp / "gw" / "iec61850.db")
    now = datetime.now(UTC)
    for i in range(n):
        store.add_meter(
            MeterRow(f"SM-{i:06d}", f"m{i}", "bench", None, 3, "rest", None, None, now, {})
        )
    store.close()
    admin = "bench-admin"
    with EmbeddedBrokers.create(workdir=tmp / "mqtt") as brokers:
        cat = start_catalog(brokers, tmp)
        try:
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            runner = GatewayRunner(
                GatewayOptions(
                    data_dir=tmp / "gw",
                    admin_token=admin,
                    data_broker=brokers.data.url,
                    mgmt_broker=brokers.mgmt.url,
                    catalog_url=cat.url,
                    catalog_admin_token=cat.admin_token,
                    meters_per_shard=per_shard,
                    sync_period_s=0.5,
                    buffered_reports=buffered,
                )
            ).start(timeout_s=300)
            out["start_s"] = time.perf_counter() - t0
            gw = runner.gateway
            assert gw is not None
            out["shards"] = len(gw.shards.shards)
            out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out["rss_growth_mb"] = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
            ) / 1024
            c0 = os.times()
            await asyncio.sleep(2.0)
            c1 = os.times()
            out["idle_cpu_percent"] = (c1.user + c1.system - c0.user - c0.system) / 2.0 * 100

            # every meter gets a reading: one sweep of model updates
            ts = int(time.time() * 1000)
            t0 = time.perf_counter()
            for i in range(n):
                v = 220.0 + i % 20
                gw.shards.update(
                    f"SM-{i:06d}",
                    Reading(ts, [v, v + 1, v + 2], [5.0] * 3, [v * 5] * 3, [], [0.95] * 3, 50.0),
                )
            out["update_sweep_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            scd = gw.scd()
            out["scd_from_live_gateway_s"] = time.perf_counter() - t0
            out["scd_from_live_gateway_bytes"] = len(scd)

            target = f"SM-{n // 2:06d}"
            shard = gw.shards.shard_of(target)
            assert shard is not None
            addr = f"{shard.ip}:{shard.port}"
            ref = f"{m.domain(target)}/MMXU1.TotW.mag.f"
            rust = await _read_latency_rust(addr, ref, reads)
            py = await asyncio.to_thread(_read_latency_pyiec, addr, ref, reads)
            for name, lat in (("rust_iec61850", rust), ("pyiec61850", py)):
                out[f"read_{name}_p50_ms"] = statistics.median(lat) * 1000
                out[f"read_{name}_p99_ms"] = _pct(lat, 0.99) * 1000
                out[f"read_{name}_mean_ms"] = statistics.fmean(lat) * 1000

            # registration -> visible to an MMS client, both ways in
            rest, catalog = [], []
            async with httpx.AsyncClient(base_url=runner.url, timeout=30) as http:
                for _ in range(visibility_samples):
                    t0 = time.perf_counter()
                    r = await http.post("/SmartMeter", json={"name": "new", "location": "bench"})
                    created = r.json()
                    info = (await http.get(f"/SmartMeter/{created['id']}")).json()
                    rest.append(await _visible(info["mms"], created["iedName"] + "MTR", t0))
                for k in range(visibility_samples):
                    dev = f"CAT-{k:04d}"
                    t0 = time.perf_counter()
                    await cat.admin.register(
                        DeviceRegistration(
                            id=dev, kind=DeviceKind.METER, capabilities=Capabilities(phases=3)
                        )
                    )
                    while True:
                        r = await http.get(
                            f"/SmartMeter/{dev}", headers={"Authorization": f"Bearer {admin}"}
                        )
                        if r.status_code == 200 and r.json().get("mms"):
                            break
                        await asyncio.sleep(0.005)
                    catalog.append(await _visible(r.json()["mms"], m.domain(dev), t0))
            for name, v in (("rest", rest), ("catalog", catalog)):
                out[f"visible_after_{name}_registration_p50_s"] = statistics.median(v)
                out[f"visible_after_{name}_registration_max_s"] = max(v)
            out["reports"] = await _reports(gw, report_s)
            runner.stop()
        finally:
            await cat.aclose()
            cat.stop()
    return out


def run(
    meters: int = typer.Option(1000, "--meters", "-n", min=1, help="meters served"),
    meters_per_shard: int = typer.Option(100, min=1, help="meters per MMS server"),
    reads: int = typer.Option(2000, min=10, help="reads per client for the latency figures"),
    visibility_samples: int = typer.Option(5, min=1),
    report_seconds: float = typer.Option(5.0, min=1.0),
    buffered_reports: bool = typer.Option(False, help="a BRCB per meter too (dearer updates)"),
    json_out: Path | None = typer.Option(None, "--json", help="write the results as JSON"),
) -> None:
    """SCD size/validity, MMS read latency, registration→visibility, reports/s (seed 004 beside)."""
    import logging

    for noisy in ("httpx", "gridedge.catalog", "gridedge.gateways", "uvicorn", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results: dict[str, Any] = {
        "command": f"gridedge bench iec61850 --meters {meters}"
        + (" --buffered-reports" if buffered_reports else ""),
        "machine_cpus": os.cpu_count(),
    }
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("SCD: generate + validate", total=2)
        results["scd"] = bench_scd(meters)
        progress.update(task, advance=1, description="gateway: shards, reads, joins, reports")
        with tempfile.TemporaryDirectory(prefix="gridedge-bench-iec61850-") as tmp:
            results["gateway"] = asyncio.run(
                _bench_gateway(
                    meters,
                    meters_per_shard,
                    reads,
                    visibility_samples,
                    report_seconds,
                    Path(tmp),
                    buffered_reports,
                )
            )
        progress.update(task, advance=1)
    results["thesis"] = THESIS
    s, g = results["scd"], results["gateway"]
    t = Table(title=f"IEC 61850 gateway, {meters} meters (gridedge vs seed 004 thesis)")
    t.add_column("figure")
    t.add_column("gridedge", justify="right")
    t.add_column("thesis", justify="right")
    rows = [
        ("SCD bytes per meter", f"{s['scd_bytes_per_meter']:,.0f}", "~2,800"),
        ("SCD schema (2007B4 XSD) errors", str(s["xsd_errors"]), THESIS["scd_schema_findings"]),
        ("SCD semantic issues", str(s["semantic_issues"]), "-"),
        ("SCD generation", f"{s['generation_s'] * 1000:,.0f} ms", "-"),
        ("SCD XSD validation", f"{s['xsd_validation_s'] * 1000:,.0f} ms", "-"),
        ("SCD semantic check", f"{s['semantic_check_s'] * 1000:,.0f} ms", "-"),
        ("MMS servers (shards)", str(g["shards"]), "1"),
        ("gateway start with all meters", f"{g['start_s']:.2f} s", "-"),
        ("idle CPU (gateway + catalog, one process)", f"{g['idle_cpu_percent']:.1f} %", "-"),
        ("BRCB per meter", "yes" if g["brcb"] else "no (URCB x2)", "-"),
        ("update sweep, all meters", f"{g['update_sweep_s'] * 1000:,.1f} ms", "500 ms poll"),
        (
            "read p50 / p99, Rust client",
            f"{g['read_rust_iec61850_p50_ms']:.3f} / {g['read_rust_iec61850_p99_ms']:.3f} ms",
            "-",
        ),
        (
            "read p50 / p99, pyiec61850 client",
            f"{g['read_pyiec61850_p50_ms']:.3f} / {g['read_pyiec61850_p99_ms']:.3f} ms",
            "-",
        ),
        (
            "REST registration → MMS visible p50 / max",
            f"{g['visible_after_rest_registration_p50_s'] * 1000:.0f} / {g['visible_after_rest_registration_max_s'] * 1000:.0f} ms",
            "server restart",
        ),
        (
            "catalog registration → MMS visible p50 / max",
            f"{g['visible_after_catalog_registration_p50_s'] * 1000:.0f} / {g['visible_after_catalog_registration_max_s'] * 1000:.0f} ms",
            "server restart",
        ),
        (
            "reports/s sustained (one association)",
            f"{g['reports']['reports_per_s']:,.0f} ({g['reports']['meters_reporting']} URCBs)",
            "none",
        ),
    ]
    for r in rows:
        t.add_row(*r)
    console.print(t)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2, default=str))
        console.print(f"wrote {json_out}")
