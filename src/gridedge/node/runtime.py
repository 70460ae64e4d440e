"""The node runtime: what runs on every meter, concentrator and service host.

Boot → self-configuration over REST (provision with id + secret; the token is kept on disk) →
connect to both brokers the settings name → start the assigned apps → auto-update (check-in with
ETag every ``update_period_s``, at once on a management-plane push) → heartbeats, with a retained
last-will ``presence`` message. The node survives catalog and broker outages: it retries with
backoff and jitter, keeps running on the last known settings (persisted, so a reboot without the
catalog still runs), and logs a failure once and its recovery once (the shape of Home
Assistant's update coordinator, DESIGN.md §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gridedge.broker.client import MqttClient
from gridedge.clock import Clock, default_clock
from gridedge.contracts.catalog import (
    AppAssignment,
    AppStateReport,
    AppUpdateState,
    BrokerEndpoint,
    DeviceSettings,
    Heartbeat,
    SettingsChanged,
)
from gridedge.contracts.common import utcnow
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.contracts.topics import Plane, Stream, topic
from gridedge.node.appapi import ActuatorBackend, DaqBackend, MessageHandler
from gridedge.node.appmanager import AppManager
from gridedge.node.catalog_link import Backoff, CatalogLink, CatalogRefused, CatalogUnavailable
from gridedge.node.outbox import MemoryOutbox, Outbox, SqliteOutbox, track_acks
from gridedge.node.state import NodeState

log = logging.getLogger(__name__)

PRESENCE = "presence"  # mgmt/<id>/presence, retained: {"online": true|false}; false is the will


@dataclass
class NodeOptions:
    device_id: str
    catalog_url: str
    state_dir: Path
    secret: str | None = None
    trusted_keys: list[Ed25519PublicKey] = field(default_factory=list)
    daq: DaqBackend | None = None
    actuators: ActuatorBackend | None = None
    clock: Clock | None = None
    builtin_apps: dict[str, str] = field(default_factory=dict)
    persist_outbox: bool = True
    outbox_max_messages: int = 100_000
    outbox_max_bytes: int = 64 * 1024 * 1024
    outbox_window: int = 256
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    app_backoff_base_s: float = 0.5
    http: httpx.AsyncClient | None = None
    http_gate: asyncio.Semaphore | None = None  # fleets: bound concurrent catalog calls
    check_in_session: Any = None  # an aiohttp.ClientSession: check-ins at 1/8 of httpx's CPU
    hardware: str | None = None
    firmware: str | None = None
    listen_for_pushes: bool = True  # False: rely on the periodic check-in alone
    durable_state: bool = True  # fsync state files (False for simulated fleets)
    defer_apps: bool = False  # start apps only on release_apps() (fleets boot first, then run)


class PlaneLink:
    """One plane: its MQTT connection (re-made when the settings name another broker), its
    outbox pump, and subscriptions shared by the node and its apps (one MQTT subscription per
    pattern, however many apps listen)."""

    def __init__(self, node: Node, plane: Plane, outbox: Outbox) -> None:
        self.node = node
        self.plane = plane
        self.outbox = outbox
        self.client: MqttClient | None = None
        self.endpoint: BrokerEndpoint | None = None
        self._handlers: dict[str, dict[int, MessageHandler]] = {}
        self._qos: dict[str, int] = {}
        self._next = 1
        self._token_pattern: dict[int, str] = {}
        self._connector: asyncio.Task[None] | None = None
        self.failed_logged = False

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    def _dispatcher(self, pattern: str) -> MessageHandler:
        async def dispatch(t: str, payload: bytes) -> None:
            for token, handler in list(self._handlers.get(pattern, {}).items()):
                try:
                    result = handler(t, payload)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    self.node.handler_errors += 1
                    log.exception("handler %d for %s failed", token, pattern)

        return dispatch

    def add(self, pattern: str, handler: MessageHandler, qos: int) -> int:
        token = self._next
        self._next += 1
        self._token_pattern[token] = pattern
        first = pattern not in self._handlers
        self._handlers.setdefault(pattern, {})[token] = handler
        self._qos[pattern] = max(qos, self._qos.get(pattern, 0))
        if first and self.client is not None:
            self.client.subscribe(pattern, self._dispatcher(pattern), qos=self._qos[pattern])
        return token

    def remove(self, token: int) -> None:
        pattern = self._token_pattern.pop(token, None)
        if pattern is None:
            return
        handlers = self._handlers.get(pattern, {})
        handlers.pop(token, None)
        if not handlers:
            self._handlers.pop(pattern, None)
            self._qos.pop(pattern, None)
            if self.client is not None:
                self.client.unsubscribe(pattern)

    async def use(self, endpoint: BrokerEndpoint) -> None:
        """Connect to ``endpoint`` (in the background, retrying) unless already using it."""
        if self.endpoint == endpoint and self.client is not None:
            return
        await self.close()
        self.endpoint = endpoint
        self._connector = asyncio.create_task(
            self._connect_loop(endpoint), name=f"{self.plane}-connect"
        )

    def _make_client(self, endpoint: BrokerEndpoint) -> MqttClient:
        node = self.node
        will = None
        if self.plane is Plane.MGMT:
            will = (node.presence_topic, node.presence_payload(False), 1, True)
        client = MqttClient(endpoint, client_id=f"{node.device_id}-{self.plane.value}", will=will)
        tracker = track_acks(client)

        # announce presence on every (re)connect, not only the first: after an unclean drop the
        # broker has published the retained "offline" will
        def connected(gm: Any, flags: int, rc: int, properties: object) -> None:
            client._on_connect(gm, flags, rc, properties)
            self.node.on_plane_connected(self)

        client._client.on_connect = connected
        for pattern in self._handlers:
            client.subscribe(pattern, self._dispatcher(pattern), qos=self._qos[pattern])
        self.outbox.attach(client, tracker)
        return client

    async def _connect_loop(self, endpoint: BrokerEndpoint) -> None:
        backoff = Backoff(self.node.opts.backoff_base_s, self.node.opts.backoff_max_s)
        while True:
            client = self._make_client(endpoint)
            self.client = client
            try:
                await client.connect(timeout_s=10)
            except (ConnectionError, OSError, TimeoutError) as exc:
                with contextlib.suppress(Exception):
                    await client.disconnect()
                if not self.failed_logged:
                    log.warning(
                        "%s: %s broker %s unreachable, retrying: %r (cause %r)",
                        self.node.device_id,
                        self.plane.value,
                        endpoint.url,
                        exc,
                        exc.__cause__,
                    )
                    self.failed_logged = True
                await asyncio.sleep(backoff.next_delay())
                continue
            if self.failed_logged:
                log.warning(
                    "%s: %s broker %s reachable again",
                    self.node.device_id,
                    self.plane.value,
                    endpoint.url,
                )
                self.failed_logged = False
            return  # gmqtt reconnects by itself from now on

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
            self._connector = None
        if self.client is not None:
            await self.client.disconnect()
            self.client = None


class Node:
    def __init__(self, opts: NodeOptions) -> None:
        self.opts = opts
        self.device_id = opts.device_id
        self.clock = opts.clock or default_clock()
        self.daq = opts.daq
        self.actuators = opts.actuators
        self.state = NodeState(opts.state_dir, durable=opts.durable_state)
        self.settings: DeviceSettings  # set at boot
        self._have_settings = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop
        self.link = CatalogLink(
            opts.catalog_url,
            opts.device_id,
            token=self.state.load_token(),
            http=opts.http,
            gate=opts.http_gate,
            check_in_session=opts.check_in_session,
        )
        self.planes: dict[Plane, PlaneLink] = {}
        for plane in (Plane.DATA, Plane.MGMT):
            if opts.persist_outbox:
                store: Any = SqliteOutbox(
                    self.state.outbox_dir / f"{plane.value}.sqlite",
                    max_messages=opts.outbox_max_messages,
                    max_bytes=opts.outbox_max_bytes,
                )
            else:
                store = MemoryOutbox(max_messages=opts.outbox_max_messages)
            outbox = Outbox(store, window=opts.outbox_window, on_drop=self._on_drop)
            self.planes[plane] = PlaneLink(self, plane, outbox)
        self.apps = AppManager(
            self,
            self.state.root,
            trusted_keys=opts.trusted_keys,
            report=self.report_app_state,
            download=self._download,
            event=self._app_event,
            builtin_apps=opts.builtin_apps,
            backoff_base_s=opts.app_backoff_base_s,
        )
        self.app_states: dict[str, AppStateReport] = {}
        self.handler_errors = 0
        self.catalog_ok: bool | None = None
        self.started_at = time.monotonic()
        self._poke = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._drops_unreported = 0
        self.checkins = 0
        self.settings_applied = 0
        self._apps_released = not opts.defer_apps

    # -- AppHost ------------------------------------------------------------------------------
    def enqueue(self, plane: Plane, t: str, payload: bytes, qos: int, retain: bool) -> None:
        self.planes[plane].outbox.put(t, payload, qos, retain)

    def add_subscription(
        self, plane: Plane, pattern: str, handler: MessageHandler, qos: int
    ) -> int:
        return self.planes[plane].add(pattern, handler, qos)

    def remove_subscription(self, plane: Plane, token: int) -> None:
        self.planes[plane].remove(token)

    # -- liveness -----------------------------------------------------------------------------
    @property
    def presence_topic(self) -> str:
        return topic(Plane.MGMT, self.device_id, PRESENCE)

    def presence_payload(self, online: bool) -> bytes:
        return json.dumps({"device_id": self.device_id, "online": online}).encode()

    def on_plane_connected(self, link: PlaneLink) -> None:
        if link.plane is Plane.MGMT and link.client is not None:
            link.client.publish(
                self.presence_topic, self.presence_payload(True), qos=1, retain=True
            )

    # -- reports ------------------------------------------------------------------------------
    async def report_app_state(
        self, app: str, version: str, state: AppUpdateState, reason: str = ""
    ) -> None:
        rep = AppStateReport(
            device_id=self.device_id, app=app, version=version, state=state, reason=reason[:1000]
        )
        self.app_states[app] = rep
        mgmt = self.planes[Plane.MGMT]
        mgmt.outbox.put(
            topic(Plane.MGMT, self.device_id, Stream.APP_STATE), rep.to_json(), 1, False
        )
        if not mgmt.connected and state in (AppUpdateState.REJECTED, AppUpdateState.FAILED):
            # the management broker is away: try REST so a refusal is visible in the catalog now
            with contextlib.suppress(CatalogUnavailable, CatalogRefused):
                await self.link.report_app_state(app, version, state, reason[:1000])

    def _app_event(self, app: str, detail: dict[str, Any]) -> None:
        ev = DeviceEvent(
            device_id=self.device_id,
            kind=EventKind.APP_ERROR,
            occurred_at=utcnow(),
            detail=detail,
            app=app,
        )
        self.enqueue(
            Plane.DATA, topic(Plane.DATA, self.device_id, Stream.EVENT), ev.to_json(), 1, False
        )

    def _on_drop(self, n: int, total: int) -> None:
        if self._drops_unreported == 0:
            log.warning("%s: outbox full, dropping the oldest messages (counted)", self.device_id)
        self._drops_unreported += n

    def _report_drops(self) -> None:
        # one alarm per overflow episode, sent once the broker is back: queued during the
        # outage it would itself be pushed out of the full outbox
        if not self._drops_unreported or not self.planes[Plane.DATA].connected:
            return
        n, self._drops_unreported = self._drops_unreported, 0
        ev = DeviceEvent(
            device_id=self.device_id,
            kind=EventKind.ALARM,
            occurred_at=utcnow(),
            detail={
                "reason": "outbox-overflow",
                "dropped": n,
                "dropped_total": {p.value: link.outbox.dropped for p, link in self.planes.items()},
            },
        )
        self.planes[Plane.DATA].outbox.store.put(
            topic(Plane.DATA, self.device_id, Stream.EVENT), ev.to_json(), 1, False
        )

    @property
    def dropped(self) -> int:
        return sum(link.outbox.dropped for link in self.planes.values())

    # -- packages -----------------------------------------------------------------------------
    async def _download(self, a: AppAssignment) -> bytes:
        cached = self.state.cached_package(a.name, a.version, a.sha256)
        if cached is not None:
            return cached
        data = await self.link.download(a.name, a.version)
        self.state.cache_package(a.name, a.version, data)
        return data

    # -- settings -----------------------------------------------------------------------------
    async def _fetch(self) -> DeviceSettings | None:
        """One self-configuration / check-in attempt; None when unchanged."""
        if self.link.token is None:
            return await self._provision()
        try:
            return await self.link.check_in()
        except CatalogRefused as exc:
            if exc.status in (401, 403) and self.opts.secret:
                log.warning("%s: token refused (%s); provisioning again", self.device_id, exc)
                return await self._provision()
            raise

    async def _provision(self) -> DeviceSettings:
        if not self.opts.secret:
            raise CatalogRefused(
                401, "no token on disk and no provisioning secret given (--secret)"
            )
        answer = await self.link.provision(self.opts.secret)
        self.state.save_token(answer.token)
        return answer.settings

    async def apply_settings(self, s: DeviceSettings) -> None:
        first = not self._have_settings.is_set()
        self.settings = s
        self._have_settings.set()
        self.state.save_settings(s, self.link.etag)
        await self.planes[Plane.DATA].use(s.brokers.data)
        await self.planes[Plane.MGMT].use(s.brokers.mgmt)
        if first and self.opts.listen_for_pushes:
            self.planes[Plane.MGMT].add(
                topic(Plane.MGMT, self.device_id, Stream.SETTINGS), self._on_push, 1
            )
        if self._apps_released:
            await self.apps.apply(s.apps)
        self.settings_applied += 1

    async def release_apps(self) -> None:
        """Start the apps of a node booted with ``defer_apps``."""
        if not self._apps_released:
            self._apps_released = True
            await self.apps.apply(self.settings.apps)

    def _on_push(self, t: str, payload: bytes) -> None:
        if not payload:
            return  # retained message cleared
        try:
            msg = SettingsChanged.from_json(payload)
        except ValueError:
            log.warning("%s: unreadable settings push on %s", self.device_id, t)
            return
        current = self.settings.version if self._have_settings.is_set() else 0
        if msg.version != current:
            self._poke.set()

    def _catalog_result(self, ok: bool, exc: Exception | None = None) -> None:
        if ok and self.catalog_ok is False:
            log.warning("%s: catalog reachable again", self.device_id)
        elif not ok and self.catalog_ok is not False:
            log.warning(
                "%s: catalog unreachable, running on the last known settings: %s",
                self.device_id,
                exc,
            )
        self.catalog_ok = ok

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Boot: returns once the node runs on settings (fresh from the catalog, or the last
        known ones from disk when the catalog is away)."""
        self.loop = asyncio.get_running_loop()
        for link in self.planes.values():
            link.outbox.start()
        persisted, http_etag = self.state.load_settings()
        if persisted is not None and self.link.token:
            self.link.etag = http_etag
        backoff = Backoff(self.opts.backoff_base_s, self.opts.backoff_max_s)
        while True:
            try:
                fresh = await self._fetch()
                self._catalog_result(True)
                break
            except CatalogUnavailable as exc:
                self._catalog_result(False, exc)
                if persisted is not None:
                    fresh = None
                    break
                await asyncio.sleep(backoff.next_delay())
        settings = fresh or persisted
        assert settings is not None
        await self.apply_settings(settings)
        self._tasks = [
            asyncio.create_task(self._update_loop(), name=f"{self.device_id}-update"),
            asyncio.create_task(self._heartbeat_loop(), name=f"{self.device_id}-heartbeat"),
        ]

    async def _update_loop(self) -> None:
        backoff = Backoff(self.opts.backoff_base_s, self.opts.backoff_max_s)
        delay = 0.0 if self.catalog_ok is False else self._period()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), delay)
            self._poke.clear()
            try:
                fresh = await self._fetch()
                self.checkins += 1
                self._catalog_result(True)
                backoff.reset()
            except CatalogUnavailable as exc:
                self._catalog_result(False, exc)
                delay = min(backoff.next_delay(), self.settings.update_period_s)
                continue
            except CatalogRefused as exc:
                log.error("%s: catalog refused the check-in: %s", self.device_id, exc)
                delay = self._period()
                continue
            if fresh is not None:
                await self.apply_settings(fresh)
            elif self.apps.incomplete and self._apps_released:
                await self.apps.apply(self.settings.apps)
            delay = self._period()

    def _period(self) -> float:
        """The check-in period with jitter downwards (80-100 %): never later than one period,
        and a fleet that booted together does not check in together."""
        return self.settings.update_period_s * random.uniform(0.8, 1.0)

    async def _heartbeat_loop(self) -> None:
        while True:
            period = self.settings.heartbeat_period_s
            mgmt = self.planes[Plane.MGMT]
            if mgmt.connected and mgmt.client is not None:
                hb = Heartbeat(
                    device_id=self.device_id,
                    settings_version=self.settings.version,
                    uptime_s=time.monotonic() - self.started_at,
                )
                mgmt.client.publish(topic(Plane.MGMT, self.device_id, Stream.HEARTBEAT), hb, qos=0)
            self._report_drops()
            await asyncio.sleep(min(period, 1.0) if self._drops_unreported else period)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        await self.apps.stop_all()
        mgmt = self.planes[Plane.MGMT]
        if mgmt.connected and mgmt.client is not None:
            mgmt.client.publish(
                self.presence_topic, self.presence_payload(False), qos=1, retain=True
            )
        for link in self.planes.values():
            with contextlib.suppress(Exception):
                await link.outbox.drain(timeout_s=1.0)
            await link.outbox.stop()
            await link.close()
            link.outbox.store.close()
        await self.link.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "settings_version": self.settings.version if self._have_settings.is_set() else None,
            "catalog_ok": self.catalog_ok,
            "planes": {p.value: pl.connected for p, pl in self.planes.items()},
            "apps": {n: r.version for n, r in self.apps.runners.items()},
            "outbox_pending": {p.value: pl.outbox.pending() for p, pl in self.planes.items()},
            "outbox_dropped": {p.value: pl.outbox.dropped for p, pl in self.planes.items()},
        }
