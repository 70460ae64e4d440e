"""Network reconfiguration service (cloud app; seed 001 §III-C, §IV-B, seed 003 §III-C).

On a :class:`~gridedge.contracts.flisr.FaultLocation` (``data/+/fault-location``) it plans the
isolation and restoration on its own copy of the grid model (:mod:`gridedge.flisr.restoration`,
MILP checked by power flow), sends one :class:`~gridedge.contracts.commands.Command` per switch
over MQTT (isolating opens together, then the closes one by one: breaker, then ties), waits for
each :class:`~gridedge.contracts.commands.CommandResult`, hands the new topology to the catalog
(which pushes new settings to every affected device) and publishes a
:class:`~gridedge.contracts.flisr.FlisrRecord` on ``data/flisr/record`` (retained) with every
step time-stamped.

Parameters: ``grid`` (required), ``switch_devices`` ({switch id: device id}) and/or
``switch_device`` (one device operating every other switch), ``command_timeout_s`` (10),
``method`` ("milp" | "exhaustive"), ``holdoff_s`` (5), ``catalog_url`` (default:
GRIDEDGE_CATALOG_URL); the catalog admin token is read from GRIDEDGE_ADMIN_TOKEN (never from
parameters, which the catalog shows to operators).

A run's own switching must not start another run. A fault location is ignored — logged, kept in
``ignored`` and ``ctx.state["ignored"]``, and published as an ``alarm`` event of the ``flisr``
device with the reason, never silently — when

- a run is in progress for a report of the same meter (same feeder head), or for any meter's
  report located before this one's inception: the report is that run's consequence (the breaker
  reclosing, a tie closing and the neighbour feeder picking up load), not a new fault;
- it arrives within ``holdoff_s`` after a run finished (any meter: a tie closing changes the
  neighbour feeder's current too);
- its section lies in a zone a run isolated and whose isolating switches are still open (by the
  catalog's topology when the admin token is set, else the service's own last plan): a
  de-energised zone cannot carry fault current, so the location is an artefact.

Another meter's report of a disturbance that began before the run's location was made (another
feeder's fault at the same time) still queues behind the run in progress.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gridedge.apps.params import ParamError, number, unknown
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.flisr import (
    FAULT_LOCATION_STREAM,
    FLISR_DEVICE_ID,
    FLISR_RECORD_STREAM,
    FaultLocation,
    FlisrRecord,
    FlisrStep,
    SwitchOperation,
)
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.contracts.topics import Plane, Stream, subscription

NAME = "reconfiguration"
KNOWN = {
    "grid",
    "switch_devices",
    "switch_device",
    "command_timeout_s",
    "method",
    "holdoff_s",
    "catalog_url",
}
MANIFEST = {"watchdog_s": 120.0}


@dataclass
class IsolatedZone:
    """A faulted zone a run left isolated: reports located inside it are artefacts."""

    flisr_id: str
    section_id: str
    nodes: frozenset[str]
    switches: tuple[str, ...]  # the isolating switches (opened by the run)


class ReconfigurationApp:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.waiting: dict[str, asyncio.Future[tuple[CommandResult, int]]] = {}
        self.model_twin: Any = None
        self.restoration: Any = None
        self.records: list[FlisrRecord] = []
        self.busy = asyncio.Lock()
        self.handled: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.active: dict[str, FaultLocation] = {}  # record id -> location of a run under way
        self.finished: dict[str, tuple[int, str]] = {}  # meter -> (end ns, flisr id)
        self.isolated: list[IsolatedZone] = []
        self.ignored: list[dict[str, Any]] = []

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown(params, KNOWN, NAME)
        grid = params.get("grid")
        if not isinstance(grid, str) or not grid:
            raise ParamError(f"{NAME} parameter 'grid' must name the grid model, got {grid!r}")
        sd = params.get("switch_devices", {})
        if not isinstance(sd, dict):
            raise ParamError(f"{NAME} parameter 'switch_devices' must map switch ids to devices")
        one = params.get("switch_device")
        if one is not None and not isinstance(one, str):
            raise ParamError(f"{NAME} parameter 'switch_device' must be a device id")
        if not sd and not one:
            raise ParamError(f"{NAME}: give 'switch_devices' or 'switch_device'")
        method = params.get("method", "milp")
        if method not in ("milp", "exhaustive"):
            raise ParamError(f"{NAME} parameter 'method' must be 'milp' or 'exhaustive'")
        return {
            "grid": grid,
            "switch_devices": dict(sd),
            "switch_device": one,
            "command_timeout_s": number(params, "command_timeout_s", 10.0, gt=0, app=NAME),
            "method": method,
            "holdoff_s": number(params, "holdoff_s", 5.0, ge=0, le=3600, app=NAME),
            "catalog_url": params.get("catalog_url"),
        }

    def on_params(self, params: dict[str, Any]) -> None:
        self.params = self._apply(params)

    def device_for(self, switch_id: str) -> str:
        dev = self.params["switch_devices"].get(switch_id) or self.params["switch_device"]
        if not dev:
            raise ParamError(f"{NAME}: no device operates switch {switch_id!r}")
        return dev

    async def run(self, ctx: Any) -> None:
        self.params = self._apply(ctx.params)
        ctx.subscribe(subscription(Plane.DATA, "+", Stream.COMMAND_RESULT), self._on_result)
        ctx.subscribe(subscription(Plane.DATA, "+", FAULT_LOCATION_STREAM), self._on_location(ctx))
        await asyncio.to_thread(self._load_model)
        while True:
            await ctx.sleep(1.0)

    def _load_model(self) -> None:
        """Load the grid model and build everything a plan needs once (zones, the power-flow
        models, HiGHS warmed up): at start, so that the first fault pays only for its plan."""
        from gridedge.flisr.restoration import GridRestoration
        from gridedge.twin.model import Twin

        if self.model_twin is None:
            self.model_twin = Twin.from_name(self.params["grid"])
        tw = self.model_twin
        self.restoration = GridRestoration(tw.pgm, tw.grid.switch_role)

    async def _on_result(self, t: str, payload: bytes) -> None:
        try:
            res = CommandResult.from_json(payload)
        except (ValidationError, ValueError):
            return
        fut = self.waiting.get(res.command_id)
        if fut is not None and not fut.done():
            fut.set_result((res, time.time_ns()))

    def _on_location(self, ctx: Any):  # type: ignore[no-untyped-def]
        async def handle(t: str, payload: bytes) -> None:
            received = ctx.clock.now_ns()
            try:
                loc = FaultLocation.from_json(payload)
            except (ValidationError, ValueError) as exc:
                ctx.log.warning("fault location on %s refused: %s", t, exc)
                return
            if loc.record_id in self.handled:
                return  # QoS 1 redelivery
            self.handled.add(loc.record_id)
            reason = self._ignore_reason(loc, received)
            if reason and reason.startswith("zone:"):
                reason = await self._zone_still_isolated(reason)
            if reason:
                self._ignore(ctx, loc, reason)
                return
            self.active[loc.record_id] = loc
            task = asyncio.ensure_future(self._flisr(ctx, loc, received))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        return handle

    def _ignore_reason(self, loc: FaultLocation, received_ns: int) -> str:
        """Why this report must not start a run ("" if it may); "zone:<index>" when only the
        isolated zone speaks against it (to be confirmed against the catalog)."""
        for a in self.active.values():
            if a.device_id == loc.device_id or loc.inception_ns >= a.located_ns:
                return (
                    f"a FLISR run for record {a.record_id} of {a.device_id} (section "
                    f"{a.section_id}) is in progress: this report is its switching, not a new fault"
                )
        hold = self.params.get("holdoff_s", 5.0)
        for dev, (end_ns, flisr_id) in self.finished.items():
            if 0 <= received_ns - end_ns < hold * 1e9:
                return (
                    f"arrived {(received_ns - end_ns) / 1e9:.2f} s after FLISR run {flisr_id} "
                    f"for {dev} finished (hold-off {hold:g} s): the restoration's switching, "
                    "not a new fault"
                )
        for k, z in enumerate(self.isolated):
            if loc.section_id == z.section_id or {loc.from_node, loc.to_node} & z.nodes:
                return f"zone:{k}"
        return ""

    async def _zone_still_isolated(self, marker: str) -> str:
        """The zone is isolated while its isolating switches stay open in the catalog's
        topology (the operator closes them after the repair); without the catalog, the
        service's own plan is all it knows."""
        zone = self.isolated[int(marker.split(":", 1)[1])]
        admin = self._admin()
        if admin is not None:
            try:
                topo = await admin.get_topology(self.params["grid"])
                closed = {b.id for b in topo.branches if b.switchable and b.closed}
                if closed & set(zone.switches):
                    self.isolated.remove(zone)  # re-energised since: a report there is real
                    return ""
            except Exception:
                pass  # keep the conservative answer: the zone was isolated by our own run
            finally:
                await admin.aclose()
        return (
            f"section lies in the zone FLISR run {zone.flisr_id} isolated (fault on "
            f"{zone.section_id}; {', '.join(zone.switches)} open): a de-energised zone carries "
            "no fault current"
        )

    def _ignore(self, ctx: Any, loc: FaultLocation, reason: str) -> None:
        ctx.log.warning(
            "fault location %s of %s on %s ignored: %s",
            loc.record_id,
            loc.device_id,
            loc.section_id,
            reason,
        )
        entry = {
            "record_id": loc.record_id,
            "device_id": loc.device_id,
            "section_id": loc.section_id,
            "inception_ns": loc.inception_ns,
            "reason": reason,
        }
        self.ignored.append(entry)
        ctx.state["ignored"] = ctx.state.get("ignored", 0) + 1
        ctx.publish(
            Stream.EVENT,
            DeviceEvent(
                device_id=FLISR_DEVICE_ID,
                kind=EventKind.ALARM,
                occurred_at=ctx.clock.utcnow(),
                detail={"flisr": "fault location ignored", **entry},
                app=NAME,
            ),
            qos=1,
            device_id=FLISR_DEVICE_ID,
        )

    async def _send(self, ctx: Any, switch_id: str, closed: bool, purpose: str) -> SwitchOperation:
        dev = self.device_for(switch_id)
        cmd = Command(
            device_id=dev,
            target=switch_id,
            action=CommandAction.CLOSE if closed else CommandAction.OPEN,
            origin="flisr",
        )
        fut: asyncio.Future[tuple[CommandResult, int]] = asyncio.get_running_loop().create_future()
        self.waiting[cmd.command_id] = fut
        sent = time.time_ns()
        ctx.publish(Stream.COMMAND, cmd, qos=1, device_id=dev)
        op = SwitchOperation(
            switch_id=switch_id,
            device_id=dev,
            action=cmd.action.value,
            purpose=purpose,
            command_id=cmd.command_id,
            sent_ns=sent,
        )
        try:
            res, at = await asyncio.wait_for(fut, self.params["command_timeout_s"])
            op.confirmed_ns, op.ok, op.closed, op.reason = at, res.ok, res.closed, res.reason
            if res.ok and res.closed is not None and res.closed != closed:
                op.ok, op.reason = False, f"switch reports closed={res.closed} after the command"
        except TimeoutError:
            op.reason = f"no confirmation within {self.params['command_timeout_s']:g} s"
        finally:
            self.waiting.pop(cmd.command_id, None)
        return op

    async def _flisr(self, ctx: Any, loc: FaultLocation, received_ns: int) -> None:
        try:
            await self._flisr_run(ctx, loc, received_ns)
        finally:
            self.active.pop(loc.record_id, None)

    async def _flisr_run(self, ctx: Any, loc: FaultLocation, received_ns: int) -> None:
        from gridedge.flisr.restoration import RestorationError, plan_after_trip

        t_read = time.perf_counter()  # the run's clock starts when the location arrived
        async with self.busy:
            problems: list[str] = []
            if self.restoration is None:
                await asyncio.to_thread(self._load_model)
            g = self.restoration
            # the switch states the service believes in: the catalog's topology, else its own
            # model as its last run left it; then the trip (inside the plan's timed span)
            topo = None
            admin = self._admin()
            if admin is None:
                problems.append(
                    "GRIDEDGE_ADMIN_TOKEN not set: switch states not read from, and the new "
                    "topology not handed to, the catalog"
                )
            else:
                try:
                    topo = await admin.get_topology(self.params["grid"])
                    g.set_states({b.id: b.closed for b in topo.branches if b.switchable})
                    closed = {b.id for b in topo.branches if b.switchable and b.closed}
                    self.isolated = [z for z in self.isolated if not closed & set(z.switches)]
                except Exception as exc:
                    problems.append(f"topology not read from the catalog: {exc}")
            t0 = time.perf_counter()
            read_ns = received_ns + int((t0 - t_read) * 1e9)
            # the plan's compute: which breaker tripped, isolation, restoration, power flow
            # switches isolating an earlier fault not yet repaired stay open
            keep = sorted({s for z in self.isolated for s in z.switches})
            try:
                plan, breaker = await asyncio.to_thread(
                    plan_after_trip, g, loc.section_id, self.params["method"], keep
                )
            except RestorationError as exc:  # e.g. a section no switch can isolate
                self._ignore(ctx, loc, f"no restoration plan: {exc}")
                if admin is not None:
                    await admin.aclose()
                return
            planned_ns = read_ns + int((time.perf_counter() - t0) * 1e9)
            # actuation: isolate (together), then close one by one (breaker first, then ties)
            ops = list(
                await asyncio.gather(*(self._send(ctx, s, False, "isolate") for s in plan.isolate))
            )
            ops += list(
                await asyncio.gather(*(self._send(ctx, s, False, "split") for s in plan.open_extra))
            )
            if all(o.ok for o in ops):
                for s in plan.close:
                    purpose = "reclose" if s == breaker else "restore"
                    op = await self._send(ctx, s, True, purpose)
                    ops.append(op)
                    if not op.ok:
                        problems.append(f"{s}: {op.reason}")
                        break
            else:
                problems += [f"{o.switch_id}: {o.reason}" for o in ops if not o.ok]
                problems.append("isolation not confirmed: no switch closed")
            actuated_ns = max([o.confirmed_ns or o.sent_ns for o in ops], default=planned_ns)
            # the service's model follows what the switches confirmed (the catalog's topology,
            # when there is one, overrides it at the next run)
            g.set_states({o.switch_id: o.closed for o in ops if o.ok and o.closed is not None})
            # new topology to the catalog (it pushes settings to the affected devices)
            version = None
            if admin is not None and topo is not None:
                done = {o.switch_id: bool(o.closed) for o in ops if o.ok and o.closed is not None}
                for b in topo.branches:
                    if b.id in done:
                        b.closed = done[b.id]
                try:
                    stored = await admin.put_topology(topo)
                    version = stored.version
                except Exception as exc:
                    problems.append(f"topology not stored: {exc}")
            stored_ns = ctx.clock.now_ns()
            if admin is not None:
                await admin.aclose()
            ok_all = all(o.ok for o in ops)
            outcome = "restored" if ok_all and plan.close else ("isolated" if ok_all else "failed")
            inc = loc.inception_ns

            def step(name: str, a: int, b: int, detail: str = "") -> FlisrStep:
                return FlisrStep(
                    name=name,
                    start_ms=(a - inc) / 1e6,
                    duration_ms=max(b - a, 0) / 1e6,
                    detail=detail,
                )

            steps = [
                step(
                    "detection", inc, loc.detected_ns, "fault inception to the head meter's trigger"
                ),
                step(
                    "window capture",
                    loc.detected_ns,
                    loc.window_captured_ns,
                    "sampled window and phasors on the meter",
                ),
                step(
                    "meter reports",
                    loc.window_captured_ns,
                    loc.located_ns - int(loc.compute_s * 1e9),
                    "waiting for other meters' sags",
                ),
                step("location compute", loc.located_ns - int(loc.compute_s * 1e9), loc.located_ns),
                step("messaging", loc.located_ns, received_ns, "fault location over MQTT"),
                step(
                    "topology read",
                    received_ns,
                    read_ns,
                    "waiting for a run in progress, then the switch states "
                    + ("from the catalog" if topo is not None else "of the service's own model"),
                ),
                step("reconfiguration compute", read_ns, planned_ns, plan.method),
                step(
                    "actuation confirmed",
                    planned_ns,
                    actuated_ns,
                    f"{len(ops)} commands over MQTT, each confirmed",
                ),
                step("topology to catalog", actuated_ns, stored_ns),
            ]
            rec = FlisrRecord(
                flisr_id=uuid.uuid4().hex[:12],
                grid=self.params["grid"],
                outcome=outcome,
                location=loc,
                steps=steps,
                operations=ops,
                isolated_switches=[o.switch_id for o in ops if o.purpose == "isolate" and o.ok],
                closed_switches=[o.switch_id for o in ops if o.action == "close" and o.ok],
                restored_nodes=plan.restored_nodes if ok_all else [],
                restored_customers=plan.restored_loads if ok_all else 0,
                restored_load_w=max(plan.interrupted_load_w - plan.lost_load_w, 0.0)
                if ok_all
                else 0.0,
                interrupted_load_w=plan.interrupted_load_w,
                unserved_load_w=plan.lost_load_w,
                restoration_method=plan.method,
                topology_version=version,
                total_s=max(actuated_ns - inc, 0) / 1e9,
                problems=problems,
            )
            self.records.append(rec)
            self.finished[loc.device_id] = (ctx.clock.now_ns(), rec.flisr_id)
            if rec.isolated_switches:
                self.isolated.append(
                    IsolatedZone(
                        rec.flisr_id,
                        loc.section_id,
                        frozenset(plan.faulted_zone_nodes),
                        tuple(rec.isolated_switches),
                    )
                )
            ctx.publish(FLISR_RECORD_STREAM, rec, qos=1, retain=True, device_id=FLISR_DEVICE_ID)

    def _admin(self):  # type: ignore[no-untyped-def]
        import os

        from gridedge.catalog.client import CatalogAdmin
        from gridedge.config import Config

        token = os.environ.get("GRIDEDGE_ADMIN_TOKEN")
        if not token:
            return None
        url = self.params.get("catalog_url") or Config().catalog_url
        return CatalogAdmin(url, token)


def factory() -> ReconfigurationApp:
    return ReconfigurationApp()
