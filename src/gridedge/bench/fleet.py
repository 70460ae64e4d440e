"""``gridedge bench fleet``: N simulated meters publishing telemetry through Mosquitto, counted
and timed by an independent subscriber process; plus the app hot-swap time.

Process layout (what a laptop deployment looks like): two Mosquitto processes (data and
management plane), the catalog (its own process), the fleet (one or more processes, each a
``gridedge fleet run``), a subscriber process (Eclipse Mosquitto's C client ``mosquitto_sub``
at QoS 1, its output parsed by ``delivery_counter``: counts per-meter sequence numbers and gaps,
measures end-to-end latency = receive time − the reading's ``ts``), and this orchestrator, which also runs one extra
node in-process to time hot swaps (catalog PATCH → first message of the new version).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()

SEED = {
    "seed000_meters": 10_000,
    "seed000_mean_delay_ms_0pct_aggregation": 90,
    "seed000_mean_delay_ms_50pct_aggregation": 35,
    "iec61850_5_tt3_ms": 100,
}


# ---------------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------------


def _snapshot(procs: dict[str, subprocess.Popen], nproc: int, work: Path) -> None:
    """Ask every fleet process for a statistics line (SIGUSR1) and wait until each has written
    it: a loop that is late (the very thing the settling looks for) answers late, and an old
    line must not pass for a new one."""
    before = [_snapshot_count(work, k) for k in range(nproc)]
    for k in range(nproc):
        with contextlib.suppress(ProcessLookupError):
            procs[f"fleet{k}"].send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if all(_snapshot_count(work, k) > before[k] for k in range(nproc)):
            return
        time.sleep(0.05)


def _snapshots(work: Path, k: int) -> list[dict[str, Any]]:
    """Complete lines only (one being written has no newline yet)."""
    try:
        text = (work / f"fleet{k}.snapshots").read_text()
    except OSError:
        return []
    out = []
    for line in text.split("\n")[:-1]:
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def _snapshot_count(work: Path, k: int) -> int:
    return len(_snapshots(work, k))


def _settle(
    work: Path, procs: dict[str, subprocess.Popen], nproc: int, meters: int, timeout_s: float
) -> dict[str, Any]:
    """Snapshot every 2 s (3 s at least) until, since the previous snapshot, no process skipped
    a tick and the outboxes hold less than 5 % of one round of readings."""
    t0 = time.monotonic()
    time.sleep(3.0)
    prev: tuple[int, int] | None = None
    while True:
        _snapshot(procs, nproc, work)
        last = [(_snapshots(work, k) or [{}])[-1] for k in range(nproc)]
        cur = (
            sum(int(x.get("skipped_ticks", 0)) for x in last),
            sum(int(x.get("pending", 0)) for x in last),
        )
        steady = prev is not None and cur[0] == prev[0] and cur[1] < 0.05 * meters
        waited = time.monotonic() - t0
        if steady or waited > timeout_s:
            return {"steady": steady, "waited_s": waited, "pending": cur[1]}
        prev = cur
        time.sleep(2.0)


def _window_delta(work: Path, nproc: int, key: str, first_line: list[int]) -> int | None:
    """``key``'s growth from each fleet process's snapshot at the window's start to its last
    one, summed; None if a process did not answer both."""
    total = 0
    for k in range(nproc):
        snaps = _snapshots(work, k)
        if first_line[k] < 0 or len(snaps) < first_line[k] + 2:
            return None
        total += int(snaps[-1].get(key, 0)) - int(snaps[first_line[k]].get(key, 0))
    return total


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


# ---------------------------------------------------------------------------------------------
# hot swap (in this process)
# ---------------------------------------------------------------------------------------------

SWAP_APP = """
import json, time
VERSION = "{version}"

class App:
    async def run(self, ctx):
        while True:
            ctx.publish("swapbench", json.dumps({{"version": VERSION, "t": time.time()}}).encode())
            await ctx.sleep(0.02)

def factory():
    return App()
