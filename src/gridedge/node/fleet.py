"""Fleet mode: thousands of simulated meters in one process, on one event loop.

Each meter is a full :class:`~gridedge.node.runtime.Node` — its own catalog registration,
provisioning and token, its own MQTT client identities on both planes (gmqtt connections, no
thread per client: REFERENCE.md §3.2 on paho's ``select()`` limit), its own auto-update loop,
heartbeats and apps. What is shared is only what a real fleet would not notice: one HTTP
connection pool to the catalog, RAM outboxes instead of 10,000 SQLite files, no fsync of state
files. Readings come from a cheap synthetic source (a random walk around a load profile), or
from any DaqBackend the caller passes.

File descriptors: every meter holds two sockets (data + management plane). Check
``raise_fd_limit()``; with a hard limit of 20,000, 10,000 meters need two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from gridedge.broker.mosquitto import raise_fd_limit
from gridedge.catalog.client import CatalogAdmin, CatalogClient, CatalogError
from gridedge.clock import Clock, default_clock
from gridedge.contracts.catalog import AppAssignment, DeviceKind, DeviceRegistration, GridLocation
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.waveform import WaveformWindow
from gridedge.node.runtime import Node, NodeOptions
from gridedge.node.state import NodeState

log = logging.getLogger(__name__)

_RAD_PER_NS_OF_DAY = 2 * math.pi / 86400e9  # the synthetic load profile's daily cycle


class SyntheticDaq:
    """A cheap, plausible 3-phase reading: voltages around 230 V with a little unbalance, a
    current following a daily-ish sine plus a random walk, PF around 0.95. No waveforms."""

    def __init__(self, device_id: str, seed: int, clock: Clock | None = None) -> None:
        self.device_id = device_id
        self.clock = clock or default_clock()
        self._rng = random.Random(seed)
        self._base_a = self._rng.uniform(2.0, 25.0)
        self._walk = 0.0
        self._phase = self._rng.uniform(0, 2 * math.pi)
        self._template = Telemetry(
            device_id=device_id, voltage_v=[230.0] * 3, current_a=[0.0] * 3
        )  # validated once: every reading is a copy with new values

    async def read_rms(self) -> Telemetry:
        # Uniform noise from random() (C) with the standard deviations a Gaussian would have:
        # random.gauss is Python code, and 15 calls of it per reading were a tenth of the fleet's
        # CPU. One clock read serves both the profile and the timestamp. round(x * 100) / 100 is
        # the double nearest to x rounded to 2 decimals, as round(x, 2) is, at a third of the cost
        # (round with digits goes through a decimal string).
        rnd = self._rng.random
        walk = self._walk + (rnd() - 0.5) * 0.069
        walk = self._walk = -0.5 if walk < -0.5 else (0.5 if walk > 0.5 else walk)
        now_ns = self.clock.now_ns()
        level = self._base_a * (
            1 + 0.3 * math.sin(now_ns * _RAD_PER_NS_OF_DAY + self._phase) + walk
        )
        # written out, not as list comprehensions: each of those is a function call per reading
        v0 = round((230 + (rnd() - 0.5) * 5.2) * 100) / 100
        v1 = round((230 + (rnd() - 0.5) * 5.2) * 100) / 100
        v2 = round((230 + (rnd() - 0.5) * 5.2) * 100) / 100
        i0 = round(max(level * (1 + (rnd() - 0.5) * 0.173), 0.0) * 1000) / 1000
        i1 = round(max(level * (1 + (rnd() - 0.5) * 0.173), 0.0) * 1000) / 1000
        i2 = round(max(level * (1 + (rnd() - 0.5) * 0.173), 0.0) * 1000) / 1000
        s0, s1, s2 = v0 * i0, v1 * i1, v2 * i2  # apparent power, VA
        v, i = [v0, v1, v2], [i0, i1, i2]
        p = [round(s0 * 9.5) / 10, round(s1 * 9.5) / 10, round(s2 * 9.5) / 10]  # PF 0.95
        q = [round(s0 * 3.12) / 10, round(s1 * 3.12) / 10, round(s2 * 3.12) / 10]
        # A copy of a template with the new values (pydantic's model_copy): the values are built
        # right here, and validating them again — or even model_construct's per-field loop —
        # would cost more than drawing them, times 10,000 meters.
        return self._template.model_copy(
            update={
                "ts": datetime.fromtimestamp(now_ns / 1e9, tz=UTC),
                "voltage_v": v,
                "current_a": i,
                "active_power_w": p,
                "reactive_power_var": q,
                "power_factor": [0.95, 0.95, 0.95],
                "frequency_hz": round((50 + (rnd() - 0.5) * 0.035) * 1000) / 1000,
            }
        )

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        raise NotImplementedError("the synthetic fleet source has no waveforms")


def meter_ids(prefix: str, start: int, count: int) -> list[str]:
    return [f"{prefix}-M{i:05d}" for i in range(start, start + count)]


@dataclass
class FleetOptions:
    catalog_url: str
    admin_token: str
    grid: str
    meters: int
    interval_s: float = 1.0
    state_root: Path = Path("data/fleet")
    prefix: str | None = None
    start_index: int = 0
    update_period_s: float = 60.0
    concurrency: int = 16  # httpcore's pool scans every connection per request: keep it small
    register: bool = True
    apps: list[dict[str, Any]] = field(default_factory=list)  # default: telemetry at interval_s
    daq_factory: Callable[[str, int], Any] | None = None


class Fleet:
    def __init__(self, opts: FleetOptions) -> None:
        self.opts = opts
        self.prefix = opts.prefix or opts.grid
        self.ids = meter_ids(self.prefix, opts.start_index, opts.meters)
        self.nodes: dict[str, Node] = {}
        self.boot_s: float | None = None
        self.provision_s: float | None = None
        self.failed: dict[str, str] = {}
        self._http: httpx.AsyncClient | None = None
        self._check_ins: aiohttp.ClientSession | None = None
        self._gate: asyncio.Semaphore | None = None

    def _apps(self) -> list[AppAssignment]:
        apps = self.opts.apps or [
            {
                "name": "telemetry",
                "version": "1.0.0",
                "params": {"interval_s": self.opts.interval_s},
            }
        ]
        return [AppAssignment.model_validate(a) for a in apps]

    @property
    def secrets_path(self) -> Path:
        return self.opts.state_root / f"{self.prefix}-{self.opts.start_index}-secrets.json"

    async def register(self) -> dict[str, str]:
        """Register the meters (in batches); secrets are kept so a re-run can provision again."""
        secrets: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            secrets = json.loads(self.secrets_path.read_text())
        todo = [i for i in self.ids if i not in secrets]
        if not todo:
            return secrets
        async with CatalogAdmin(
            self.opts.catalog_url, self.opts.admin_token, timeout_s=120
        ) as admin:
            for k in range(0, len(todo), 2000):
                regs = [
                    DeviceRegistration(
                        id=i,
                        kind=DeviceKind.METER,
                        location=GridLocation(grid=self.opts.grid, area=self.prefix),
                        apps=self._apps(),
                        update_period_s=self.opts.update_period_s,
                    )
                    for i in todo[k : k + 2000]
                ]
                try:
                    creds = await admin.register_batch(regs)
                except CatalogError as exc:
                    if exc.status != 409:
                        raise
                    # registered by an earlier run whose secrets are lost: start those afresh
                    for r in regs:
                        with contextlib.suppress(CatalogError):
                            await admin.delete_device(r.id)
                    creds = await admin.register_batch(regs)
                for c in creds:
                    secrets[c.id] = c.provisioning_secret
        self.opts.state_root.mkdir(parents=True, exist_ok=True)
        self.secrets_path.write_text(json.dumps(secrets))
        self.secrets_path.chmod(0o600)
        return secrets

    def _node(self, device_id: str, secret: str | None, seed: int) -> Node:
        daq = (self.opts.daq_factory or (lambda d, s: SyntheticDaq(d, s)))(device_id, seed)
        return Node(
            NodeOptions(
                device_id=device_id,
                catalog_url=self.opts.catalog_url,
                state_dir=self.opts.state_root / device_id,
                secret=secret,
                daq=daq,
                persist_outbox=False,
                outbox_max_messages=3600,  # an hour of readings per meter at 1 s
                outbox_window=32,
                http=self._http,
                http_gate=self._gate,
                check_in_session=self._check_ins,
                durable_state=False,
                defer_apps=True,
                backoff_max_s=60.0,
            )
        )

    async def start(self, progress: Callable[[int], None] | None = None) -> None:
        fds = raise_fd_limit()
        if fds < 2 * len(self.ids) + 256:
            log.warning(
                "fd limit %d is low for %d meters (2 sockets each): split the fleet over processes",
                fds,
                len(self.ids),
            )
        t0 = time.perf_counter()
        secrets = await self.register() if self.opts.register else {}
        self._http = httpx.AsyncClient(
            timeout=30,
            limits=httpx.Limits(
                max_connections=self.opts.concurrency,
                max_keepalive_connections=self.opts.concurrency,
            ),
        )
        # the periodic check-ins (one per meter per update period, for ever) go over aiohttp:
        # ≈ 1/8 of httpx's CPU per request (gridedge.node.catalog_link)
        self._check_ins = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.opts.concurrency),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        sem = asyncio.Semaphore(self.opts.concurrency)
        self._gate = asyncio.Semaphore(self.opts.concurrency)

        # Phase 1, self-configuration only: every meter provisions over REST and keeps its token
        # and settings on disk, as a meter does at its first boot. Booting the nodes is then a
        # check-in answered 304 — and no meter's telemetry competes with the others' boot.
        async def provision(device_id: str) -> None:
            async with sem:
                state = NodeState(self.opts.state_root / device_id, durable=False)
                if state.load_token() and state.load_settings()[0] is not None:
                    return
                secret = secrets.get(device_id)
                if not secret:
                    return  # Node.start reports the missing secret
                client = CatalogClient(self.opts.catalog_url, device_id, client=self._http)
                for attempt in range(6):
                    try:
                        answer = await client.provision(secret)
                        break
                    except CatalogError as exc:
                        if (exc.status not in (0, 429) and exc.status < 500) or attempt == 5:
                            self.failed[device_id] = str(exc)
                            return
                        await asyncio.sleep(0.5 * 2**attempt)
                state.save_token(answer.token)
                state.save_settings(answer.settings, client.etag)
                if progress:
                    progress(1)

        await asyncio.gather(*(provision(d) for d in self.ids))
        self.provision_s = time.perf_counter() - t0

        async def boot(k: int, device_id: str) -> None:
            if device_id in self.failed:
                return
            async with sem:
                node = self._node(device_id, secrets.get(device_id), self.opts.start_index + k)
                try:
                    await node.start()
                except Exception as exc:
                    self.failed[device_id] = f"{type(exc).__name__}: {exc}"
                    return
                self.nodes[device_id] = node

        await asyncio.gather(*(boot(k, d) for k, d in enumerate(self.ids)))
        # wait for both planes of every meter to be connected
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            if all(all(p.connected for p in n.planes.values()) for n in self.nodes.values()):
                break
            await asyncio.sleep(0.2)
        self.boot_s = time.perf_counter() - t0
        # Phase 3: start every meter's apps at a random point of the first interval, so the
        # fleet's readings are spread over the second as real meters' are, not a burst.
        spread = max(self.opts.interval_s, 0.01)

        async def release(node: Node) -> None:
            await asyncio.sleep(random.uniform(0, spread))
            await node.release_apps()

        await asyncio.gather(*(release(n) for n in self.nodes.values()))
        # The fleet's thousands of long-lived objects (clients, tasks, settings) would make every
        # full garbage collection walk them all: measured 0.9 s pauses with 3,000 meters, long
        # enough for readings to miss their tick. Move them out of the collector's sight.
        gc.collect()
        gc.freeze()

    def published(self) -> int:
        total = 0
        for n in self.nodes.values():
            # app_state outlives the runner, so the count holds after stop_apps()
            total += int(n.apps.app_state.get("telemetry", {}).get("next_seq", 0))
        return total

    def stats(self) -> dict[str, Any]:
        return {
            "meters": len(self.nodes),
            "failed": len(self.failed),
            "failures": dict(list(self.failed.items())[:5]),
            "published": self.published(),
            "dropped": sum(n.dropped for n in self.nodes.values()),
            "pending": sum(
                n.planes[p].outbox.pending() for n in self.nodes.values() for p in n.planes
            ),
            "connected": sum(
                all(p.connected for p in n.planes.values()) for n in self.nodes.values()
            ),
            "boot_s": self.boot_s,
            "provision_s": self.provision_s,
            "restarts": sum(
                r.restarts for n in self.nodes.values() for r in n.apps.runners.values()
            ),
            # readings the telemetry app did not take because its event loop was late: a
            # CPU-starved fleet publishes less rather than queueing stale readings
            "skipped_ticks": sum(
                int(n.apps.app_state.get("telemetry", {}).get("skipped_ticks", 0))
                for n in self.nodes.values()
            ),
        }

    async def stop_apps(self) -> None:
        """Stop producing readings (so a counter can settle) but keep the connections."""
        await asyncio.gather(*(n.apps.stop_all() for n in self.nodes.values()))

    async def drain(self, timeout_s: float = 30.0) -> bool:
        from gridedge.contracts.topics import Plane

        results = await asyncio.gather(
            *(n.planes[Plane.DATA].outbox.drain(timeout_s) for n in self.nodes.values())
        )
        return all(results)

    async def stop(self) -> None:
        sem = asyncio.Semaphore(500)

        async def one(n: Node) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await n.stop()

        await asyncio.gather(*(one(n) for n in self.nodes.values()))
        if self._http is not None:
            await self._http.aclose()
        if self._check_ins is not None:
            await self._check_ins.close()
