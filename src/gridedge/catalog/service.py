"""The Device Catalog's behaviour, independent of HTTP.

All devices live in memory (10,000 devices are a few tens of MB) and every change is written
through to the store before it is acknowledged, so a restart loses nothing. The hot path — a
device's periodic check-in — touches memory only: the etag comparison decides between a 304 and
the pre-rendered settings document, and last-seen time-stamps go to the database in batches once
a second (seed 001 §IV-A: "the DeC stores the time-stamp of such a request").

A settings document's etag is a hash of its content. Whenever anything that feeds it changes (the
operator's settings, the topology, an app release, the brokers), the documents are rebuilt and
only the devices whose etag changed get a new version and a push — "exactly the affected
devices" (seed 001 §IV-B) falls out of that rule instead of being guessed per kind of change.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from gridedge.catalog import security
from gridedge.catalog.entry import DeviceEntry, utc_from_epoch
from gridedge.catalog.models import TopologyRow
from gridedge.catalog.portion import TopologyIndex
from gridedge.catalog.pushes import MgmtPublisher
from gridedge.catalog.store import Store
from gridedge.contracts.catalog import (
    AppAssignment,
    AppPackageInfo,
    AppStateReport,
    BrokerPlanes,
    DeviceKind,
    DeviceList,
    DeviceRecord,
    DeviceRegistration,
    DeviceSettings,
    DeviceStatus,
    DeviceStatusChanged,
    GridPortion,
    Heartbeat,
    ProvisioningCredentials,
    ProvisionRequest,
    SettingsChanged,
    SettingsUpdate,
    TopicPlan,
    TopicSpec,
    TopologyChanged,
    TopologyDocument,
    TopologyStored,
)
from gridedge.contracts.topics import CATALOG_ID, Plane, Stream, parse_topic, subscription, topic

log = logging.getLogger(__name__)

Reason = Literal["operator", "topology", "app-release", "provisioned"]

# Bump when the shape of the settings document (e.g. the topic plan) changes, so every device
# gets a new version of a document whose content changed without any input changing.
DOCUMENT_LAYOUT = "settings-layout-1"


class CatalogProblem(Exception):
    """A request the catalog refuses; rendered as a Problem body by the API layer."""

    def __init__(
        self, status: int, title: str, detail: str = "", errors: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []


def _freeze_heap() -> None:
    """Move the long-lived registry out of the garbage collector's sight: a full collection
    would otherwise walk every device's objects and pause check-ins for tens of milliseconds."""
    gc.collect()
    gc.freeze()


@dataclass
class CatalogOptions:
    db_url: str
    brokers: BrokerPlanes
    public_url: str
    admin_token: str
    sweep_interval_s: float = 0.25
    flush_interval_s: float = 1.0
    # gc.freeze() is process-wide: right for the catalog's own process, not for a test process
    freeze_heap: bool = True


