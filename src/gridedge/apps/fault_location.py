"""Fault location on the feeder-head meter (seed 001 §III-C, seed 003 §III-B; REFERENCE §2.1).

Runs on the 3SMA at the primary substation, beside its ``fault_capture`` app. When its own
:class:`~gridedge.contracts.events.FaultRecord` arrives (``data/<own id>/fault``) it waits
``sag_wait_s`` for the records other meters publish for the same disturbance (their pre-fault
readings become the load data, their sag depths resolve the multiple estimation), locates the
fault with :func:`gridedge.flisr.location.locate` and publishes a
:class:`~gridedge.contracts.flisr.FaultLocation` on ``data/<own id>/fault-location``.

The feeder's line data come from the utility's model of its network, built locally by name
(``grid``; the same builders the twin uses stand in for the asset database). Switch states
come from the device's grid portion (catalog topology); nothing of the twin's live state is read.

Parameters: ``grid`` (required), ``point`` (measurement point of this meter in the model;
default: the device id), ``meters`` ({device id: node id}; default: the grid portion's
placements), ``sag_wait_s`` (0.3), ``match_window_s`` (2.0: how far apart two records' inception
times may be to belong to one fault), ``refine`` (3), ``sag_error`` (the sag meters' reading
noise per one-cycle magnitude, relative; default: the locator's 0.2 %). A record that carries
averaged sags (``sag_mean_v``/``pre_mean_v``, fault_capture's default) is used with them: its
depth's σ is ``sag_error``·√(1/pre_cycles + 1/sag_cycles), not ``sag_error``·√2. The wait ends early once
every meter listed in ``meters`` has reported.

What is done once per topology (when the app starts, and again when the switch states or the
meter placements change): the model's power flow (the forecast loads of unmetered secondaries)
and the feeder's structure. Per fault: the feeder model with the reporting secondaries' own
pre-fault readings as its loads, then the location, with the loads scaled to the head's
pre-fault power. ``head_calibration`` (false): when every secondary of the feeder reported, take
its loads as metered and calibrate the head's VT–CT angle against them instead
(``compensate_loads=False``) — right for a head whose during-fault phasor is more accurate than
the calibration (~0.1°); with the one-cycle ls-dc phasor (~0.15° after a bolted fault's DC
offset) it made the benchmark's seed-condition errors worse (docs/flisr.md).

Fault passage: ``switch_units`` ({device id: switch id}; the wait covers them as it covers
``meters``) names the field units at the feeder's switches (switch branches; a switch the
grid models as a line's status flag has no unit to place); a record whose point is one of the
feeder's switches gives its verdict too, but not its sag (placing an unlisted unit would
rebuild the feeder per fault). A field unit runs ``fault_capture`` on the switch's CTs (the twin
serves every switch branch as a point). A listed unit that never triggers (beyond a
high-resistance fault, its current barely changes and its voltage barely sags) makes the wait
last the full ``sag_wait_s``. Its current change against the head's tells
whether the fault current went through (:mod:`gridedge.flisr.passage`), and the search is kept
to the sections those verdicts agree with, and at a cost to those one failed indicator away
(REFERENCE §2.3: zone first, then impedance; :func:`~gridedge.flisr.passage.section_penalties`). The
verdicts are in the published location (``fault_passage``). Its busbar voltage (on the switch's
from side) is a sag reading like a meter's: it sees the end of a cable that leads to a
switching substation without load, where no meter is (docs/benchmarks.md: meters alone leave
~1.5 % of faults in the wrong switching zone and most of the rest on such cables).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import numpy as np
from pydantic import ValidationError

from gridedge.apps.params import ParamError, integer, number, unknown
from gridedge.contracts.events import FaultRecord
from gridedge.contracts.flisr import FAULT_LOCATION_STREAM, FaultLocation, LocationCandidate
from gridedge.contracts.topics import Plane, Stream, parse_topic, subscription

NAME = "fault_location"
KNOWN = {
    "grid",
    "point",
    "meters",
    "sag_wait_s",
    "match_window_s",
    "refine",
    "sag_error",
    "head_calibration",
    "switch_units",
}
MANIFEST = {"watchdog_s": 120.0}


def sag_report(r: FaultRecord) -> Any:
    """A meter's record as the locator's :class:`~gridedge.flisr.location.SagReport` (None if
    it has no three-phase pre-fault magnitude): the sag averaged over the fault's cycles when
    the record carries it (√cycles more precise than one reading, and weighed so), else the
    one-cycle phasor magnitudes of a waveform record, else an RMS-only meter's logged sag
    minimum against its pre-fault RMS."""
    from gridedge.flisr.location import SagReport

    n_pre = n_dur = 1
    if r.sag_mean_v is not None and r.pre_mean_v is not None:
        pre_l, dur_l, n_pre, n_dur = r.sag_readings()
        pre_v, dur_v = np.array(pre_l), np.array(dur_l)
    elif r.pre is not None and r.during is not None:
        pre_v = np.abs(np.array(r.pre.voltage_complex()))
        dur_v = np.abs(np.array(r.during.voltage_complex()))
    else:
        pre_v, dur_v = np.array(r.pre_rms_v), np.array(r.min_rms_v)
    if pre_v.size != 3 or dur_v.size != 3 or not np.all(pre_v > 0):
        return None
    return SagReport(r.device_id, pre_v, dur_v, n_pre, n_dur)


class FaultLocationApp:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.records: dict[str, FaultRecord] = {}
        self.model_twin: Any = None
        self.pending: asyncio.Task[None] | None = None
        self.located: list[FaultLocation] = []
        self._base: tuple[Any, Any, Any] | None = None  # (key, pre-fault state, feeder info)

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown(params, KNOWN, NAME)
        grid = params.get("grid")
        if not isinstance(grid, str) or not grid:
            raise ParamError(f"{NAME} parameter 'grid' must name the grid model, got {grid!r}")
        meters = params.get("meters", {})
        if not isinstance(meters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meters.items()
        ):
            raise ParamError(f"{NAME} parameter 'meters' must map device ids to node ids")
        units = params.get("switch_units", {})
        if not isinstance(units, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in units.items()
        ):
            raise ParamError(f"{NAME} parameter 'switch_units' must map device ids to switch ids")
        return {
            "grid": grid,
            "point": params.get("point"),
            "meters": dict(meters),
            "switch_units": dict(units),
            "sag_wait_s": number(params, "sag_wait_s", 0.3, ge=0, le=30, app=NAME),
            "match_window_s": number(params, "match_window_s", 2.0, gt=0, app=NAME),
            "refine": integer(params, "refine", 3, ge=1, app=NAME),
            "sag_error": (
                number(params, "sag_error", 0.002, gt=0, le=0.1, app=NAME)
                if "sag_error" in params
                else None
            ),
            "head_calibration": _flag(params, "head_calibration", False),
        }

    def on_params(self, params: dict[str, Any]) -> None:
        new = self._apply(params)
        if new["grid"] != self.params.get("grid"):
            self.model_twin = None
        self.params = new

    async def run(self, ctx: Any) -> None:
        self.params = self._apply(ctx.params)
        ctx.subscribe(subscription(Plane.DATA, "+", Stream.FAULT), self._on_record(ctx))
        # build the model and the feeder before any fault needs them
        await asyncio.to_thread(self._prepare, ctx)
        while True:
            await ctx.sleep(1.0)

    def _on_record(self, ctx: Any):  # type: ignore[no-untyped-def]
        async def handle(t: str, payload: bytes) -> None:
            try:
                rec = FaultRecord.from_json(payload)
            except (ValidationError, ValueError) as exc:
                ctx.log.warning("fault record on %s refused: %s", t, exc)
                return
            if parse_topic(t).device_id != rec.device_id:
                ctx.log.warning("fault record on %s claims device %s: ignored", t, rec.device_id)
                return
            self.records[rec.device_id] = rec
            if rec.device_id == ctx.device_id and self.pending is None:
                self.pending = asyncio.ensure_future(self._locate_after_wait(ctx, rec))

        return handle

    async def _locate_after_wait(self, ctx: Any, own: FaultRecord) -> None:
        try:
            # wait for the other meters' records, at most sag_wait_s (less when all are in)
            expected = (set(self.params["meters"]) | set(self.params["switch_units"])) - {
                ctx.device_id
            }
            waited, window = 0.0, self.params["match_window_s"] * 1e9
            while waited < self.params["sag_wait_s"]:
                have = {
                    d
                    for d, r in self.records.items()
                    if abs(r.inception_ns - own.inception_ns) <= window
                }
                if expected and expected <= have:
                    break
                await ctx.sleep(0.01)
                waited += 0.01
            loc = await asyncio.to_thread(self.locate, ctx, own)
            self.located.append(loc)
            ctx.publish(FAULT_LOCATION_STREAM, loc, qos=1)
        except Exception as exc:  # a location that cannot be made is reported, not swallowed
            ctx.log.error("fault location failed: %s", exc)
            from gridedge.contracts.telemetry import DeviceEvent, EventKind

            ctx.publish(
                Stream.EVENT,
                DeviceEvent(
                    device_id=ctx.device_id,
                    kind=EventKind.APP_ERROR,
                    occurred_at=ctx.clock.utcnow(),
                    detail={"error": str(exc), "record_id": own.record_id},
                    app=NAME,
                ),
            )
        finally:
            self.pending = None

    # ------------------------------------------------------------------ the computation
    def _model(self, ctx: Any):  # type: ignore[no-untyped-def]
        from gridedge.twin.model import Twin

        if self.model_twin is None:
            self.model_twin = Twin.from_name(self.params["grid"])
        tw = self.model_twin
        portion = getattr(ctx, "grid", None)
        if portion is not None:
            for br in portion.branches:
                if (
                    br.switchable
                    and br.id in tw.switch_ids
                    and tw.switch_states().get(br.id) != br.closed
                ):
                    tw.operate(br.id, br.closed)
        return tw

    def _prepare(self, ctx: Any) -> None:
        """Per-topology work at start: the model, its power flow and the feeder's structure."""
        tw = self._model(ctx)
        placements = self._placements(ctx, tw)  # a bad switch_units entry stops the app here
        with contextlib.suppress(ParamError):
            head_pt = self._head_point(tw, None, ctx)
            self._feeder_base(tw, head_pt, placements)

    def _head_point(self, tw: Any, record_point: str | None, ctx: Any) -> Any:
        point_id = self.params["point"] or record_point or ctx.device_id
        head_pt = next((m for m in tw.measurement_points if m.id == point_id), None)
        if head_pt is None:
            raise ParamError(f"{NAME}: point {point_id!r} is not a measurement point of the model")
        return head_pt

    def _placements(self, ctx: Any, tw: Any) -> dict[str, str]:
        """Device id -> node of every sag sensor: the meters, and the field units at switches
        (their busbar voltage, on the switch's from side)."""
        placements = dict(self.params["meters"])
        portion = getattr(ctx, "grid", None)
        if not placements and portion is not None:
            placements = dict(portion.devices)
        for dev, sw in self.params["switch_units"].items():
            node = _switch_node(tw, sw)
            if node is None:
                raise ParamError(
                    f"{NAME} parameter 'switch_units': {sw!r} (unit {dev!r}) is not a switch "
                    f"branch of grid {self.params['grid']!r}"
                )
            placements.setdefault(dev, node)
        return placements

    def _feeder_base(self, tw: Any, head_pt: Any, placements: dict[str, str]) -> tuple:
        """The model's pre-fault power flow (forecast loads), the feeder's structure and which
        secondary each of its loads stands for, cached per topology (switch states), head point
        and meter placements: none of it depends on the fault, so a fault does not pay for it."""
        from gridedge.twin.state import MeasurementPoint

        meters = [MeasurementPoint(d, n) for d, n in sorted(placements.items())]
        key = (
            tuple(sorted(tw.switch_states().items())),
            head_pt.id,
            tuple(sorted(placements.items())),
        )
        if self._base is None or self._base[0] != key:
            from gridedge.flisr.blas import warm_up

            pre = tw.solve()
            info, slots = feeder_with_slots(tw, head_pt, pre, meters)
            warm_up()  # per process, once: not on the first fault's clock
            trafos = {t.id: t for t in tw.transformer_data()}
            self._base = (key, info, slots, trafos)
        _, info0, slots, trafos = self._base
        return info0, slots, trafos

    def locate(self, ctx: Any, own: FaultRecord) -> FaultLocation:
        if own.pre is None or own.during is None:
            raise ValueError(
                f"record {own.record_id} of the head meter has no phasors (kind {own.kind!r}: "
                f"{own.note or 'no waveform'}); impedance-based location needs them"
            )
        from gridedge.flisr.location import HeadPhasors, locate
        from gridedge.flisr.passage import section_penalties
        from gridedge.flisr.twin_model import refer_lv_load

        tw = self._model(ctx)
        t_start = time.perf_counter()
        head_pt = self._head_point(tw, own.point_id, ctx)
        window = self.params["match_window_s"] * 1e9
        others = [
            r
            for d, r in self.records.items()
            if d != ctx.device_id and abs(r.inception_ns - own.inception_ns) <= window
        ]
        placements = self._placements(ctx, tw)
        known_points = {m.id: m for m in tw.measurement_points}
        for r in others:
            if r.device_id in placements or r.point_id in tw.switch_ids:
                # a field unit not listed in switch_units gives its verdict only: placing it
                # would change the feeder's cache key with every fault that unit sees
                continue
            if r.point_id in known_points:
                placements[r.device_id] = known_points[r.point_id].node_id
            else:
                ctx.log.warning("sag report of %s: no placement known, not used", r.device_id)
        info0, slots, trafos = self._feeder_base(tw, head_pt, placements)
        # loads: every reporting secondary's own pre-fault reading (LV side, referred to MV
        # through its transformer's losses; an MV customer's meter reads its load directly),
        # else the model's
        mv_loads = [ld for ld in tw.load_data() if ld.id in slots]
        per_node = Counter(ld.node_id for ld in mv_loads)
        mv_load_at = {ld.node_id: ld.id for ld in mv_loads if per_node[ld.node_id] == 1}
        estimate: dict[str, complex] = {}
        for r in others:
            if r.device_id in self.params["switch_units"] or r.point_id in tw.switch_ids:
                continue  # a switch's current is its whole downstream, not a load
            node = placements.get(r.device_id)
            if node in info0.transformer_of_lv:
                slot = info0.transformer_of_lv[node][0]
            elif node in mv_load_at:
                slot = mv_load_at[node]
            else:
                continue
            if r.pre is None:
                continue
            v = np.array(r.pre.voltage_complex())
            i = np.array(r.pre.current_complex())
            s = complex(np.sum(v * np.conj(i)))
            estimate[slot] = s if s.real >= 0 else -s
        model = info0.model.with_loads(
            [
                (refer_lv_load(trafos[sid], estimate[sid]) if sid in trafos else estimate[sid])
                if sid in estimate
                else None
                for sid in slots
            ]
        )
        metered = bool(slots) and all(tid is not None and tid in estimate for tid in slots)
        calibrate = self.params["head_calibration"] and metered
        head = HeadPhasors(
            np.array(own.pre.voltage_complex()),
            np.array(own.pre.current_complex()),
            np.array(own.during.voltage_complex()),
            np.array(own.during.current_complex()),
        )
        sags = []
        for r in others:
            if r.device_id not in model.meter_views:
                continue
            rep = sag_report(r)
            if rep is not None:
                sags.append(rep)
        passage = fault_passage(own, others, info0.switches_on_path, self.params["switch_units"])
        res = locate(
            model,
            head,
            sags,
            refine=self.params["refine"],
            compensate_loads=not calibrate,
            sag_error=self.params["sag_error"],
            within=section_penalties(info0.switches_on_path, passage) if passage else None,
        )
        b = res.best
        sec = model.sections[model.section_index[b.section_id]]
        now = ctx.clock.now_ns()
        return FaultLocation(
            device_id=ctx.device_id,
            grid=self.params["grid"],
            record_id=own.record_id,
            section_id=b.section_id,
            from_node=b.from_node,
            to_node=b.to_node,
            distance_m=b.distance_m,
            distance_from_head_m=b.distance_from_head_m,
            section_length_m=sec.length_m,
            r_f_ohm=b.rf_ohm,
            fault_kind=b.kind.value,
            phases=b.phases,
            confidence=res.confidence,
            candidates=[
                LocationCandidate(
                    section_id=c.section_id,
                    from_node=c.from_node,
                    to_node=c.to_node,
                    distance_m=c.distance_m,
                    r_f_ohm=c.rf_ohm,
                    cost=float(c.cost),
                )
                for c in res.candidates[:4]
            ],
            meters_used=[s.meter_id for s in sags],
            fault_passage=passage,
            inception_ns=own.inception_ns,
            detected_ns=own.trigger_ns,
            window_captured_ns=int(own.captured_at.timestamp() * 1e9),
            located_ns=now,
            compute_s=time.perf_counter() - t_start,
        )


