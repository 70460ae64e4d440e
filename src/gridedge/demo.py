"""``gridedge demo``: the whole system on one laptop from one command.

It starts the embedded brokers (data and management planes), the Device Catalog, the grid twin
behind its network interface, the grid's meters (nodes running the telemetry, outage, fault-capture
and relay apps on the twin's simulated DAQ and switchgear), the IEC 61850 gateway, the historian
and the supervisory dashboard; then it plays a scenario — normal operation, a fault, self-healing —
unless ``--no-scenario``. Everything runs in this process (threads and one event loop) except the
two Mosquitto processes, which are stopped on exit, so Ctrl-C leaves nothing running.

Parts a build does not have yet are named in the output: when FLISR's services are absent the
scenario says so, and any restoration it shows is the demo's own operator switching through the
dashboard's API, labelled as such — never reported as FLISR.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(soft_wrap=True)  # long URLs and summaries stay on one line in CI logs

DEFAULT_FAULT = {"turin-2feeder": "L-A2-A3"}
KIND_NAMES = {
    "1ph": "single-phase-to-ground",
    "2ph": "phase-to-phase",
    "2ph-g": "two-phase-to-ground",
    "3ph": "three-phase",
}
HOLD_S = 5.0  # a restoration must last this long to count
FLISR_MODULES = ("gridedge.apps.fault_location", "gridedge.apps.reconfiguration")


def _process_age_s() -> float:
    """Seconds since this process started (so 'ready after' includes Python's imports)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start)
    except (OSError, ValueError, IndexError):
        return 0.0


def flisr_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in FLISR_MODULES)


@dataclass
class Summary:
    grid: str
    fault_branch: str | None = None
    fault_kind: str = ""
    fault_fraction: float = 0.0
    tripped: list[str] = field(default_factory=list)
    faulted_zone: list[str] = field(default_factory=list)
    located: str = ""
    restoration: str = ""
    restoration_s: float | None = None
    healthy_nodes: int = 0
    healthy_energised: int = 0
    completed: bool = False
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# ground truth from the topology: which nodes the fault must leave dark
# ------------------------------------------------------------------------------------------------
def faulted_zone(doc: Any, branch_id: str) -> tuple[set[str], list[Any]]:
    """Nodes joined to the faulted branch without crossing a switch (the smallest part that
    switching can isolate), and the switches on its border."""
    by_id = {b.id: b for b in doc.branches}
    fb = by_id[branch_id]
    zone = {fb.from_node, fb.to_node}
    grew = True
    while grew:
        grew = False
        for b in doc.branches:
            if b.switchable:
                continue
            if (b.from_node in zone) != (b.to_node in zone):
                zone |= {b.from_node, b.to_node}
                grew = True
    border = [
        b for b in doc.branches if b.switchable and ((b.from_node in zone) != (b.to_node in zone))
    ]
    return zone, border


