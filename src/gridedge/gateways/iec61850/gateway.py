"""The IEC 61850 gateway process: thesis meter API + platform data plane + catalog -> MMS shards.

Data flow (DESIGN §2): a reading arrives by REST (thesis meters) or as ``Telemetry`` on the data
broker (platform meters); either way it is stored, shown by the REST API and written into the
meter's logical device; REST readings are also published as ``Telemetry`` so the rest of the
platform sees thesis meters. Meters registered here are registered in the catalog (kind meter);
meters registered in the catalog are picked up by a periodic discovery. A CSWI1.Pos operate
becomes a ``Command`` on ``data/<meter>/command`` and completes only when the meter's
``CommandResult`` reports the relay's actual state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridedge.broker.client import MqttClient
from gridedge.contracts.catalog import (
    Capabilities,
    DeviceKind,
    DeviceRecord,
    DeviceRegistration,
    DeviceStatus,
    DeviceStatusChanged,
    GridLocation,
    TopologyDocument,
)
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.iec61850 import ReadingIn, ReadingOut, SmartMeterCreate, SmartMeterCreated
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.topics import Plane, Stream, parse_topic, subscription, topic
from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.mms import Reading
from gridedge.gateways.iec61850.scl import SclOptions, build_scd
from gridedge.gateways.iec61850.shards import ShardManager
from gridedge.gateways.iec61850.store import GatewayStore, MeterRow, new_token

log = logging.getLogger(__name__)


@dataclass
class GatewayOptions:
    data_dir: Path
    admin_token: str
    data_broker: str | None = None
    mgmt_broker: str | None = None
    catalog_url: str | None = None
    catalog_admin_token: str | None = None  # default: admin_token
    mms_ip: str = "127.0.0.1"
    base_port: int = 0  # 0: any free port per shard
    meters_per_shard: int = 100
    ctl_model: m.CtlModel = m.CtlModel.SBO_ENHANCED
    buffered_reports: bool = False  # a BRCB per meter: see model.rcb_instances for the cost
    sync_period_s: float = 0.5
    debounce_s: float = 0.05
    command_timeout_s: float = 10.0
    grid: str | None = None
    flush_period_s: float = 1.0


class UnknownMeter(LookupError):
    pass


@dataclass
class _Stats:
    rest_readings: int = 0
    mqtt_readings: int = 0
    ignored_telemetry: int = 0
    bad_telemetry: int = 0
    commands: int = 0
    command_timeouts: int = 0
    catalog_sync_failures: int = 0
    stored: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Gateway:
    def __init__(self, opts: GatewayOptions) -> None:
        self.opts = opts
        self.store = GatewayStore(opts.data_dir / "iec61850.db")
        self.meters: dict[str, MeterRow] = {}
        self.latest: dict[str, ReadingOut] = {}
        self.online: dict[str, bool] = {}
        self.topologies: dict[str, TopologyDocument] = {}
        self.stats = _Stats()
        self.shards = ShardManager(
            self._operate_from_mms,
            ctl_model=opts.ctl_model,
            ip=opts.mms_ip,
            base_port=opts.base_port,
            meters_per_shard=opts.meters_per_shard,
            command_timeout_s=opts.command_timeout_s,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.data: MqttClient | None = None
        self.mgmt: MqttClient | None = None
        self.catalog: Any = None
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._pending: list[tuple[m.MeterSpec, asyncio.Future[None]]] = []
        self._pending_evt = asyncio.Event()
        self._to_store: deque[dict[str, Any]] = deque()
        self._tasks: list[asyncio.Task[Any]] = []
        self._seq: dict[str, int] = {}
        self._sync_now = asyncio.Event()
        self._last_sync = 0.0
        self._registering: set[str] = set()

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> Gateway:
        self.loop = asyncio.get_running_loop()
        for row in await asyncio.to_thread(self.store.all_meters):
            self.meters[row.device_id] = row
        if self.opts.catalog_url:
            from gridedge.catalog.client import CatalogAdmin

            self.catalog = CatalogAdmin(
                self.opts.catalog_url, self.opts.catalog_admin_token or self.opts.admin_token
            )
            with contextlib.suppress(Exception):
                await self._sync_catalog()
        await asyncio.to_thread(self.shards.add, [self.spec(r) for r in self.meters.values()])
        if self.opts.data_broker:
            self.data = MqttClient(
                self.opts.data_broker, f"gridedge-iec61850-{secrets.token_hex(4)}"
            )
            self.data.subscribe(
                subscription(Plane.DATA, "+", Stream.TELEMETRY), self._on_telemetry, 1
            )
            self.data.subscribe(
                subscription(Plane.DATA, "+", Stream.COMMAND_RESULT), self._on_command_result, 1
            )
            await self.data.connect()
        if self.opts.mgmt_broker:
            self.mgmt = MqttClient(
                self.opts.mgmt_broker, f"gridedge-iec61850-m-{secrets.token_hex(4)}"
            )
            self.mgmt.subscribe(subscription(Plane.MGMT, "+", Stream.STATUS), self._on_status, 1)
            await self.mgmt.connect()
        self._tasks = [
            asyncio.create_task(self._placement_loop(), name="iec61850-placement"),
            asyncio.create_task(self._flush_loop(), name="iec61850-flush"),
        ]
        if self.catalog is not None:
            self._tasks.append(asyncio.create_task(self._sync_loop(), name="iec61850-sync"))
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._flush_now()
        for c in (self.data, self.mgmt):
            if c is not None:
                await c.disconnect()
        if self.catalog is not None:
            await self.catalog.aclose()
        await asyncio.to_thread(self.shards.stop)
        self.store.close()

    # -- meters -----------------------------------------------------------------------------------
    def spec(self, row: MeterRow) -> m.MeterSpec:
        kv = None
        topo = self.topologies.get(row.grid or "")
        if topo is not None and row.node_id:
            kv = next((n.voltage_kv for n in topo.nodes if n.id == row.node_id), None)
        return m.MeterSpec(
            device_id=row.device_id,
            phases=row.phases,
            name=row.name,
            node_id=row.node_id,
            grid=row.grid,
            voltage_kv=kv,
            buffered_reports=self.opts.buffered_reports,
        )

    async def _place(self, rows: list[MeterRow]) -> None:
        """Queue meters for the MMS side and wait until they are served (debounced batches)."""
        if not rows:
            return
        assert self.loop is not None
        futs = []
        for row in rows:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._pending.append((self.spec(row), fut))
            futs.append(fut)
        self._pending_evt.set()
        await asyncio.gather(*futs)

    async def _placement_loop(self) -> None:
        while True:
            await self._pending_evt.wait()
            await asyncio.sleep(self.opts.debounce_s)
            self._pending_evt.clear()
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.shards.add, [s for s, _ in batch])
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
            except Exception as exc:
                log.exception("starting an MMS shard failed")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)

    async def register_meter(self, body: SmartMeterCreate) -> SmartMeterCreated:
        """Thesis POST /SmartMeter: a token for the meter, a catalog device, an IED."""
        token = new_token()
        device_id = f"SM-{secrets.token_hex(6)}"
        now = datetime.now(UTC)
        extra = {k: v for k, v in (("ipAddress", body.ipAddress), ("owner", body.owner)) if v}
        row = MeterRow(
            device_id=device_id,
            name=body.name,
            location=body.location,
            zip_code=body.zipCode,
            phases=body.phases,
            source="rest",
            node_id=None,
            grid=None,
            created_at=now,
            extra=extra,
        )
        self._registering.add(device_id)
        try:
            await self._register_catalog(device_id, body, extra)
            await asyncio.to_thread(self.store.add_meter, row, token)
            self.meters[device_id] = row
        finally:
            self._registering.discard(device_id)
        await self._place([row])
        return SmartMeterCreated(
            id=token,
            deviceId=device_id,
            iedName=m.ied_name(device_id),
            name=row.name,
            location=row.location,
            zipCode=row.zip_code,
            created=now,
        )

    async def _register_catalog(
        self, device_id: str, body: SmartMeterCreate, extra: dict[str, Any]
    ) -> None:
        if self.catalog is not None:
            reg = DeviceRegistration(
                id=device_id,
                kind=DeviceKind.METER,
                hardware="thesis-meter (PZEM-004T class)",
                capabilities=Capabilities(phases=body.phases, relay=True),
                metadata={
                    "name": body.name,
                    "location": body.location,
                    "zipCode": body.zipCode,
                    "source": "iec61850-gateway",
                    **extra,
                },
            )
            await self.catalog.register(reg)

    async def delete_meter(self, device_id: str) -> None:
        row = self.meters.pop(device_id, None)
        if row is None:
            raise UnknownMeter(device_id)
        await asyncio.to_thread(self.store.remove_meter, device_id)
        self.latest.pop(device_id, None)
        await asyncio.to_thread(self.shards.retire, device_id)
        if self.catalog is not None and row.source == "rest":
            from gridedge.catalog.client import CatalogError

            with contextlib.suppress(CatalogError):
                await self.catalog.delete_device(device_id)

    async def device_for_token(self, token: str) -> str | None:
        device_id = await asyncio.to_thread(self.store.device_for_token, token)
        return device_id if device_id in self.meters else None

    # -- readings ---------------------------------------------------------------------------------
    async def post_reading(self, device_id: str, body: ReadingIn) -> ReadingOut:
        if device_id not in self.meters:
            raise UnknownMeter(device_id)
        now = datetime.now(UTC)
        out = ReadingOut(
            deviceId=device_id,
            created=now,
            voltage=body.voltage,
            current=body.current,
            power=body.power,
            powerFactor=body.powerFactor,
            frequency=body.frequency,
            source="rest",
        )
        await asyncio.to_thread(self.store.add_readings, [self._row(out)])
        self.stats.rest_readings += 1
        self.latest[device_id] = out
        reading = Reading(
            ts_ms=int(now.timestamp() * 1000),
            voltage_v=[body.voltage],
            current_a=[body.current],
            power_w=[body.power],
            power_factor=[body.powerFactor],
            frequency_hz=body.frequency,
        )
        await asyncio.wrap_future(self.shards.submit(device_id, "update", reading))
        if self.data is not None and self.data.is_connected:
            seq = self._seq[device_id] = self._seq.get(device_id, 0) + 1
            tele = Telemetry(
                device_id=device_id,
                seq=seq,
                ts=now,
                voltage_v=[body.voltage],
                current_a=[body.current],
                active_power_w=[body.power] if body.power is not None else None,
                power_factor=[body.powerFactor] if body.powerFactor is not None else None,
                frequency_hz=body.frequency,
            )
            self.data.publish(topic(Plane.DATA, device_id, Stream.TELEMETRY), tele, qos=1)
        return out

    @staticmethod
    def _row(r: ReadingOut) -> dict[str, Any]:
        return {
            "device_id": r.deviceId,
            "created": r.created,
            "voltage": r.voltage,
            "current": r.current,
            "power": r.power,
            "power_factor": r.powerFactor,
            "frequency": r.frequency,
            "source": r.source,
            "phases": r.phases,
        }

    async def readings(self, device_id: str, limit: int = 1000) -> list[ReadingOut]:
        rows = await asyncio.to_thread(self.store.readings_of, device_id, limit)
        return [
            ReadingOut(
                deviceId=r["device_id"],
                created=r["created"],
                voltage=r["voltage"],
                current=r["current"],
                power=r["power"],
                powerFactor=r["power_factor"],
                frequency=r["frequency"],
                source=r["source"],
                phases=r["phases"],
            )
            for r in rows
        ]

    def _on_telemetry(self, topic_: str, payload: bytes) -> None:
        try:
            device_id = parse_topic(topic_).device_id
            t = Telemetry.from_json(payload)
        except (ValidationError, ValueError):
            self.stats.bad_telemetry += 1
            return
        row = self.meters.get(device_id)
        if row is None or t.device_id != device_id:
            self.stats.ignored_telemetry += 1
            if self.catalog is not None:
                self._sync_now.set()  # maybe a meter the catalog just registered
            return
        if row.source == "rest":
            return  # our own republication of a REST reading
        self.stats.mqtt_readings += 1

        def mean(v: list[float] | None) -> float | None:
            return sum(v) / len(v) if v else None

        out = ReadingOut(
            deviceId=device_id,
            created=t.ts,
            voltage=mean(t.voltage_v),
            current=sum(t.current_a) if t.current_a else None,
            power=sum(t.active_power_w) if t.active_power_w else None,
            powerFactor=mean(t.power_factor),
            frequency=t.frequency_hz,
            source="mqtt",
            phases={
                "voltage_v": t.voltage_v,
                "current_a": t.current_a,
                "active_power_w": t.active_power_w,
                "power_factor": t.power_factor,
            }
            if len(t.voltage_v) > 1
            else None,
        )
        self.latest[device_id] = out
        self._to_store.append(self._row(out))
        self.shards.submit(
            device_id,
            "update",
            Reading(
                ts_ms=int(t.ts.timestamp() * 1000),
                voltage_v=t.voltage_v,
                current_a=t.current_a,
                power_w=list(t.active_power_w or []),
                reactive_var=list(t.reactive_power_var or []),
                power_factor=list(t.power_factor or []),
                frequency_hz=t.frequency_hz,
                energy_wh=t.energy_wh,
                relay_closed=t.relay_closed,
            ),
        )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.opts.flush_period_s)
            await asyncio.to_thread(self._flush_now)

    def _flush_now(self) -> None:
        batch = []
        while self._to_store:
            batch.append(self._to_store.popleft())
        if batch:
            self.stats.stored += self.store.add_readings(batch)

    def _on_status(self, topic_: str, payload: bytes) -> None:
        if not payload:
            return  # retained message cleared: the catalog deleted the device
        try:
            msg = DeviceStatusChanged.from_json(payload)
        except ValidationError:
            return
        if msg.device_id not in self.meters:
            if self.catalog is not None:
                self._sync_now.set()
            return
        online = msg.status != DeviceStatus.DISCONNECTED
        if self.online.get(msg.device_id, True) != online:
            self.online[msg.device_id] = online
            self.shards.submit(msg.device_id, "set_online", online)

    # -- controls ---------------------------------------------------------------------------------
    def _operate_from_mms(
        self, device_id: str, close: bool, origin: str
    ) -> concurrent.futures.Future[bool | None]:
        """Called on a libiec61850 server thread: hand the command to the event loop."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.command(device_id, close, origin), self.loop)

    async def command(self, device_id: str, close: bool, origin: str) -> bool | None:
        """Command the meter's relay over the data plane; the relay's state after the command,
        or None when no CommandResult came in time (or no broker is configured)."""
        if self.data is None or not self.data.is_connected:
            return None
        cmd = Command(
            device_id=device_id,
            action=CommandAction.CLOSE if close else CommandAction.OPEN,
            origin=origin,
        )
        assert self.loop is not None
        fut: asyncio.Future[CommandResult] = self.loop.create_future()
        self._waiting[cmd.command_id] = fut
        self.stats.commands += 1
        try:
            self.data.publish(topic(Plane.DATA, device_id, Stream.COMMAND), cmd, qos=1)
            result = await asyncio.wait_for(fut, self.opts.command_timeout_s)
        except TimeoutError:
            self.stats.command_timeouts += 1
            log.warning(
                "no CommandResult from %s within %.1f s", device_id, self.opts.command_timeout_s
            )
            return None
        finally:
            self._waiting.pop(cmd.command_id, None)
        return result.closed

    def _on_command_result(self, topic_: str, payload: bytes) -> None:
        try:
            res = CommandResult.from_json(payload)
        except ValidationError:
            self.stats.bad_telemetry += 1
            return
        fut = self._waiting.get(res.command_id)
        if fut is not None and not fut.done():
            fut.set_result(res)  # first: a control handler may be waiting for it
        if res.closed is not None and res.device_id in self.shards and res.target == "relay":
            # Whoever commanded it (SCADA, FLISR, an operator): XSWI1.Pos follows the relay.
            self.shards.submit(res.device_id, "set_relay", res.closed)

    # -- catalog ----------------------------------------------------------------------------------
    async def _sync_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_now.wait(), self.opts.sync_period_s)
            self._sync_now.clear()
            try:
                await self._sync_catalog()
            except Exception as exc:
                self.stats.catalog_sync_failures += 1
                if self.stats.catalog_sync_failures == 1:
                    log.warning("catalog sync failed (further failures counted): %s", exc)

    async def _sync_catalog(self) -> None:
        """Meters registered in the catalog appear here; catalog meters deleted there leave."""
        listing = await self.catalog.list_devices(kind=DeviceKind.METER)
        seen: set[str] = set()
        new_rows: list[MeterRow] = []
        grids: set[str] = set()
        for rec in listing.devices:
            seen.add(rec.id)
            if rec.location.grid:
                grids.add(rec.location.grid)
            if rec.id in self.meters or rec.id in self._registering:
                continue
            row = self._row_from_record(rec)
            new_rows.append(row)
        for grid in grids - set(self.topologies):
            with contextlib.suppress(Exception):
                self.topologies[grid] = await self.catalog.get_topology(grid)
        for row in new_rows:
            await asyncio.to_thread(self.store.add_meter, row, None)
            self.meters[row.device_id] = row
        gone = [d for d, r in self.meters.items() if r.source == "catalog" and d not in seen]
        if new_rows:
            log.info("catalog: %d new meter(s)", len(new_rows))
        for device_id in gone:
            await self.delete_meter(device_id)
        if new_rows and self.loop is not None and self._tasks:
            await self._place(new_rows)
        self._last_sync = time.monotonic()

    @staticmethod
    def _row_from_record(rec: DeviceRecord) -> MeterRow:
        loc: GridLocation = rec.location
        md = rec.metadata or {}
        return MeterRow(
            device_id=rec.id,
            name=str(md.get("name") or rec.id),
            location=str(md.get("location") or loc.area or loc.node_id or ""),
            zip_code=md.get("zipCode"),
            phases=1 if rec.capabilities.phases == 1 else 3,
            source="catalog",
            node_id=loc.node_id,
            grid=loc.grid,
            created_at=datetime.now(UTC),
            extra={},
        )

    # -- SCL --------------------------------------------------------------------------------------
    def scd(self) -> bytes:
        topo = None
        if self.opts.grid:
            topo = self.topologies.get(self.opts.grid)
        elif len(self.topologies) == 1:
            topo = next(iter(self.topologies.values()))
        specs = [self.spec(r) for r in self.meters.values() if r.device_id in self.shards]
        return build_scd(
            specs,
            self.shards.endpoints(),
            topo,
            SclOptions(cswi_ctl_model=self.opts.ctl_model),
        )