def fault_passage(
    own: FaultRecord,
    others: list[FaultRecord],
    switches_on_path: dict[str, frozenset[str]],
    units: dict[str, str] | None = None,
) -> dict[str, bool]:
    """Which of the feeder's switches the fault current went through, from the records of the
    field units at them (``units``: device id -> switch id; else a record whose point is a
    switch of the feeder): each unit's current change against the head's own
    (:mod:`gridedge.flisr.passage`)."""
    from gridedge.flisr.passage import fault_passed

    switches = set().union(*switches_on_path.values()) if switches_on_path else set()
    head = _change(own)
    if head is None or head <= 0:
        return {}
    out: dict[str, bool] = {}
    for r in others:
        switch = (units or {}).get(r.device_id, r.point_id)
        if switch in switches and (c := _change(r)) is not None:
            out[switch] = fault_passed(c, head)
    return out


def _switch_node(tw: Any, switch_id: str) -> str | None:
    """Where a switch's field unit sees its voltage (None: not a switch branch)."""
    point = tw.switch_point(switch_id)
    return point.node_id if point else None


def _change(r: FaultRecord) -> float | None:
    """A record's largest per-phase current change: of its phasors, else of its RMS log."""
    from gridedge.flisr.passage import current_change

    if r.pre is not None and r.during is not None:
        i_pre, i_dur = np.array(r.pre.current_complex()), np.array(r.during.current_complex())
        if i_pre.shape == i_dur.shape == (3,):
            return current_change(i_pre, i_dur)
    if len(r.pre_rms_a) == 3 and len(r.max_rms_a) == 3:
        # magnitudes only: never more than the vector change, so an RMS-only unit leans
        # towards "not passed" when the fault current is far out of phase with the load
        return current_change(np.array(r.pre_rms_a), np.array(r.max_rms_a))
    return None