class CatalogService:
    def __init__(self, options: CatalogOptions) -> None:
        self.options = options
        self.brokers = options.brokers
        self.public_url = options.public_url.rstrip("/")
        self._admin_hash = security.digest(options.admin_token)
        self._brokers_digest = hashlib.sha256(
            options.brokers.model_dump_json().encode() + self.public_url.encode()
        ).hexdigest()
        self.devices: dict[str, DeviceEntry] = {}
        self.by_token: dict[str, str] = {}  # token hash -> device id
        self.topologies: dict[str, TopologyIndex] = {}
        self.app_infos: dict[tuple[str, str], AppPackageInfo] = {}
        self.app_has_data: set[tuple[str, str]] = set()
        self.app_states: dict[str, dict[str, AppStateReport]] = {}
        self.store: Store | None = None
        self.publisher = MgmtPublisher(options.brokers.mgmt)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-db")
        self._dirty: set[str] = set()
        self._writes: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._writer_busy = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.check_ins = 0
        self.loop_lag_max_s = 0.0
        self.lag_history: deque[tuple[int, float]] = deque(maxlen=600)  # (second, max lag)
        self.disconnections = 0
        self.reconnections = 0
        self._recovered: list[str] = []
        self.stalls = 0  # event-loop stalls longer than 0.25 s
        self._beat = time.monotonic()
        self.not_modified = 0
        self.pushes = 0

    # -- life cycle ---------------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def _persist(self, changes: list[dict[str, Any]]) -> None:
        """Write device rows, grouping concurrent callers into one transaction (group commit):
        1,000 devices provisioning at once cost a few commits, not 1,000."""
        if not changes:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((changes, fut))
        if not self._writer_busy:
            self._writer_busy = True
            self._writer_task = asyncio.create_task(self._write_batches())
        await fut

    async def _write_batches(self) -> None:
        assert self.store is not None
        try:
            while self._writes:
                batch, self._writes = self._writes, []
                try:
                    await self._run(self.store.update_devices, [c for ch, _ in batch for c in ch])
                except Exception as exc:
                    for _, f in batch:
                        f.set_exception(exc)
                else:
                    for _, f in batch:
                        f.set_result(None)
        finally:
            self._writer_busy = False

    async def start(self) -> None:
        self.store = await self._run(Store, self.options.db_url)
        rows = await self._run(self.store.load_devices)
        for r in rows:
            e = DeviceEntry.from_row(r)
            self.devices[e.id] = e
            if e.token_hash:
                self.by_token[e.token_hash] = e.id
        for t in await self._run(self.store.latest_topologies):
            self.topologies[t.grid] = TopologyIndex.build(
                TopologyDocument.model_validate(t.document)
            )
        for name, version, info, has in await self._run(self.store.load_app_infos):
            self.app_infos[(name, version)] = AppPackageInfo.model_validate(info)
            if has:
                self.app_has_data.add((name, version))
        for s in await self._run(self.store.load_app_states):
            rep = AppStateReport.model_validate(s.report)
            self.app_states.setdefault(s.device_id, {})[s.app] = rep
        self.publisher.subscribe(
            subscription(Plane.MGMT, "+", Stream.HEARTBEAT), self._on_heartbeat
        )
        self.publisher.subscribe(
            subscription(Plane.MGMT, "+", Stream.APP_STATE), self._on_app_state, qos=1
        )
        await self.publisher.start()
        # Brokers or the public URL may differ from the last run: rebuild every document.
        await self._refresh(list(self.devices.values()), "operator")
        # Re-announce the current state (retained) in case the broker lost it.
        for e in self.devices.values():
            if e.token_hash:
                self._publish_status(e)
        self._tasks = [
            asyncio.create_task(self._sweeper(), name="catalog-liveness"),
            asyncio.create_task(self._flusher(), name="catalog-last-seen"),
            asyncio.create_task(self._lag_monitor(), name="catalog-loop-lag"),
        ]
        if os.environ.get("GRIDEDGE_DEBUG_STALLS"):
            threading.Thread(
                target=self._stall_watchdog, args=(threading.get_ident(),), daemon=True
            ).start()
        if self.options.freeze_heap:
            _freeze_heap()
        log.info("catalog started: %d devices, %d grids", len(self.devices), len(self.topologies))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self._flush_dirty()
        await self.publisher.stop()
        if self.store:
            await self._run(self.store.close)
        self._db.shutdown(wait=True)

    # -- auth ---------------------------------------------------------------------------------
    def is_admin(self, token: str) -> bool:
        return security.matches(token, self._admin_hash)

    def device_for_token(self, token: str) -> str | None:
        return self.by_token.get(security.digest(token))

    # -- registry -----------------------------------------------------------------------------
    def entry(self, device_id: str) -> DeviceEntry:
        e = self.devices.get(device_id)
        if e is None:
            raise CatalogProblem(404, "Unknown device", f"device {device_id!r} is not registered")
        return e

    async def register(self, regs: list[DeviceRegistration]) -> list[ProvisioningCredentials]:
        async with self._lock:
            seen: set[str] = set()
            dup_errors: list[tuple[str, str]] = []
            for i, r in enumerate(regs):
                if r.id in self.devices or r.id in seen:
                    dup_errors.append((f"devices.{i}.id", f"device id {r.id!r} already exists"))
                seen.add(r.id)
            if dup_errors:
                raise CatalogProblem(
                    409,
                    "Duplicate device id",
                    f"{len(dup_errors)} device id(s) already registered",
                    dup_errors,
                )
            now = time.time()
            creds: list[ProvisioningCredentials] = []
            entries: list[DeviceEntry] = []
            for r in regs:
                secret = security.new_secret()
                e = DeviceEntry(
                    id=r.id,
                    kind=r.kind,
                    hardware=r.hardware,
                    firmware=r.firmware,
                    location=r.location,
                    capabilities=r.capabilities,
                    metadata=r.metadata,
                    endpoints=r.endpoints,
                    apps=r.apps,
                    extra={},
                    update_period_s=r.update_period_s,
                    liveness_timeout_s=r.liveness_timeout_s,
                    secret_hash=security.digest(secret),
                    created_at=now,
                    status_since=now,
                )
                self._rebuild(e, now)
                e.settings_version = 1
                entries.append(e)
                creds.append(ProvisioningCredentials(id=r.id, provisioning_secret=secret))
            assert self.store is not None
            await self._run(self.store.insert_devices, [e.to_row() for e in entries])
            for e in entries:
                self.devices[e.id] = e
            if len(entries) >= 500 and self.options.freeze_heap:
                _freeze_heap()
            return creds

    async def delete(self, device_id: str) -> None:
        async with self._lock:
            e = self.entry(device_id)
            assert self.store is not None
            await self._run(self.store.delete_device, device_id)
            self.devices.pop(device_id, None)
            self.app_states.pop(device_id, None)
            self._dirty.discard(device_id)
            if e.token_hash:
                self.by_token.pop(e.token_hash, None)
            # clear the retained messages so nobody keeps seeing a removed device
            self.publisher.publish(topic(Plane.MGMT, device_id, Stream.STATUS), b"", 1, True)
            self.publisher.publish(topic(Plane.MGMT, device_id, Stream.SETTINGS), b"", 1, True)

    def record(self, e: DeviceEntry) -> DeviceRecord:
        return DeviceRecord(
            id=e.id,
            kind=e.kind,
            hardware=e.hardware,
            firmware=e.firmware,
            location=e.location,
            capabilities=e.capabilities,
            metadata=e.metadata,
            endpoints=e.endpoints,
            status=e.status,
            settings_version=e.settings_version,
            update_period_s=e.update_period_s,
            liveness_timeout_s=e.timeout_s,
            last_seen=utc_from_epoch(e.last_seen),
            status_since=utc_from_epoch(e.status_since),
            provisioned_at=utc_from_epoch(e.provisioned_at),
            apps=e.apps,
            app_states=list(self.app_states.get(e.id, {}).values()),
        )

    def list_devices(
        self,
        kind: DeviceKind | None = None,
        area: str | None = None,
        grid: str | None = None,
        status: DeviceStatus | None = None,
        node: str | None = None,
    ) -> DeviceList:
        out = []
        for e in self.devices.values():
            if kind is not None and e.kind != kind:
                continue
            if area is not None and e.location.area != area:
                continue
            if grid is not None and self._grid_of(e) != grid:
                continue
            if status is not None and e.status != status:
                continue
            if node is not None and self._node_of(e, self._grid_of(e)) != node:
                continue
            out.append(self.record(e))
        out.sort(key=lambda r: r.id)
        return DeviceList(devices=out, total=len(out))

    async def patch_settings(self, device_id: str, upd: SettingsUpdate) -> DeviceSettings:
        async with self._lock:
            e = self.entry(device_id)
            fields = upd.model_fields_set
            if "apps" in fields and upd.apps is not None:
                e.apps = upd.apps
            if "update_period_s" in fields and upd.update_period_s is not None:
                e.update_period_s = upd.update_period_s
            if "liveness_timeout_s" in fields:
                e.liveness_timeout_s = upd.liveness_timeout_s
            if "location" in fields and upd.location is not None:
                e.location = upd.location
            if "metadata" in fields and upd.metadata is not None:
                e.metadata = upd.metadata
            if "extra" in fields and upd.extra is not None:
                e.extra = upd.extra
            await self._refresh([e], "operator", force_persist=True)
            return self.settings(e)

    # -- settings documents -------------------------------------------------------------------
    def _grid_of(self, e: DeviceEntry) -> str | None:
        if e.location.grid:
            return e.location.grid
        for name, idx in self.topologies.items():
            if e.id in idx.placements:
                return name
        if e.location.node_id:
            for name in sorted(self.topologies):
                if self.topologies[name].has_node(e.location.node_id):
                    return name
        return None

    def _node_of(self, e: DeviceEntry, grid: str | None) -> str | None:
        idx = self.topologies.get(grid) if grid else None
        if idx is not None and e.id in idx.placements:
            return idx.placements[e.id]
        return e.location.node_id

    def _portion(self, e: DeviceEntry) -> GridPortion | None:
        grid = self._grid_of(e)
        idx = self.topologies.get(grid) if grid else None
        node = self._node_of(e, grid)
        if idx is None or node is None or not idx.has_node(node):
            return None
        new = idx.portion(node)
        if e.portion is not None and e.portion.digest == new.digest:
            return e.portion  # unchanged: keep the version it was first seen in
        ref = e.stored_portion
        if (
            ref
            and ref.get("digest") == new.digest
            and ref.get("topology_version") != new.topology_version
        ):
            return new.model_copy(update={"topology_version": ref["topology_version"]})
        return new

    def _portion_digest(self, e: DeviceEntry) -> str | None:
        p = self._portion(e)
        return p.digest if p else None

    def _topics(self, device_id: str) -> TopicPlan:
        def spec(plane: Plane, stream: Stream, qos: int, retain: bool, what: str) -> TopicSpec:
            return TopicSpec(
                topic=topic(plane, device_id, stream), qos=qos, retain=retain, description=what
            )  # type: ignore[arg-type]

        return TopicPlan(
            publish=[
                spec(Plane.DATA, Stream.TELEMETRY, 1, False, "periodic readings (Telemetry)"),
                spec(Plane.DATA, Stream.EVENT, 1, False, "outage, restore, alarms (DeviceEvent)"),
                spec(Plane.DATA, Stream.FAULT, 1, False, "fault reports of fault-location apps"),
                spec(Plane.DATA, Stream.COMMAND_RESULT, 1, False, "answers to commands"),
                spec(Plane.MGMT, Stream.HEARTBEAT, 0, False, "liveness between check-ins"),
                spec(Plane.MGMT, Stream.APP_STATE, 1, False, "app update states"),
            ],
            subscribe=[
                spec(
                    Plane.MGMT, Stream.SETTINGS, 1, True, "new settings version (SettingsChanged)"
                ),
                spec(Plane.DATA, Stream.COMMAND, 1, False, "switch/relay commands"),
            ],
        )

    def _resolved_apps(self, e: DeviceEntry) -> list[AppAssignment]:
        out = []
        for a in e.apps:
            key = (a.name, a.version)
            info = self.app_infos.get(key)
            if info is not None and key in self.app_has_data:
                a = a.model_copy(
                    update={
                        "package_url": f"{self.public_url}/v1/apps/{a.name}/{a.version}/package",
                        "sha256": info.sha256,
                        "signature": info.signature,
                    }
                )
            out.append(a)
        return out

    def _content(self, e: DeviceEntry) -> dict[str, Any]:
        """Everything of the settings document except version, etag and issue time."""
        return {
            "device_id": e.id,
            "kind": e.kind,
            "brokers": self.brokers,
            "topics": self._topics(e.id),
            "apps": self._resolved_apps(e),
            "grid": e.portion,
            "location": e.location,
            "update_period_s": e.update_period_s,
            "liveness_timeout_s": e.timeout_s,
            "heartbeat_period_s": e.timeout_s / 3.0,
            "extra": e.extra,
        }

    def _rebuild(self, e: DeviceEntry, now: float) -> bool:
        """Recompute the document's etag; True when its content changed (new version).

        The etag hashes the parts' own digests (brokers once, the portion's cached digest, the
        small per-device fields) instead of serialising the whole document: 10,000 devices are
        re-checked after a topology change in a fraction of a second."""
        e.portion = self._portion(e)
        apps = [a.model_dump(mode="json") for a in self._resolved_apps(e)]
        small = json.dumps(
            [
                e.kind.value,
                apps,
                e.location.model_dump(mode="json"),
                e.update_period_s,
                e.timeout_s,
                e.extra,
            ],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        parts = (
            DOCUMENT_LAYOUT,
            self._brokers_digest,
            e.id,
            e.portion.digest if e.portion else "-",
            str(e.portion.topology_version) if e.portion else "-",
            small,
        )
        etag = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
        if etag == e.settings_etag:
            return False
        e.settings_etag = etag
        e.settings_version += 1
        e.settings_issued_at = now
        e.rendered = None
        return True

    def settings(self, e: DeviceEntry) -> DeviceSettings:
        # every part is a validated model already: construct, do not validate again
        return DeviceSettings.model_construct(
            version=max(e.settings_version, 1),
            etag=e.settings_etag,
            issued_at=utc_from_epoch(e.settings_issued_at),
            **self._content(e),
        )

    def rendered(self, e: DeviceEntry) -> bytes:
        if e.rendered is None:
            e.rendered = self.settings(e).to_json()
        return e.rendered

    async def _refresh(
        self, entries: list[DeviceEntry], reason: Reason, force_persist: bool = False
    ) -> list[DeviceEntry]:
        """Rebuild documents, persist and push those that changed; return the changed ones."""
        now = time.time()
        changed = [e for e in entries if self._rebuild(e, now)]
        if force_persist:
            await self._persist([e.columns() for e in entries])
        elif changed:
            await self._persist([e.settings_columns() for e in changed])
        for e in changed:
            self._push_settings(e, reason)
        return changed

    def _push_settings(self, e: DeviceEntry, reason: Reason) -> None:
        self.pushes += 1
        self.publisher.publish(
            topic(Plane.MGMT, e.id, Stream.SETTINGS),
            SettingsChanged(
                device_id=e.id, version=e.settings_version, etag=e.settings_etag, reason=reason
            ),
            qos=1,
            retain=True,
        )

    # -- topology -----------------------------------------------------------------------------
    async def put_topology(self, doc: TopologyDocument) -> TopologyStored:
        node_ids = {n.id for n in doc.nodes}
        errors: list[tuple[str, str]] = []
        for i, b in enumerate(doc.branches):
            for end in ("from_node", "to_node"):
                if getattr(b, end) not in node_ids:
                    errors.append(
                        (f"branches.{i}.{end}", f"node {getattr(b, end)!r} is not in nodes")
                    )
        for i, p in enumerate(doc.placements):
            if p.node_id not in node_ids:
                errors.append((f"placements.{i}.node_id", f"node {p.node_id!r} is not in nodes"))
        if len(node_ids) != len(doc.nodes):
            errors.append(("nodes", "node ids must be unique"))
        if errors:
            raise CatalogProblem(
                422, "Invalid topology", f"{len(errors)} problem(s) in the topology", errors
            )
        async with self._lock:
            prev = self.topologies.get(doc.grid)
            doc = doc.model_copy(update={"version": (prev.doc.version if prev else 0) + 1})
            row = TopologyRow(
                grid=doc.grid,
                version=doc.version,
                document=doc.model_dump(mode="json"),
                stored_at=time.time(),
            )
            assert self.store is not None
            await self._run(self.store.insert_topology, row)
            self.topologies[doc.grid] = TopologyIndex.build(doc)
            # only a device whose portion digest changed can have a new document
            candidates = [
                e
                for e in self.devices.values()
                if (self._grid_of(e) == doc.grid or (e.portion and e.portion.grid == doc.grid))
                and self._portion_digest(e) != (e.portion.digest if e.portion else None)
            ]
            changed = await self._refresh(candidates, "topology")
            self.publisher.publish(
                topic(Plane.MGMT, CATALOG_ID, Stream.TOPOLOGY),
                TopologyChanged(grid=doc.grid, version=doc.version, affected_devices=len(changed)),
                qos=1,
                retain=True,
            )
            log.info(
                "topology %s v%d stored: %d device(s) affected", doc.grid, doc.version, len(changed)
            )
            return TopologyStored(grid=doc.grid, version=doc.version, affected_devices=len(changed))

    def get_topology(self, grid: str) -> TopologyDocument:
        idx = self.topologies.get(grid)
        if idx is None:
            raise CatalogProblem(404, "Unknown grid", f"no topology stored for grid {grid!r}")
        return idx.doc

    # -- apps ---------------------------------------------------------------------------------
    async def put_app_info(self, info: AppPackageInfo) -> AppPackageInfo:
        async with self._lock:
            assert self.store is not None
            key = (info.name, info.version)
            await self._run(
                self.store.upsert_app_info,
                info.name,
                info.version,
                info.model_dump(mode="json"),
                time.time(),
            )
            self.app_infos[key] = info
            self.app_has_data.discard(key)
            return info

    async def put_app_data(self, name: str, version: str, data: bytes) -> AppPackageInfo:
        async with self._lock:
            info = self.app_infos.get((name, version))
            if info is None:
                raise CatalogProblem(
                    404,
                    "Unknown app",
                    f"register {name} {version} (POST /v1/apps) before uploading",
                )
            if len(data) != info.size:
                raise CatalogProblem(
                    422,
                    "Package does not match",
                    errors=[("body", f"size {len(data)} != {info.size}")],
                )
            if hashlib.sha256(data).hexdigest() != info.sha256:
                raise CatalogProblem(
                    422,
                    "Package does not match",
                    errors=[("body", "sha256 differs from the registered one")],
                )
            assert self.store is not None
            await self._run(self.store.store_app_data, name, version, data)
            self.app_has_data.add((name, version))
            users = [
                e
                for e in self.devices.values()
                if any(a.name == name and a.version == version for a in e.apps)
            ]
            await self._refresh(users, "app-release")
            return info

    async def app_data(self, name: str, version: str) -> bytes:
        if (name, version) not in self.app_has_data:
            raise CatalogProblem(404, "Unknown package", f"no package for {name} {version}")
        assert self.store is not None
        data = await self._run(self.store.app_data, name, version)
        if data is None:
            raise CatalogProblem(404, "Unknown package", f"no package for {name} {version}")
        return data

    def list_apps(self) -> list[AppPackageInfo]:
        return [self.app_infos[k] for k in sorted(self.app_infos)]

    # -- device side --------------------------------------------------------------------------
    async def provision(self, device_id: str, req: ProvisionRequest) -> tuple[str, DeviceEntry]:
        """Self-configuration: a new token (the previous one is revoked) for the device, whose
        settings document the caller sends along (``rendered``/``settings``)."""
        e = self.entry(device_id)
        if not security.matches(req.provisioning_secret, e.secret_hash):
            raise CatalogProblem(
                401, "Wrong provisioning secret", "the provisioning secret does not match"
            )
        token = security.new_token()
        old = e.token_hash
        e.token_hash = security.digest(token)
        now = time.time()
        e.provisioned_at = now
        if req.hardware:
            e.hardware = req.hardware
        if req.firmware:
            e.firmware = req.firmware
        e.last_seen = now
        was = e.status
        e.status = DeviceStatus.CONNECTED
        if was != DeviceStatus.CONNECTED:
            e.status_since = now
        self._rebuild(e, now)
        if old:
            self.by_token.pop(old, None)  # re-provisioning revokes the previous token
        try:
            cols = e.settings_columns()
            cols.update(
                token_hash=e.token_hash,
                provisioned_at=e.provisioned_at,
                hardware=e.hardware,
                firmware=e.firmware,
                last_seen=e.last_seen,
                status=e.status.value,
                status_since=e.status_since,
            )
            await self._persist([cols])  # durable before the token is handed out
        except Exception:
            e.token_hash = old
            if old:
                self.by_token[old] = e.id
            raise
        self.by_token[e.token_hash] = e.id
        self._dirty.discard(e.id)
        if was != DeviceStatus.CONNECTED:
            log.info("%s provisioned and connected", e.id)
            self._publish_status(e)
        return token, e

    def provision_response(self, token: str, e: DeviceEntry) -> bytes:
        """The ProvisionResponse body, built around the cached settings JSON."""
        return b'{"token":' + json.dumps(token).encode() + b',"settings":' + self.rendered(e) + b"}"

    def touch(self, e: DeviceEntry) -> None:
        """Any sign of life: refresh last-seen, and bring a silent device back."""
        now = time.time()
        e.last_seen = now
        self._dirty.add(e.id)
        if e.status != DeviceStatus.CONNECTED and e.token_hash:
            e.status = DeviceStatus.CONNECTED
            e.status_since = now
            self.reconnections += 1
            self._recovered.append(e.id)  # logged by the sweeper, in one line when many
            self._publish_status(e)

    def check_in(self, e: DeviceEntry, if_none_match: str | None) -> bytes | None:
        """None when the device already has the current settings (the 304 answer)."""
        self.touch(e)
        self.check_ins += 1
        if if_none_match is not None and (
            if_none_match == e.quoted_etag or if_none_match.strip('W/"') == e.settings_etag
        ):
            self.not_modified += 1
            return None
        return self.rendered(e)

    async def app_state(self, e: DeviceEntry, report: AppStateReport) -> None:
        if report.device_id != e.id:
            raise CatalogProblem(
                422,
                "Report of another device",
                errors=[("device_id", f"must be {e.id!r}, the device in the URL")],
            )
        self.touch(e)
        self.app_states.setdefault(e.id, {})[report.app] = report
        assert self.store is not None
        await self._run(
            self.store.upsert_app_state,
            e.id,
            report.app,
            report.model_dump(mode="json", by_alias=True),
        )

    def _on_heartbeat(self, t: str, payload: bytes) -> None:
        e = self._mqtt_sender(t)
        if e is None:
            return
        try:
            hb = Heartbeat.from_json(payload)
        except ValueError:
            return
        if hb.device_id == e.id:
            self.touch(e)

    async def _on_app_state(self, t: str, payload: bytes) -> None:
        e = self._mqtt_sender(t)
        if e is None:
            return
        try:
            rep = AppStateReport.from_json(payload)
        except ValueError:
            return
        if rep.device_id == e.id:
            await self.app_state(e, rep)

    def _mqtt_sender(self, t: str) -> DeviceEntry | None:
        try:
            device_id = parse_topic(t).device_id
        except ValueError:
            return None
        e = self.devices.get(device_id)
        # only provisioned devices count: an unprovisioned id on the broker proves nothing
        return e if e is not None and e.token_hash else None

    # -- liveness -----------------------------------------------------------------------------
    def _publish_status(self, e: DeviceEntry) -> None:
        self.publisher.publish(
            topic(Plane.MGMT, e.id, Stream.STATUS),
            DeviceStatusChanged(
                device_id=e.id,
                status=e.status,
                last_seen=utc_from_epoch(e.last_seen),
                timeout_s=e.timeout_s,
            ),
            qos=1,
            retain=True,
        )

    def sweep(self, now: float | None = None) -> list[DeviceEntry]:
        """Mark silent devices disconnected (seed 001 §IV-A); returns the ones that changed.
        Each transition is logged once; a wave of them (a feeder losing supply, a network cut)
        is logged as one line rather than thousands."""
        now = time.time() if now is None else now
        lost = []
        for e in self.devices.values():
            if (
                e.status == DeviceStatus.CONNECTED
                and e.last_seen is not None
                and now - e.last_seen > e.timeout_s
            ):
                e.status = DeviceStatus.DISCONNECTED
                e.status_since = now
                self._dirty.add(e.id)
                self._publish_status(e)
                lost.append(e)
        self.disconnections += len(lost)
        if len(lost) <= 5:
            for e in lost:
                log.warning(
                    "%s disconnected: silent for %.2f s (timeout %.2f s)",
                    e.id,
                    now - (e.last_seen or now),
                    e.timeout_s,
                )
        else:
            log.warning(
                "%d devices disconnected (silent longer than their timeout): %s, …",
                len(lost),
                ", ".join(e.id for e in lost[:5]),
            )
        back, self._recovered = self._recovered, []
        if len(back) <= 5:
            for device_id in back:
                log.info("%s connected again", device_id)
        else:
            log.info("%d devices connected again: %s, …", len(back), ", ".join(back[:5]))
        return lost

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.options.sweep_interval_s)
            try:
                self.sweep()
            except Exception:
                log.exception("liveness sweep failed")

    async def _flush_dirty(self) -> None:
        if not self._dirty or self.store is None:
            return
        ids, self._dirty = self._dirty, set()
        changes = []
        for i in ids:
            e = self.devices.get(i)
            if e is not None:
                changes.append(
                    {
                        "id": e.id,
                        "last_seen": e.last_seen,
                        "status": e.status.value,
                        "status_since": e.status_since,
                    }
                )
        try:
            await self._run(self.store.update_devices, changes)
        except Exception:
            log.exception("could not store %d last-seen time-stamps; retrying", len(changes))
            self._dirty |= ids

    async def _lag_monitor(self) -> None:
        """How late the event loop runs a 50 ms timer: the delay every request waits behind."""
        while True:
            t = time.monotonic()
            self._beat = t
            await asyncio.sleep(0.05)
            lag = time.monotonic() - t - 0.05
            self.loop_lag_max_s = max(self.loop_lag_max_s, lag)
            sec = int(time.time())
            if self.lag_history and self.lag_history[-1][0] == sec:
                if lag > self.lag_history[-1][1]:
                    self.lag_history[-1] = (sec, lag)
            else:
                self.lag_history.append((sec, lag))
            if lag > 0.25:
                self.stalls += 1

    def _stall_watchdog(self, loop_thread: int) -> None:
        """Debugging aid (GRIDEDGE_DEBUG_STALLS=1): log where the loop is stuck."""
        last = 0.0
        while True:
            time.sleep(0.1)
            lag = time.monotonic() - self._beat
            if lag > 0.3 and time.monotonic() - last > 1.0:
                last = time.monotonic()
                frame = sys._current_frames().get(loop_thread)
                stack = "".join(traceback.format_stack(frame)[-10:]) if frame else "?"
                log.warning("event loop stalled %.2f s at:\n%s", lag, stack)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.options.flush_interval_s)
            await self._flush_dirty()