def pick_fault_branch(doc: Any) -> str:
    if doc.grid in DEFAULT_FAULT and any(b.id == DEFAULT_FAULT[doc.grid] for b in doc.branches):
        return DEFAULT_FAULT[doc.grid]
    lines = [b for b in doc.branches if b.kind in ("line", "cable")]
    for b in lines[len(lines) // 3 :] + lines:
        _, border = faulted_zone(doc, b.id)
        if len(border) >= 2:
            return b.id
    raise RuntimeError(f"grid {doc.grid!r} has no line bounded by switches to fault")


# ------------------------------------------------------------------------------------------------
# the platform, started and stopped
# ------------------------------------------------------------------------------------------------
@dataclass
class DemoOptions:
    grid: str
    catalog_port: int
    dashboard_port: int
    data_dir: Path
    admin_token: str
    telemetry_interval_s: float = 1.0


class Platform:
    def __init__(self, o: DemoOptions) -> None:
        self.o = o
        self.brokers: Any = None
        self.catalog: Any = None
        self.twin_server: Any = None
        self.twin: Any = None
        self.topology: Any = None
        self.nodes: list[Any] = []
        self.gateway: Any = None
        self.dashboard: Any = None
        self.missing: list[str] = []
        self.meter_ids: list[str] = []

    def app_states(self) -> dict[str, str]:
        """``device/app`` -> state, from the nodes themselves."""
        out: dict[str, str] = {}
        for n in self.nodes:
            for name, rep in n.app_states.items():
                out[f"{n.opts.device_id}/{name}"] = rep.state.value
        return out

    # each step is one line of start-up progress
    def start_brokers(self) -> str:
        from gridedge.broker.mosquitto import EmbeddedBrokers

        self.brokers = EmbeddedBrokers.create(workdir=self.o.data_dir / "mqtt").start()
        return f"data {self.brokers.data.url}, mgmt {self.brokers.mgmt.url}"

    def start_catalog(self) -> str:
        from gridedge.catalog.server import CatalogServer, endpoint
        from gridedge.catalog.service import CatalogOptions
        from gridedge.contracts.catalog import BrokerPlanes

        url = f"http://127.0.0.1:{self.o.catalog_port}"
        self.catalog = CatalogServer(
            CatalogOptions(
                db_url=f"sqlite:///{self.o.data_dir / 'catalog.db'}",
                brokers=BrokerPlanes(
                    data=endpoint(self.brokers.data.url), mgmt=endpoint(self.brokers.mgmt.url)
                ),
                public_url=url,
                admin_token=self.o.admin_token,
            ),
            port=self.o.catalog_port,
        ).start()
        return url

    def start_twin(self) -> str:
        from gridedge.broker.mosquitto import free_port
        from gridedge.clock import Clock
        from gridedge.twin.model import Twin
        from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions

        self.twin = Twin.from_name(self.o.grid, clock=Clock("wall"))
        self.topology = self.twin.topology_document()
        self.twin_server = TwinServer(
            TwinService(self.twin, TwinServiceOptions(seed=1)), port=free_port()
        ).start()
        return f"{self.o.grid} at {self.twin_server.url} ({len(self.topology.nodes)} nodes, {len(self.topology.branches)} branches)"

    async def publish_topology(self) -> str:
        from gridedge.catalog.client import CatalogAdmin

        async with CatalogAdmin(self.catalog.url, self.o.admin_token) as admin:
            stored = await admin.put_topology(self.topology)
        return f"topology {stored.grid} v{stored.version} in the catalog"

    def _device_plan(self) -> list[dict[str, Any]]:
        """The devices of seed 001's laboratory: a 3SMA meter per twin measurement point
        (telemetry, outage detection, fault capture; the feeder-head meters also locate faults),
        a switchgear gateway driving every breaker, sectionalizer and tie over MQTT commands, and
        a cloud service host running the reconfiguration service."""
        doc = self.topology
        grid = self.o.grid
        flisr = flisr_available()
        feeder_of = {n.id: n.feeder for n in doc.nodes}
        breakers = {b.id for b in doc.branches if b.kind == "breaker"}
        points = list(self.twin.measurement_points)

        def app(name: str, **params: Any) -> dict[str, Any]:
            return {"name": name, "version": "1.0.0", "params": params}

        plan: list[dict[str, Any]] = []
        for p in points:
            apps = [
                app("telemetry", interval_s=self.o.telemetry_interval_s),
                app("outage", poll_interval_s=0.2),
                app(
                    "fault_capture",
                    poll_interval_s=0.05,
                    record_dir=str(self.o.data_dir / "faults" / p.id),
                ),
            ]
            if flisr and p.branch_id in breakers:
                others = {
                    q.id: q.node_id
                    for q in points
                    if q.id != p.id and feeder_of.get(q.node_id) == feeder_of.get(p.node_id)
                }
                apps.append(
                    app("fault_location", grid=grid, point=p.id, meters=others, sag_wait_s=0.3)
                )
            plan.append(
                {
                    "id": p.id,
                    "kind": "meter",
                    "point": p.id,
                    "node": p.node_id,
                    "branch": p.branch_id,
                    "apps": apps,
                    "switches": [],
                    "description": p.description,
                }
            )
        if flisr and not any(a["name"] == "fault_location" for d in plan for a in d["apps"]):
            self.missing.append(
                f"fault location: no measurement point of {grid!r} sits at a feeder breaker, so "
                "FLISR's locator is not deployed and faults here are not located or restored"
            )
        switches = list(self.twin.switch_ids)
        source = next((n.id for n in doc.nodes if n.kind == "source"), None)
        plan.append(
            {
                "id": "SWGW",
                "kind": "switch",
                "point": None,
                "node": source,
                "branch": None,
                "apps": [app("relay")],
                "switches": switches,
                "description": "switchgear gateway: remote control of every breaker, sectionalizer and tie",
            }
        )
        if flisr:
            plan.append(
                {
                    "id": "FLISR",
                    "kind": "service-host",
                    "point": None,
                    "node": None,
                    "branch": None,
                    "apps": [
                        app(
                            "reconfiguration",
                            grid=grid,
                            switch_device="SWGW",
                            catalog_url=self.catalog.url,
                        )
                    ],
                    "switches": [],
                    "description": "cloud service host: network reconfiguration",
                }
            )
        return plan

    async def start_meters(self) -> str:
        from gridedge.catalog.client import CatalogAdmin, CatalogError
        from gridedge.contracts.catalog import Capabilities, DeviceRegistration, GridLocation
        from gridedge.node.backends import make_backends
        from gridedge.node.runtime import Node, NodeOptions

        # the reconfiguration service stores the new topology with the operator token, which
        # it reads from the environment (never from app parameters)
        os.environ["GRIDEDGE_ADMIN_TOKEN"] = self.o.admin_token
        plan = self._device_plan()
        self.meter_ids = [d["id"] for d in plan if d["point"]]
        secrets: dict[str, str] = {}
        async with CatalogAdmin(self.catalog.url, self.o.admin_token) as admin:
            for d in plan:
                reg = DeviceRegistration(
                    id=d["id"],
                    kind=d["kind"],
                    hardware="simulated on the twin" if d["point"] or d["switches"] else None,
                    location=GridLocation(
                        grid=self.o.grid, node_id=d["node"], branch_id=d["branch"]
                    ),
                    capabilities=Capabilities(
                        relay=bool(d["switches"]),
                        switch_ids=d["switches"],
                        daq_channels=["va", "vb", "vc", "ia", "ib", "ic"] if d["point"] else [],
                    ),
                    apps=d["apps"],
                    update_period_s=30.0,
                    liveness_timeout_s=10.0,
                    metadata={"description": d["description"]},
                )
                try:
                    secrets[d["id"]] = (await admin.register(reg)).provisioning_secret
                except CatalogError as exc:
                    if exc.status != 409:
                        raise
                    await admin.delete_device(
                        d["id"]
                    )  # left over from an earlier demo in this data dir
                    secrets[d["id"]] = (await admin.register(reg)).provisioning_secret
        for d in plan:
            opts: dict[str, Any] = {"url": self.twin_server.url}
            if d["point"]:
                opts["point"] = d["point"]
            if d["switches"]:
                opts["switches"] = ",".join(d["switches"])
            daq, act = make_backends("twin", opts, device_id=d["id"])
            node = Node(
                NodeOptions(
                    device_id=d["id"],
                    catalog_url=self.catalog.url,
                    state_dir=self.o.data_dir / "nodes" / d["id"],
                    secret=secrets[d["id"]],
                    daq=daq if d["point"] else None,
                    actuators=act,
                    persist_outbox=False,
                    durable_state=False,
                )
            )
            await node.start()
            self.nodes.append(node)
        return ", ".join(f"{d['id']} ({'+'.join(a['name'] for a in d['apps'])})" for d in plan)

    def start_gateway(self) -> str:
        try:
            from gridedge.gateways.iec61850.gateway import GatewayOptions
            from gridedge.gateways.iec61850.server import GatewayRunner
        except ImportError as exc:
            self.missing.append(f"IEC 61850 gateway ({exc})")
            return "not available in this build"
        self.gateway = GatewayRunner(
            GatewayOptions(
                data_dir=self.o.data_dir / "iec61850",
                admin_token=self.o.admin_token,
                data_broker=self.brokers.data.url,
                mgmt_broker=self.brokers.mgmt.url,
                catalog_url=self.catalog.url,
                grid=self.o.grid,
            )
        )
        (self.o.data_dir / "iec61850").mkdir(parents=True, exist_ok=True)
        self.gateway.start()
        return f"REST {self.gateway.url}"

    def mms_endpoints(self) -> dict[str, str]:
        if self.gateway is None or self.gateway.gateway is None:
            return {}
        eps = self.gateway.gateway.shards.endpoints()
        return {dev: f"{ep.ip}:{ep.port}" for dev, ep in eps.items()}

    async def start_dashboard(self) -> str:
        from gridedge.dashboard.service import DashboardOptions, DashboardService
        from gridedge.dashboard.twin_view import TwinGridView
        from gridedge.historian.store import sqlite_url

        opts = DashboardOptions(
            data_broker=self.brokers.data.url,
            mgmt_broker=self.brokers.mgmt.url,
            db_url=sqlite_url(self.o.data_dir / "historian.db"),
            admin_token=self.o.admin_token,
            port=self.o.dashboard_port,
            twin_url=self.twin_server.url,
            catalog_url=self.catalog.url,
            grid=self.o.grid,
            info={"demo": True, "flisr": flisr_available()},
        )
        grid = TwinGridView(
            self.twin_server.url,
            grid=self.o.grid,
            catalog_url=self.catalog.url,
            admin_token=self.o.admin_token,
            topology=self.topology,
        )
        self.dashboard = await DashboardService(opts, grid).start()
        return self.dashboard.url

    async def stop(self) -> None:
        if self.dashboard is not None:
            with contextlib.suppress(Exception):
                await self.dashboard.stop()
        for n in self.nodes:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(n.stop(), 10)
        for part in (self.gateway, self.twin_server, self.catalog):
            if part is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(part.stop)
        if self.brokers is not None:
            self.brokers.stop()


# ------------------------------------------------------------------------------------------------
# the scenario: normal operation, a fault, self-healing
# ------------------------------------------------------------------------------------------------
class Scenario:
    def __init__(
        self, platform: Platform, say: Any, fault_branch: str | None, fault_kind: str = "1ph"
    ) -> None:
        self.p = platform
        self.say = say
        self.s = Summary(grid=platform.o.grid)
        self.fault_branch = fault_branch
        self.fault_iso = ""
        self.fault_kind = fault_kind

    async def _api(self, http: Any, method: str, path: str, body: Any = None) -> Any:
        r = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {self.p.o.admin_token}"}
        )
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    async def _status(self, http: Any) -> dict[str, Any]:
        return (await http.get("/api/state")).json()

    async def run(self) -> Summary:
        import httpx

        s = self.s
        doc = self.p.topology
        async with httpx.AsyncClient(base_url=self.p.dashboard.url, timeout=30) as http:
            # 1. normal operation: every meter online and reporting
            self.say(
                "[bold]scenario 1/3[/bold] normal operation: waiting for every meter to be online and reporting"
            )
            devices = [n.opts.device_id for n in self.p.nodes]
            meters = self.p.meter_ids
            deadline = time.monotonic() + 45
            while True:
                st = await self._status(http)
                online = [m for m in devices if st["statuses"].get(m) == "connected"]
                reporting = [m for m in meters if m in st["latest"]]
                apps = self.p.app_states()
                waiting = [a for a, state in apps.items() if state != "running"]
                if len(online) == len(devices) and len(reporting) == len(meters) and not waiting:
                    break
                if time.monotonic() > deadline:
                    s.notes.append(
                        f"after 45 s: {len(online)}/{len(devices)} devices online, "
                        f"{len(reporting)}/{len(meters)} meters reporting, apps not running: {waiting}"
                    )
                    break
                await asyncio.sleep(0.3)
            self.say(
                f"  {len(online)}/{len(devices)} devices online, {len(reporting)}/{len(meters)} meters "
                f"reporting telemetry, {len(apps) - len(waiting)}/{len(apps)} apps running"
            )
            await asyncio.sleep(2.0)

            # 2. a fault
            branch = self.fault_branch or pick_fault_branch(doc)
            zone, border = faulted_zone(doc, branch)
            s.fault_branch, s.fault_kind, s.fault_fraction = branch, self.fault_kind, 0.5
            s.faulted_zone = sorted(zone)
            healthy = [n.id for n in doc.nodes if n.id not in zone]
            s.healthy_nodes = len(healthy)
            self.say(
                f"[bold]scenario 2/3[/bold] fault: {KIND_NAMES.get(self.fault_kind, self.fault_kind)} on {branch} at 50 % (through the dashboard's API)"
            )
            before = (await self._status(http))["grid"]["switches"]
            t_fault = time.monotonic()
            self.fault_iso = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            info = await self._api(
                http,
                "POST",
                "/api/faults",
                {
                    "branch_id": branch,
                    "kind": self.fault_kind,
                    "position": 0.5,
                    "resistance_ohm": 0.001,
                },
            )
            grid = await self._wait_trip(http, 10)
            # what protection opened: closed before the fault, open after it
            s.tripped = sorted(
                b for b, closed in grid["switches"].items() if not closed and before.get(b, False)
            )
            dark = sorted(n for n, e in grid["energised"].items() if not e)
            self.say(
                f"  protection tripped {', '.join(s.tripped) or 'nothing'}; {len(dark)} nodes de-energised"
            )
            del info

            # 3. self-healing
            if flisr_available():
                await self._self_heal_flisr(http, healthy, t_fault)
            else:
                s.located = "not located: FLISR's fault-location and reconfiguration services are not in this build"
                self.say(
                    "[bold]scenario 3/3[/bold] [yellow]FLISR is not available in this build[/yellow] (no fault location, no automatic restoration)."
                )
                self.say(
                    "  The demo restores supply itself by operator switching through the dashboard's API (labelled MANUAL, not FLISR)."
                )
                await self._manual_restoration(http, zone, border, healthy, t_fault)
            if s.completed:
                await self._hold(http, healthy, HOLD_S)
        return s

    async def _hold(self, http: Any, healthy: list[str], seconds: float) -> None:
        """A restoration counts only if it lasts: watch the healthy part for a while (a second,
        spurious FLISR run or a protection trip would undo it)."""
        s = self.s
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            ok = await self._healthy_energised(http, healthy)
            if ok < len(healthy):
                s.completed = False
                s.healthy_energised = ok
                st = await self._status(http)
                trips = sorted(b for b, c in st["grid"]["switches"].items() if not c)
                s.notes.append(
                    f"restoration did not hold: {len(healthy) - ok} healthy nodes dark again "
                    f"{time.monotonic() - t0:.1f} s later (open switches now: {', '.join(trips)})"
                )
                return
            await asyncio.sleep(0.2)
        self.say(f"  the healthy part stayed energised for {seconds:.0f} s")

    async def _wait_trip(self, http: Any, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            grid = (await self._status(http))["grid"]
            if any(not e for e in grid["energised"].values()) or time.monotonic() > deadline:
                return grid
            await asyncio.sleep(0.1)

    async def _healthy_energised(self, http: Any, healthy: list[str]) -> int:
        grid = (await self._status(http))["grid"]
        return sum(1 for n in healthy if grid["energised"].get(n))

    async def _self_heal_flisr(self, http: Any, healthy: list[str], t_fault: float) -> None:
        s = self.s
        self.say(
            "[bold]scenario 3/3[/bold] self-healing: waiting for FLISR's record and the healthy part re-energised"
        )
        deadline = time.monotonic() + 45
        record = None
        while time.monotonic() < deadline:
            st = await self._status(http)
            rec = st.get("flisr")
            if rec and str(rec.get("ts", "")) >= self.fault_iso:  # not an older retained record
                record = rec
            ok = sum(1 for n in healthy if st["grid"]["energised"].get(n))
            s.healthy_energised = ok
            if record and ok == len(healthy):
                s.restoration_s = time.monotonic() - t_fault
                s.completed = True
                break
            await asyncio.sleep(0.2)
        if record:
            loc = record.get("location") or {}
            s.located = (
                f"{loc.get('section_id')} ({loc.get('from_node')} – {loc.get('to_node')}), "
                f"{loc.get('distance_m', 0):.0f} m from {loc.get('from_node')}, by {loc.get('device_id')} "
                f"in {loc.get('compute_s', 0):.2f} s"
            )
            s.restoration = (
                f"automatic (FLISR, outcome {record.get('outcome')}): opened "
                f"{', '.join(record.get('isolated_switches', []))}; closed "
                f"{', '.join(record.get('closed_switches', []))}; FLISR total {record.get('total_s', 0):.2f} s"
            )
            true_m = next(
                (
                    b.length_m * s.fault_fraction
                    for b in self.p.topology.branches
                    if b.id == s.fault_branch and b.length_m
                ),
                None,
            )
            if true_m is not None:
                s.located += f" (true: {true_m:.0f} m)"
            if loc.get("section_id") != s.fault_branch:
                s.notes.append(
                    f"FLISR located {loc.get('section_id')}, the fault was on {s.fault_branch}"
                )
        else:
            s.located = "no FLISR record received within 45 s"
        if not s.completed:
            s.restoration = (
                s.restoration + "; " if record else ""
            ) + "incomplete: healthy part not re-energised within 45 s"

    async def _improves(
        self, http: Any, healthy: list[str], before: int, timeout_s: float = 2.0
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self._healthy_energised(http, healthy) > before:
                return True
            await asyncio.sleep(0.1)
        return False

    async def _manual_restoration(
        self, http: Any, zone: set[str], border: list[Any], healthy: list[str], t_fault: float
    ) -> None:
        s = self.s
        doc = self.p.topology
        grid = (await self._status(http))["grid"]
        steps: list[str] = []
        for b in border:  # isolate: open the switches around the faulted section
            if grid["switches"].get(b.id, b.closed):
                await self._api(http, "POST", f"/api/switches/{b.id}", {"closed": False})
                steps.append(f"open {b.id}")
        for b in s.tripped:  # reclose the feeder breaker on the now healthy feeder head
            await self._api(http, "POST", f"/api/switches/{b}", {"closed": True})
            steps.append(f"close {b}")
        ties = [b for b in doc.branches if b.switchable and b.normally_open]
        for tie in ties:  # back-feed what is still dark over a normally-open tie
            if await self._healthy_energised(http, healthy) == len(healthy):
                break
            before = await self._healthy_energised(http, healthy)
            await self._api(http, "POST", f"/api/switches/{tie.id}", {"closed": True})
            if await self._improves(http, healthy, before):
                steps.append(f"close {tie.id}")
            else:
                await self._api(http, "POST", f"/api/switches/{tie.id}", {"closed": False})
        s.healthy_energised = await self._healthy_energised(http, healthy)
        s.restoration_s = time.monotonic() - t_fault
        s.completed = s.healthy_energised == len(healthy)
        s.restoration = (
            f"MANUAL operator switching by the demo script ({'; '.join(steps)}), not FLISR"
        )
        self.say(
            f"  {'; '.join(steps)} → {s.healthy_energised}/{len(healthy)} healthy nodes energised"
        )


def _print_summary(s: Summary, missing: list[str]) -> None:
    console.rule("scenario summary")
    console.print(f"grid                 {s.grid}")
    console.print(
        f"fault                {s.fault_kind} on {s.fault_branch} at {s.fault_fraction:.0%} (faulted section: {', '.join(s.faulted_zone)})"
    )
    console.print(f"protection           tripped {', '.join(s.tripped) or 'nothing'}")
    console.print(f"located              {s.located}")
    console.print(f"restoration          {s.restoration}")
    if s.restoration_s is not None:
        console.print(f"time to restore      {s.restoration_s:.2f} s from fault injection")
    console.print(f"healthy part         {s.healthy_energised}/{s.healthy_nodes} nodes energised")
    for n in s.notes:
        console.print(f"note                 {n}")
    for m in missing:
        console.print(f"missing              {m}")
    console.print(f"scenario             {'COMPLETED' if s.completed else 'NOT COMPLETED'}")


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------
def demo(
    headless: bool = typer.Option(False, "--headless", help="no interactive output; for CI"),
    duration: float | None = typer.Option(
        None,
        "--duration",
        help="stop this many seconds after start-up (with --headless: at the latest; it stops once the scenario is done)",
    ),
    port: int = typer.Option(8000, help="catalog HTTP port (0: any free port)"),
    grid: str = typer.Option(
        "turin-2feeder", "--grid", help="twin grid (gridedge twin grids lists them)"
    ),
    dashboard_port: int = typer.Option(
        8080, "--dashboard-port", help="dashboard HTTP port (0: any free port)"
    ),
    no_scenario: bool = typer.Option(
        False, "--no-scenario", help="start everything, play no scenario"
    ),
    fault_kind: str = typer.Option("1ph", "--fault-kind", help="1ph | 2ph | 2ph-g | 3ph"),
    fault_branch: str | None = typer.Option(
        None,
        "--fault-branch",
        help="line to fault in the scenario (default: one bounded by switches)",
    ),
) -> None:
    """Start the whole platform (brokers, catalog, twin, meters, IEC 61850 gateway, historian,
    dashboard), play a fault and its restoration, and stop everything on Ctrl-C."""
    from gridedge.broker.mosquitto import BrokerError, free_port, port_open
    from gridedge.config import Config

    # every HTTP call between the parts would otherwise be logged at INFO
    root = logging.getLogger()
    if root.level > logging.DEBUG:  # `gridedge -v demo` keeps everything
        root.setLevel(logging.WARNING)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if fault_kind not in KIND_NAMES:
        console.print(
            f"[red]error:[/red] --fault-kind {fault_kind!r} is not one of {', '.join(KIND_NAMES)}"
        )
        raise typer.Exit(2)
    cfg = Config()
    port = port or free_port()
    dashboard_port = dashboard_port or free_port()
    for name, p in (("catalog", port), ("dashboard", dashboard_port)):
        if port_open("127.0.0.1", p):
            flag = "--port" if name == "catalog" else "--dashboard-port"
            console.print(
                f"[red]error:[/red] {name} port {p} is in use; choose another with {flag}"
            )
            raise typer.Exit(1)
    try:
        from gridedge.twin.model import Twin

        if grid not in Twin.grid_names():
            console.print(
                f"[red]error:[/red] --grid {grid!r} is not one of {', '.join(Twin.grid_names())}"
            )
            raise typer.Exit(2)
    except ImportError:
        pass
    opts = DemoOptions(
        grid=grid,
        catalog_port=port,
        dashboard_port=dashboard_port,
        data_dir=cfg.ensure_data_dir(),
        admin_token=cfg.admin_token_value(),
    )
    try:
        code = asyncio.run(_run(opts, headless, duration, no_scenario, fault_branch, fault_kind))
    except BrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


async def _run(
    o: DemoOptions,
    headless: bool,
    duration: float | None,
    no_scenario: bool,
    fault_branch: str | None,
    fault_kind: str = "1ph",
) -> int:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    plat = Platform(o)
    started = time.monotonic()
    code = 0
    steps: list[tuple[str, Any]] = [
        ("brokers", plat.start_brokers),
        ("catalog", plat.start_catalog),
        ("twin", plat.start_twin),
        ("topology", plat.publish_topology),
        ("meters and services", plat.start_meters),
        ("IEC 61850 gateway", plat.start_gateway),
        ("historian + dashboard", plat.start_dashboard),
    ]
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=headless,
        ) as progress:
            task = progress.add_task("starting gridedge", total=len(steps))
            for name, step in steps:
                if stop.is_set():
                    raise asyncio.CancelledError
                progress.update(task, description=f"starting {name}")
                result = step()
                if asyncio.iscoroutine(result):
                    result = await result
                else:
                    result = await asyncio.sleep(0, result)
                console.print(f"[green]✓[/green] {name:<22} {result}")
                progress.advance(task)
        ready_s = _process_age_s() or (time.monotonic() - started)
        mms = plat.mms_endpoints()
        console.print()
        console.print(
            f"[bold]dashboard[/bold]      {plat.dashboard.url}   (operator token in {o.data_dir / 'admin-token'})"
        )
        console.print(f"catalog        {plat.catalog.url}  (OpenAPI {plat.catalog.url}/docs)")
        console.print(f"data broker    {plat.brokers.data.url}")
        console.print(f"mgmt broker    {plat.brokers.mgmt.url}")
        if mms:
            by_ep: dict[str, list[str]] = {}
            for dev, ep in sorted(mms.items()):
                by_ep.setdefault(ep, []).append(dev)
            for ep, devs in by_ep.items():
                console.print(
                    f"MMS endpoint   {ep}  (IEDs of {', '.join(devs)}; any IEC 61850 client)"
                )
        elif plat.gateway is not None:
            console.print(
                "MMS endpoint   none yet (the gateway places meters' IEDs as they register)"
            )
        if not flisr_available():
            console.print(
                "[yellow]FLISR[/yellow]          not available in this build: faults are shown but not located or restored automatically"
            )
        for m in plat.missing:
            console.print(f"[yellow]missing[/yellow]        {m}")
        console.print(f"ready after    {ready_s:.1f} s (from the command's start)")
        if not headless:
            console.print("Ctrl-C stops everything.")

        scenario_task: asyncio.Task[Summary] | None = None
        if not no_scenario:
            sc = Scenario(plat, console.print, fault_branch, fault_kind)
            scenario_task = asyncio.create_task(sc.run())
        t_ready = time.monotonic()
        while not stop.is_set():
            if duration is not None and time.monotonic() - t_ready >= duration:
                break
            if scenario_task is not None and scenario_task.done():
                summary = scenario_task.result()
                _print_summary(summary, plat.missing)
                code = 0 if summary.completed else 1
                scenario_task = None
                if headless:  # CI: done once the scenario is (--duration is then an upper bound)
                    break
            if not (plat.brokers.data.running() and plat.brokers.mgmt.running()):
                console.print("[red]a broker stopped unexpectedly[/red]")
                code = 1
                break
            await asyncio.sleep(0.2)
        if scenario_task is not None:
            console.print("[yellow]scenario not completed before the end of --duration[/yellow]")
            scenario_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await scenario_task
            code = 1
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        code = 1
    finally:
        with contextlib.suppress(Exception):
            await plat.stop()
    devices = len(plat.nodes)
    console.print(
        f"demo ran {time.monotonic() - started:.1f} s: {devices} device(s), twin, catalog, dashboard, 2 brokers; all stopped"
    )
    return code