def feeder_with_slots(twin: Any, head_pt: Any, pre: Any, meters: list[Any]) -> tuple[Any, list]:
    """The feeder of ``head_pt`` (:func:`~gridedge.flisr.twin_model.build_feeder`) and, for each
    of its loads, the transformer id of the secondary it stands for, or the MV load's id (an MV
    customer, metered at its delivery point). Done once per topology, so that a fault only swaps
    the load values (:meth:`~gridedge.flisr.network.FeederModel.with_loads`) instead of
    rebuilding the feeder (8 ms on turin-urban). The loads are told apart by a probe build whose
    estimates carry each transformer's or load's index."""
    from gridedge.flisr.twin_model import build_feeder

    tids = [t.id for t in twin.transformer_data()] + [ld.id for ld in twin.load_data()]
    probe = {tid: complex(float("nan"), k) for k, tid in enumerate(tids)}
    probed = build_feeder(twin, head_pt, pre, meters=meters, load_estimate=probe)
    info = build_feeder(twin, head_pt, pre, meters=meters)
    if [ld.node for ld in probed.model.loads] != [ld.node for ld in info.model.loads]:
        raise RuntimeError("feeder loads came out in a different order in the probe build")
    info.model.prepare()
    slots = [
        tids[int(ld.s_va.imag)] if np.isnan(ld.s_va.real) else None for ld in probed.model.loads
    ]
    return info, slots


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise ParamError(f"{NAME} parameter {name!r} must be true or false, got {value!r}")
    return value


def factory() -> FaultLocationApp:
    return FaultLocationApp()