"""


async def _hot_swaps(
    catalog_url: str, admin_token: str, data_url: str, work: Path, swaps: int
) -> dict[str, Any]:
    from gridedge.broker.client import MqttClient
    from gridedge.catalog.client import CatalogAdmin
    from gridedge.contracts.catalog import (
        AppAssignment,
        AppPackageInfo,
        DeviceKind,
        DeviceRegistration,
        SettingsUpdate,
    )
    from gridedge.contracts.topics import Plane, subscription
    from gridedge.node import packages
    from gridedge.node.runtime import Node, NodeOptions

    key = packages.generate_key(work / "swapkey.pem")[0]
    priv = packages.load_private_key(key)
    versions = [f"1.0.{k}" for k in range(swaps + 1)]
    first_seen: dict[str, float] = {}

    def on(t: str, payload: bytes) -> None:
        v = json.loads(payload)["version"]
        first_seen.setdefault(v, time.perf_counter())

    async with CatalogAdmin(catalog_url, admin_token) as admin:
        for v in versions:
            src = work / f"swap-{v}"
            (src / "swapapp").mkdir(parents=True)
            (src / "swapapp" / "__init__.py").write_text(SWAP_APP.format(version=v))
            (src / "manifest.json").write_text(
                json.dumps({"name": "swapbench", "version": v, "entry_point": "swapapp:factory"})
            )
            packages.pack(src, work / f"swap-{v}.zip")
            data = (work / f"swap-{v}.zip").read_bytes()
            info = packages.inspect_package(data)
            await admin.upload_app_package(
                AppPackageInfo(
                    name="swapbench",
                    version=v,
                    sha256=info.sha256,
                    size=info.size,
                    signature=packages.sign_bytes(data, priv),
                    manifest=info.manifest_raw,
                ),
                data,
            )
        creds = await admin.register(
            DeviceRegistration(
                id="bench-swap",
                kind=DeviceKind.METER,
                update_period_s=300,
                apps=[AppAssignment(name="swapbench", version=versions[0])],
            )
        )
        sub = MqttClient(data_url, client_id="bench-swap-sub")
        await sub.connect()
        sub.subscribe(subscription(Plane.DATA, "bench-swap", "swapbench"), on, qos=0)
        node = Node(
            NodeOptions(
                device_id="bench-swap",
                catalog_url=catalog_url,
                state_dir=work / "swapnode",
                secret=creds.provisioning_secret,
                trusted_keys=[packages.load_public_key(key.with_name(key.name + ".pub"))],
            )
        )
        await node.start()
        times: list[float] = []
        try:
            for _ in range(100):
                if versions[0] in first_seen:
                    break
                await asyncio.sleep(0.05)
            for v in versions[1:]:
                await asyncio.sleep(0.5)
                t0 = time.perf_counter()
                await admin.patch_settings(
                    "bench-swap", SettingsUpdate(apps=[AppAssignment(name="swapbench", version=v)])
                )
                for _ in range(400):
                    if v in first_seen:
                        break
                    await asyncio.sleep(0.005)
                if v in first_seen:
                    times.append(first_seen[v] - t0)
        finally:
            await node.stop()
            await sub.disconnect()
    internal = node.apps.swap_times_s
    return {
        "swaps": len(times),
        "command_to_running_ms_p50": 1000 * statistics.median(times) if times else None,
        "command_to_running_ms_max": 1000 * max(times) if times else None,
        "node_swap_ms_p50": 1000 * statistics.median(internal) if internal else None,
    }


# ---------------------------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------------------------


def _spawn(code: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_file(path: Path, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(
                    f"process {p.args[:3]} exited with {p.returncode} before {path.name}"
                )
        time.sleep(0.2)
    raise TimeoutError(f"{path.name} not ready within {timeout} s")


def run(
    meters: int = typer.Option(10_000, "--meters", min=1, max=40_000, help="simulated meters"),
    interval: float = typer.Option(
        1.0, "--interval", min=0.05, help="telemetry interval per meter, s"
    ),
    duration: float = typer.Option(
        60.0, "--duration", min=5, help="measured steady-state window, s"
    ),
    processes: int = typer.Option(
        0, "--processes", min=0, max=8, help="fleet processes (0: 1 per 5,000 meters)"
    ),
    swaps: int = typer.Option(5, "--swaps", min=0, max=50, help="hot swaps to time"),
    subscriber: str = typer.Option(
        "mosquitto_sub",
        "--subscriber",
        help="measuring end: mosquitto_sub (C, Debian mosquitto-clients) or gmqtt (Python)",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write the results here"),
    workdir: Path | None = typer.Option(None, "--workdir", help="keep logs and state here"),
) -> None:
    """10,000 meters publishing telemetry every second through Mosquitto: loss, latency, CPU, RSS."""
    from gridedge.bench.delivery_counter import CounterError, find_client
    from gridedge.broker.mosquitto import EmbeddedBrokers, free_port, raise_fd_limit

    if subscriber not in ("mosquitto_sub", "gmqtt"):
        raise typer.BadParameter(
            f"{subscriber!r}: must be mosquitto_sub or gmqtt", param_hint="--subscriber"
        )
    if subscriber == "mosquitto_sub":
        try:
            find_client("mosquitto_sub")
            find_client("mosquitto_pub")
        except CounterError as exc:
            raise typer.BadParameter(
                f"{exc}; or use --subscriber gmqtt", param_hint="--subscriber"
            ) from None
    raise_fd_limit()
    work = workdir or Path(tempfile.mkdtemp(prefix="gridedge-bench-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    nproc = processes or max(1, -(-meters // 5000))
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "GRIDEDGE_ADMIN_TOKEN": token, "GRIDEDGE_DATA_DIR": str(work / "data")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, Any] = {
        "meters": meters,
        "interval_s": interval,
        "duration_s": duration,
        "fleet_processes": nproc,
        "subscriber": subscriber,
        "cores": os.cpu_count(),
        "seed": SEED,
    }
    brokers = EmbeddedBrokers.create(workdir=work / "mqtt")
    brokers.start()
    try:
        port = free_port()
        catalog_url = f"http://127.0.0.1:{port}"
        procs["catalog"] = _spawn(
            "from gridedge.catalog.cli import app; app()",
            [
                "serve",
                "--port",
                str(port),
                "--db",
                f"sqlite:///{work / 'catalog.db'}",
                "--data-broker",
                brokers.data.url,
                "--mgmt-broker",
                brokers.mgmt.url,
            ],
            env,
            work / "catalog.log",
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{catalog_url}/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or procs["catalog"].poll() is not None:
                raise RuntimeError(f"catalog did not start: see {work / 'catalog.log'}")
            time.sleep(0.3)
        procs["subscriber"] = _spawn(
            "from gridedge.bench.delivery_counter import main; main()",
            [brokers.data.url, str(work / "sub.bin"), str(work / "sub.ready"), subscriber],
            env,
            work / "sub.log",
        )
        _wait_file(work / "sub.ready", 60, list(procs.values()))
        # the subscriber's CPU includes its mosquitto_sub child's
        sub_children = json.loads((work / "sub.ready").read_text()).get("child_pids", [])
        per = -(-meters // nproc)
        t_boot = time.time()
        for k in range(nproc):
            count = min(per, meters - k * per)
            procs[f"fleet{k}"] = _spawn(
                "from gridedge.node.fleet_cli import app; app()",
                [
                    "run",
                    "--grid",
                    "bench",
                    "--meters",
                    str(count),
                    "--start-index",
                    str(k * per),
                    "--prefix",
                    "bench",
                    "--interval",
                    str(interval),
                    "--catalog",
                    catalog_url,
                    "--admin-token",
                    token,
                    "--state-dir",
                    str(work / "fleet"),
                    "--update-period",
                    "60",
                    "--stats-json",
                    str(work / f"fleet{k}.json"),
                    "--ready-file",
                    str(work / f"fleet{k}.ready"),
                    "--snapshot-file",
                    str(work / f"fleet{k}.snapshots"),
                ],
                env,
                work / f"fleet{k}.log",
            )
        console.print(f"booting {meters} meters in {nproc} process(es)…")
        for k in range(nproc):
            _wait_file(work / f"fleet{k}.ready", 900, list(procs.values()))
        results["boot_s"] = time.time() - t_boot
        ready = [json.loads((work / f"fleet{k}.ready").read_text()) for k in range(nproc)]
        results["booted_meters"] = sum(r["meters"] for r in ready)
        results["boot_failures"] = sum(r["failed"] for r in ready)
        # The measuring window starts once the fleet is in its steady state: the process that
        # booted first has run its meters while the other still booted, and its loop is late
        # until the backlog (outbox rows, late ticks) is gone. Measuring from then on would count
        # the boot's overload as the fleet's.
        settled = _settle(work, procs, nproc, meters, timeout_s=60.0)
        results["settle_s"] = settled["waited_s"]
        if not settled["steady"]:
            results.setdefault("notes", []).append(
                f"fleet not steady after {settled['waited_s']:.0f} s (still skipping ticks or "
                f"{settled['pending']} readings pending): measured anyway"
            )
        pids = {name: [p.pid] for name, p in procs.items()}
        pids["subscriber"] += sub_children
        pids["mosquitto-data"] = [brokers.data.pid or 0]
        pids["mosquitto-mgmt"] = [brokers.mgmt.pid or 0]
        cpu0 = {n: sum(_cpu_s(q) for q in p) for n, p in pids.items()}
        sub_c0 = sum(_cpu_s(q) for q in sub_children)
        _snapshot(procs, nproc, work)
        first_line = [_snapshot_count(work, k) - 1 for k in range(nproc)]
        w0 = time.time()
        console.print(f"measuring {duration:.0f} s (hot swaps in between)…")
        swap = (
            asyncio.run(_hot_swaps(catalog_url, token, brokers.data.url, work, swaps))
            if swaps
            else {}
        )
        rest = duration - (time.time() - w0)
        if rest > 0:
            time.sleep(rest)
        w1 = time.time()
        _snapshot(procs, nproc, work)
        cpu1 = {n: sum(_cpu_s(q) for q in p) for n, p in pids.items()}
        sub_c1 = sum(_cpu_s(q) for q in sub_children)
        rss = {n: sum(_peak_rss_mb(q) for q in p) for n, p in pids.items()}
        results["hot_swap"] = swap
        # stop the fleet: apps stop, outboxes drain, stats are written
        for k in range(nproc):
            procs[f"fleet{k}"].send_signal(signal.SIGINT)
        deadline = time.monotonic() + 180
        for k in range(nproc):
            while not (work / f"fleet{k}.json").exists() and time.monotonic() < deadline:
                if procs[f"fleet{k}"].poll() is not None:
                    break
                time.sleep(0.5)
        time.sleep(2.0)
        procs["subscriber"].send_signal(signal.SIGTERM)
        procs["subscriber"].wait(timeout=120)
        sub = json.loads((work / "sub.json").read_text())
        if sub.get("client_exit") is not None:
            results.setdefault("notes", []).append(
                f"mosquitto_sub ended early ({sub['client_exit']}): {sub.get('client_stderr')}"
            )
        fleet_stats = []
        for k in range(nproc):
            f = work / f"fleet{k}.json"
            if f.exists():
                fleet_stats.append(json.loads(f.read_text()))
            else:  # the fleet did not settle: count what the subscriber proves was published
                results.setdefault("notes", []).append(f"fleet{k} wrote no statistics within 180 s")
                fleet_stats.append({"published": None, "dropped": 0})
        if any(s["published"] is None for s in fleet_stats):
            # lower bound: every meter published at least up to the highest seq seen (seq from 0)
            fleet_stats = [
                {"published": sum(m + 1 for m in sub["per_device_max"].values()), "dropped": 0}
            ]
            results["published_is_lower_bound"] = True
        recv = array.array("d")
        recv.frombytes((work / "sub.bin").read_bytes())
        created = array.array("d")
        created.frombytes((work / "sub.created").read_bytes())
        published_total = sum(s["published"] for s in fleet_stats)
        in_window_created = sum(1 for c in created if w0 <= c < w1)
        in_window_recv = sum(1 for r in recv if w0 <= r < w1)
        lat = [1000 * (r - c) for r, c in zip(recv, created, strict=True) if w0 <= c < w1]
        cpu_cores = {n: (cpu1[n] - cpu0[n]) / (w1 - w0) for n in pids}
        delivered_per_s = in_window_recv / (w1 - w0)
        fleet_cores = sum(v for n, v in cpu_cores.items() if n.startswith("fleet"))
        per_reading = 1e6 / delivered_per_s if delivered_per_s else float("nan")
        results.update(
            published_total=published_total,
            delivered_total=sub["unique"],
            lost=published_total - sub["unique"],
            duplicates=sub["dup"],
            unparsable=sub["bad"],
            # polls that found mosquitto_sub's pipe full: the measuring end fell behind (0 expected)
            subscriber_pipe_full=sub.get("pipe_full", 0),
            sequence_gaps=sub["gaps"],
            meters_with_gaps=sub["devices_with_gaps"],
            dropped_in_outboxes=sum(s["dropped"] for s in fleet_stats),
            skipped_ticks=sum(s.get("skipped_ticks", 0) for s in fleet_stats),
            # the same counter read at the window's two ends: ticks the loops missed while
            # measured (the total above includes boot, when one process starts its apps while
            # the other still boots, and shutdown)
            skipped_ticks_in_window=_window_delta(work, nproc, "skipped_ticks", first_line),
            published_per_s=in_window_created / (w1 - w0),
            delivered_per_s=delivered_per_s,
            latency_ms_p50=_pct(lat, 50),
            latency_ms_p99=_pct(lat, 99),
            latency_ms_max=max(lat) if lat else float("nan"),
            cpu_cores=cpu_cores,
            # the CPU budget per reading delivered in the window: what 10,000/s must fit in 2 cores
            cpu_us_per_reading={
                "fleet": fleet_cores * per_reading,
                "subscriber": cpu_cores["subscriber"] * per_reading,
                # of which the C client (the rest: parsing its output in Python)
                "subscriber_mosquitto_sub": (sub_c1 - sub_c0) / (w1 - w0) * per_reading,
                "mosquitto-data": cpu_cores["mosquitto-data"] * per_reading,
            },
            peak_rss_mb=rss,
        )
        results["cpu_cores_total"] = sum(v for v in results["cpu_cores"].values() if v == v)
        results["fleet_rss_mb_total"] = sum(v for n, v in rss.items() if n.startswith("fleet"))
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if name != "catalog" else signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        brokers.stop()
    _print(results)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=1))


def _print(r: dict[str, Any]) -> None:
    t = Table(
        title=f"fleet: {r['meters']} meters × 1/{r['interval_s']} s, {r['duration_s']:.0f} s, {r['fleet_processes']} fleet process(es), {r['cores']} cores"
    )
    t.add_column("measure")
    t.add_column("gridedge", justify="right")
    t.add_column("target / seed", justify="right")
    ms = "{:.1f} ms".format
    t.add_row(
        "meters up (boot failures)",
        f"{r.get('booted_meters')} ({r.get('boot_failures')})",
        "10,000 (seed 000)",
    )
    t.add_row("boot: register + provision + connect", f"{r.get('boot_s', 0):.1f} s", "")
    t.add_row("settling before the window (backlog gone)", f"{r.get('settle_s', 0):.1f} s", "")
    t.add_row(
        "published msg/s",
        f"{r.get('published_per_s', 0):,.0f}",
        f"{r['meters'] / r['interval_s']:,.0f} offered",
    )
    t.add_row("delivered msg/s", f"{r.get('delivered_per_s', 0):,.0f}", "")
    t.add_row("lost (published − delivered)", f"{r.get('lost')}", "0")
    t.add_row(
        "gaps in per-meter sequence (meters)",
        f"{r.get('sequence_gaps')} ({r.get('meters_with_gaps')})",
        "0",
    )
    t.add_row("duplicates / unparsable", f"{r.get('duplicates')} / {r.get('unparsable')}", "0")
    if r.get("subscriber_pipe_full"):
        t.add_row("subscriber fell behind (pipe full)", f"{r['subscriber_pipe_full']}", "0")
    t.add_row("dropped in outboxes", f"{r.get('dropped_in_outboxes')}", "0")
    t.add_row(
        "readings skipped (loop late): in window / whole run",
        f"{r.get('skipped_ticks_in_window')} / {r.get('skipped_ticks')}",
        "0",
    )
    t.add_row(
        "latency p50 / p99 / max",
        f"{ms(r.get('latency_ms_p50', 0))} / {ms(r.get('latency_ms_p99', 0))} / {ms(r.get('latency_ms_max', 0))}",
        "p99 < 100 ms (IEC 61850-5 TT3); seed 000 mean 90 ms",
    )
    for n, v in r.get("cpu_cores", {}).items():
        t.add_row(f"CPU {n}", f"{v:.2f} cores", "")
    t.add_row("CPU total", f"{r.get('cpu_cores_total', 0):.2f} cores", f"{r['cores']} cores")
    per = r.get("cpu_us_per_reading") or {}
    if per.get("fleet") == per.get("fleet"):  # not NaN: something was delivered
        t.add_row(
            "CPU per reading: fleet / subscriber / Mosquitto data",
            f"{per['fleet']:.0f} / {per['subscriber']:.0f} / {per['mosquitto-data']:.0f} µs",
            f"sum < {1e6 * r['cores'] * r['interval_s'] / r['meters']:.0f} µs",
        )
    for n, v in r.get("peak_rss_mb", {}).items():
        t.add_row(f"peak RSS {n}", f"{v:.0f} MB", "")
    t.add_row("peak RSS fleet total", f"{r.get('fleet_rss_mb_total', 0):.0f} MB", "< 2 GB")
    hs = r.get("hot_swap") or {}
    if hs.get("swaps"):
        t.add_row(
            "app hot swap: PATCH → new version publishing",
            f"p50 {ms(hs['command_to_running_ms_p50'])}, max {ms(hs['command_to_running_ms_max'])} ({hs['swaps']} swaps)",
            "seed 001: 'on the fly'",
        )
        t.add_row(
            "  of which node-side swap (verify+import+start)", ms(hs["node_swap_ms_p50"] or 0), ""
        )
    console.print(t)
    for note in r.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
