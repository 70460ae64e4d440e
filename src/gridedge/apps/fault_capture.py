"""Fault capture: the 3SMA's disturbance recorder (seed 003 §III-B, REFERENCE.md §2.1).

Polls the DAQ's RMS values every ``poll_interval_s`` and triggers on

- overcurrent: a phase current above ``overcurrent_factor`` × its pre-fault reference (and above
  ``min_current_a``, so an idle feeder's noise cannot trigger), or above ``overcurrent_a``;
- undervoltage: a phase voltage below ``undervoltage_pu`` × its reference, or below
  ``undervoltage_v``.

References are exponentially smoothed healthy readings (``reference_alpha``). On a trigger the app
asks the DAQ for the window around it (``pre_s`` before, ``post_s`` after), then:

1. locates the inception in the samples: the DAQ's own mark if it gives one, else the
   cycle-difference detector, else the trigger time;
2. computes the phasors of the cycle just before inception ("pre", one-cycle full-cycle DFT,
   :mod:`gridedge.dsp`) and of the cycle starting ``during_delay_cycles`` after it ("during"),
   referenced to the absolute epoch like the twin's phasors. A full-cycle DFT does not reject
   the fault current's decaying DC offset (one cycle after inception it errs by ~4 % / 4° at
   X/R = 10), so by default (``during_method: ls-dc``) the during cycle is fitted by least
   squares with the fundamental plus a quadratic that absorbs the offset (≈0.2 % / 0.15°);
   ``dft`` gives the plain seed-003 estimate;
3. logs the sag as a meter does: the lowest half-cycle-refreshed 1-cycle RMS per phase (and the
   highest current) between inception and the clearing of the fault (a second change in the
   samples), so a breaker opening later in the window does not read as a 0 V sag; and the
   *averaged* sag: the mean of the one-cycle RMS per phase over the full cycles from
   ``during_delay_cycles`` after inception to half a cycle before the clearing (or the window
   end; at most ``sag_max_cycles``), with the mean over the ``pre_cycles`` full cycles before
   inception beside it (``FaultRecord.sag_mean_v``/``pre_mean_v``). A meter's reading noise is
   per cycle, so the 13 cycles of a fault cleared in 0.3 s give a sag depth √13 more precise
   than one cycle does — what the fault locator needs to tell 185-m sections apart
   (docs/flisr.md, "Averaged sags");
4. keeps the window as COMTRADE in the node's data folder (at most ``max_records``, oldest
   removed first) and publishes a :class:`~gridedge.contracts.events.FaultRecord` on
   ``data/<id>/fault`` plus a ``fault-captured`` event on ``data/<id>/event`` (both QoS 1).

When the record goes out: the app keeps polling RMS after the trigger and asks for the window
``after_clearing_s`` (0.06 s) after the polls see the sag end — the trigger condition gone, or a
voltage step of more than 10 % of the reference from the previous poll (a meter behind the opened
breaker stays "undervoltage" at 0 V) — and ``post_s`` after the trigger at the latest
(``after_clearing_s: null``: always ``post_s``). The averaged sag is complete at the clearing,
so waiting longer would only delay the fault locator.

After a capture the app waits ``holdoff_s`` and until readings are healthy again before it
re-arms, so one fault gives one record.

Energisation is not a fault. A fault needs the supply before the trigger: when the feeder
breaker recloses onto a healthy feeder, the head meter (whose voltage is the busbar's, present
all along) sees its current rise from ~zero to the load current — an "overcurrent" against a
reference that decayed to zero during the dead time. An overcurrent trigger whose pre-trigger
current was below ``min_current_a`` on every phase (by the smoothed reference or the last poll),
or whose pre-trigger voltage was absent (below ``undervoltage_pu`` of the highest healthy
reference seen), with the voltage not sagging at the trigger, is logged and counted as an
energisation (``state["energisations"]``), and no fault record is published. The captured window
is checked the same way (its cycle before the located inception carries no current), because the
RMS reference may not have decayed fully after a short dead time. Without this, the reclose that
FLISR itself commands was reported as a second fault and located, and the reconfiguration
service isolated a healthy section (the flaky demo run).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from gridedge.apps._loop import FailureLog, Ticker, ns
from gridedge.apps.params import ParamError, integer, number, unknown
from gridedge.contracts.events import FaultRecord, PhasorSet
from gridedge.contracts.telemetry import DeviceEvent, EventKind, Telemetry
from gridedge.contracts.topics import Stream
from gridedge.contracts.waveform import WaveformWindow
from gridedge.dsp import samples_per_cycle
from gridedge.node.backends.measure import (
    epoch_phasors,
    half_cycle_rms,
    locate_inception,
    ls_phasors,
)

NAME = "fault_capture"
PHASES = ("a", "b", "c")
DEFAULTS: dict[str, Any] = {
    "poll_interval_s": 0.02,
    "overcurrent_factor": 2.0,
    "min_current_a": 1.0,
    "overcurrent_a": None,
    "undervoltage_pu": 0.8,
    "undervoltage_v": None,
    "pre_s": 0.5,
    "post_s": 0.5,
    "during_delay_cycles": 1.0,
    "during_method": "ls-dc",
    "waveforms": "auto",
    "holdoff_s": 1.0,
    "max_records": 50,
    "record_dir": None,
    "reference_alpha": 0.2,
    "inception_relative": 0.1,
    "sag_max_cycles": 50,
    "pre_cycles": 10,
    "after_clearing_s": 0.06,
}


def _load_writer() -> Any:
    """The COMTRADE writer lives in the twin package, whose import pulls in the grid models
    (seconds on a small board): load it in the background when the app starts, not at the
    moment a fault needs recording."""
    try:
        from gridedge.twin.comtrade import write_comtrade
    except ImportError:  # pragma: no cover - the writer ships with gridedge
        return None
    return write_comtrade


class FaultCaptureError(RuntimeError):
    """A captured window cannot give the phasors (too short around the inception, no samples)."""


class Energisation(Exception):
    """The trigger was the supply coming back (current rising from ~zero), not a fault."""


class FaultCaptureApp:
    def __init__(self) -> None:
        self._ticker = Ticker()
        self.p: dict[str, Any] = dict(DEFAULTS)
        self._writer: asyncio.Future[Any] | None = None
        self._no_waveforms = False

    # -- parameters ---------------------------------------------------------------------------
    def _apply(self, params: dict[str, Any]) -> None:
        unknown(params, set(DEFAULTS), NAME)
        p: dict[str, Any] = {}
        p["poll_interval_s"] = number(params, "poll_interval_s", 0.02, gt=0, le=60, app=NAME)
        p["overcurrent_factor"] = number(params, "overcurrent_factor", 2.0, gt=1, app=NAME)
        p["min_current_a"] = number(params, "min_current_a", 1.0, ge=0, app=NAME)
        p["overcurrent_a"] = number(params, "overcurrent_a", None, gt=0, app=NAME)
        p["undervoltage_pu"] = number(params, "undervoltage_pu", 0.8, gt=0, le=1, app=NAME)
        p["undervoltage_v"] = number(params, "undervoltage_v", None, gt=0, app=NAME)
        p["pre_s"] = number(params, "pre_s", 0.5, gt=0, le=10, app=NAME)
        p["post_s"] = number(params, "post_s", 0.5, gt=0, le=10, app=NAME)
        p["during_delay_cycles"] = number(params, "during_delay_cycles", 1.0, ge=0, app=NAME)
        method = params.get("during_method", "ls-dc")
        if method not in ("ls-dc", "dft"):
            raise ParamError(f"{NAME} parameter 'during_method' must be 'ls-dc' or 'dft'")
        p["during_method"] = method
        wf = params.get("waveforms", "auto")
        if wf not in ("auto", "required", "off"):
            raise ParamError(f"{NAME} parameter 'waveforms' must be 'auto', 'required' or 'off'")
        p["waveforms"] = wf
        p["holdoff_s"] = number(params, "holdoff_s", 1.0, ge=0, app=NAME)
        p["max_records"] = integer(params, "max_records", 50, ge=1, app=NAME)
        p["reference_alpha"] = number(params, "reference_alpha", 0.2, gt=0, le=1, app=NAME)
        p["inception_relative"] = number(params, "inception_relative", 0.1, gt=0, app=NAME)
        p["sag_max_cycles"] = integer(params, "sag_max_cycles", 50, ge=1, app=NAME)
        p["pre_cycles"] = integer(params, "pre_cycles", 10, ge=1, app=NAME)
        ac = params.get("after_clearing_s", 0.06)
        p["after_clearing_s"] = (
            None if ac is None else number(params, "after_clearing_s", 0.06, gt=0, le=10, app=NAME)
        )
        rd = params.get("record_dir")
        if rd is not None and not isinstance(rd, str):
            raise ParamError(f"{NAME} parameter 'record_dir' must be a path string")
        p["record_dir"] = rd
        self.p = p

    def on_params(self, params: dict[str, Any]) -> None:
        self._apply(params)
        self._ticker.poke()

    def record_dir(self, ctx: Any) -> Path:
        if self.p["record_dir"]:
            return Path(self.p["record_dir"])
        base = getattr(ctx, "data_dir", None)
        if base is None:
            from gridedge.config import Config

            base = Config().data_dir
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", ctx.device_id)
        return Path(base) / "fault-records" / safe

    # -- run ----------------------------------------------------------------------------------
    async def run(self, ctx: Any) -> None:
        self._apply(ctx.params)
        if ctx.daq is None:
            raise RuntimeError("fault capture needs a DAQ backend, and this node has none")
        failures = FailureLog(ctx.log, "reading the DAQ")
        self._writer = asyncio.ensure_future(asyncio.to_thread(_load_writer))
        ref_v: np.ndarray | None = None
        ref_i: np.ndarray | None = None
        seen_v: np.ndarray | None = None  # highest healthy voltage reference: "supply present"
        last_i: np.ndarray | None = None  # the previous poll's currents
        armed_at = 0.0
        armed = True
        due = ctx.clock.now_ns()
        while True:
            try:
                r = await ctx.daq.read_rms()
                failures.succeeded()
            except NotImplementedError:
                raise
            except Exception as exc:
                failures.failed(exc)
                r = None
            if r is not None:
                v, i = np.asarray(r.voltage_v), np.asarray(r.current_a)
                if ref_v is None or ref_v.shape != v.shape:
                    ref_v, ref_i, seen_v, last_i = v.copy(), i.copy(), v.copy(), i.copy()
                assert ref_i is not None and seen_v is not None and last_i is not None
                trig = self.check(v, i, ref_v, ref_i)
                now = ctx.clock.now()
                if trig is None:
                    a = self.p["reference_alpha"]
                    ref_v, ref_i = (1 - a) * ref_v + a * v, (1 - a) * ref_i + a * i
                    seen_v = np.maximum(seen_v, ref_v)
                    if not armed and now >= armed_at:
                        armed = True
                elif armed:
                    armed = False
                    armed_at = now + self.p["holdoff_s"]
                    why = self.energisation(trig[0], v, ref_v, ref_i, last_i, seen_v)
                    if why:
                        self._energised(ctx, why)
                    else:
                        ref = (ref_v, ref_i)
                        why = await self._capture(ctx, r, trig, ctx.clock.now_ns(), ref)
                    if why:
                        # the load current is the new normal: without this every poll would
                        # trigger against the decayed reference and the app never re-arm
                        ref_v, ref_i = v.copy(), i.copy()
                last_i = i
            due += ns(self.p["poll_interval_s"])
            if due <= ctx.clock.now_ns():
                due = ctx.clock.now_ns() + ns(self.p["poll_interval_s"])
            while not await self._ticker.wait_until(ctx, due):
                due = ctx.clock.now_ns() + ns(self.p["poll_interval_s"])

    def check(
        self, v: np.ndarray, i: np.ndarray, ref_v: np.ndarray, ref_i: np.ndarray
    ) -> tuple[str, list[int]] | None:
        """("overcurrent" | "undervoltage", phase indices) or None."""
        p = self.p
        oc = (i > p["overcurrent_factor"] * ref_i) & (i > p["min_current_a"])
        if p["overcurrent_a"] is not None:
            oc |= i > p["overcurrent_a"]
        if oc.any():
            return "overcurrent", [int(k) for k in np.nonzero(oc)[0]]
        uv = v < p["undervoltage_pu"] * ref_v
        if p["undervoltage_v"] is not None:
            uv |= v < p["undervoltage_v"]
        if uv.any():
            return "undervoltage", [int(k) for k in np.nonzero(uv)[0]]
        return None

    def energisation(
        self,
        trigger: str,
        v: np.ndarray,
        ref_v: np.ndarray,
        ref_i: np.ndarray,
        last_i: np.ndarray,
        seen_v: np.ndarray,
    ) -> str:
        """Why an overcurrent trigger is the supply returning rather than a fault ("" if it is
        not): no current flowing before it, or no voltage before it, and no sag now."""
        if trigger != "overcurrent":
            return ""  # the supply returning raises the voltage; it never reads as a sag
        p = self.p
        if np.any(v < p["undervoltage_pu"] * ref_v):
            return ""  # a sag with the rise: a fault (also one switched onto), not energisation
        floor = p["min_current_a"]
        if np.all(ref_i <= floor) or np.all(last_i <= floor):
            return (
                f"current rose from below min_current_a ({floor:g} A) on every phase: "
                "the feeder was de-energised before the trigger"
            )
        if np.all(ref_v < p["undervoltage_pu"] * seen_v):
            return "no supply voltage before the trigger"
        return ""

    def _energised(self, ctx: Any, why: str) -> None:
        """Not a fault record, but never silent: logged and counted."""
        ctx.log.info("fault capture: energisation, not a fault (%s)", why)
        ctx.state["energisations"] = ctx.state.get("energisations", 0) + 1
        ctx.state["last_energisation"] = why

    async def _capture(
        self,
        ctx: Any,
        reading: Telemetry,
        trig: tuple[str, list[int]],
        trigger_ns: int,
        ref: tuple[np.ndarray, np.ndarray],
    ) -> str:
        """Capture and publish the record; returns why it was an energisation ("" if not)."""
        kind, idx = trig
        phases = [reading.phase] if len(reading.voltage_v) == 1 and reading.phase else PHASES
        names = [phases[k] for k in idx]
        ctx.log.info("fault capture: %s on %s", kind, names)
        # keep polling RMS until the post-trigger part has happened (a DAQ cannot return it
        # earlier: the twin answers 409, a real board blocks): the polls are the sag log of a
        # meter without waveforms, and the fallback if the window cannot be had
        low_v, high_i = np.asarray(reading.voltage_v), np.asarray(reading.current_a)
        polls: list[np.ndarray] = [low_v]  # the polls inside the sag
        in_sag = True
        ready_ns = trigger_ns + ns(self.p["post_s"])
        # the earliest the window may end: the during cycle after its delay, plus a cycle
        min_ns = trigger_ns + ns((self.p["during_delay_cycles"] + 2) / 50.0)
        while (left := ready_ns - ctx.clock.now_ns()) > 0:
            await ctx.sleep(min(left / 1e9, self.p["poll_interval_s"]))
            with contextlib.suppress(Exception):
                r = await ctx.daq.read_rms()
                if len(r.voltage_v) == len(low_v):
                    low_v = np.minimum(low_v, r.voltage_v)
                    high_i = np.maximum(high_i, r.current_a)
                    rv, ri = np.asarray(r.voltage_v), np.asarray(r.current_a)
                    # the trigger poll may have caught the inception half-way: steps are
                    # measured from the second poll on
                    last = polls[-1] if len(polls) >= 2 else None
                    if in_sag and not self._cleared(rv, ri, last, ref):
                        polls.append(rv)
                    elif in_sag:
                        in_sag = False  # cleared: later polls are the breaker's dead time
                        if self.p["after_clearing_s"] is not None:
                            # the averaged sag is complete: do not wait out post_s
                            done = ctx.clock.now_ns() + ns(self.p["after_clearing_s"])
                            ready_ns = min(ready_ns, max(done, min_ns))
        record: FaultRecord | None = None
        window: WaveformWindow | None = None
        note = ""
        mode = self.p["waveforms"]
        if mode != "off" and not self._no_waveforms:
            try:
                post_s = max(ready_ns - trigger_ns, 0) / 1e9
                window = await ctx.daq.read_window(self.p["pre_s"], post_s, around_ns=trigger_ns)
                record = self.analyse(window, kind, names, trigger_ns, ctx)
            except Energisation as exc:
                self._energised(ctx, str(exc))
                return str(exc)
            except NotImplementedError as exc:
                if mode == "required":
                    raise
                self._no_waveforms = True  # a capability, not a glitch: stop asking
                note = f"no waveforms: {exc}"
                ctx.log.info("fault capture: %s; logging RMS sags only", note)
            except Exception as exc:
                note = f"window failed: {exc}"
                ctx.log.warning("fault capture failed after a %s trigger: %s", kind, exc)
                ctx.state["capture_errors"] = ctx.state.get("capture_errors", 0) + 1
                ctx.publish(
                    Stream.EVENT,
                    DeviceEvent(
                        device_id=ctx.device_id,
                        kind=EventKind.APP_ERROR,
                        occurred_at=ctx.clock.utcnow(),
                        detail={"error": str(exc), "trigger": kind, "trigger_ns": trigger_ns},
                        app=NAME,
                    ),
                )
                if mode == "required":
                    return ""
        if record is None:
            record = self._rms_record(ctx, kind, names, phases, trigger_ns, ref, low_v, high_i)
            self._rms_means(record, polls, ref[0])
            record.note = note or "waveforms off"
        elif window is not None:
            assert self._writer is not None
            writer = await self._writer
            if writer is None:
                ctx.log.warning("no COMTRADE writer: record %s not kept", record.record_id)
            else:
                record.comtrade = await asyncio.to_thread(
                    self._keep, ctx, writer, window, record.record_id
                )
        ctx.publish(Stream.FAULT, record, qos=1)
        ctx.publish(
            Stream.EVENT,
            DeviceEvent(
                device_id=ctx.device_id,
                kind=EventKind.FAULT_CAPTURED,
                occurred_at=ctx.clock.utcnow(),
                detail={
                    "record_id": record.record_id,
                    "record_kind": record.kind,
                    "trigger": kind,
                    "trigger_phases": record.trigger_phases,
                    "inception_ns": record.inception_ns,
                    "min_rms_v": record.min_rms_v,
                    "max_rms_a": record.max_rms_a,
                    "comtrade": record.comtrade,
                },
                app=NAME,
            ),
            qos=1,
        )
        ctx.state["captures"] = ctx.state.get("captures", 0) + 1
        return ""

    def _rms_record(
        self,
        ctx: Any,
        trigger: str,
        names: list[str],
        phases: Any,
        trigger_ns: int,
        ref: tuple[np.ndarray, np.ndarray],
        low_v: np.ndarray,
        high_i: np.ndarray,
    ) -> FaultRecord:
        """A sag log from the RMS polls (IEC 61000-4-30 class S style): what a meter without a
        sampling DAQ — or whose window failed — can tell the fault locator."""
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", ctx.device_id)
        return FaultRecord(
            record_id=f"{safe}_{trigger_ns}",
            kind="rms",
            device_id=ctx.device_id,
            point_id=ctx.device_id,
            trigger=trigger,  # type: ignore[arg-type]
            trigger_phases=names,  # type: ignore[arg-type]
            trigger_ns=trigger_ns,
            inception_ns=trigger_ns,
            inception_source="trigger",
            min_rms_v=[round(float(x), 4) for x in low_v],
            max_rms_a=[round(float(x), 4) for x in high_i],
            pre_rms_v=[round(float(x), 4) for x in ref[0]],
            pre_rms_a=[round(float(x), 4) for x in ref[1]],
            captured_at=ctx.clock.utcnow(),
        )

    def _cleared(
        self,
        v: np.ndarray,
        i: np.ndarray,
        last: np.ndarray | None,
        ref: tuple[np.ndarray, np.ndarray],
    ) -> bool:
        """The sag is over: the trigger condition is gone, or the voltage stepped by more than
        10 % of its reference from the previous poll inside the sag (the protection opened the
        feeder: the voltage of a meter behind it falls to zero and stays "undervoltage")."""
        if self.check(v, i, ref[0], ref[1]) is None:
            return True
        if last is None:
            return False
        return bool(np.any(np.abs(v - last) > 0.1 * np.maximum(ref[0], 1e-9)))

    def _rms_means(self, record: FaultRecord, polls: list[np.ndarray], ref_v: np.ndarray) -> None:
        """Averaged sag of an RMS-only record: the polls inside the sag without its first and
        last (a poll may straddle inception or clearing), against the smoothed reference, whose
        noise equals that of a mean over (2 − α)/α readings."""
        inner = polls[1:-1][: self.p["sag_max_cycles"]]
        if not inner:
            return
        a = self.p["reference_alpha"]
        record.sag_mean_v = [round(float(x), 5) for x in np.mean(inner, axis=0)]
        record.sag_cycles = len(inner)
        record.pre_mean_v = [round(float(x), 5) for x in ref_v]
        record.pre_cycles = max(1, round((2 - a) / a))

    # -- analysis -----------------------------------------------------------------------------
    def analyse(
        self,
        window: WaveformWindow,
        trigger: str,
        trigger_phases: list[str],
        trigger_ns: int,
        ctx: Any,
    ) -> FaultRecord:
        values = window.values()
        if window.primary_ratio:
            values = values * np.asarray(window.primary_ratio)[:, None]
        names = [c.lower() for c in window.channels]
        vk = [k for k, c in enumerate(names) if c.startswith("v")]
        ik = [k for k, c in enumerate(names) if c.startswith("i")]
        if not vk or len(vk) != len(ik):
            raise FaultCaptureError(
                f"window channels {window.channels}: need matching voltage and current channels"
            )
        fs, f0 = window.sampling_rate_hz, window.nominal_frequency_hz
        n = samples_per_cycle(fs, f0)
        total = window.n_samples
        ns_per = 1e9 / fs
        trigger_idx = round((trigger_ns - window.start_ns) / ns_per)
        found = None
        if window.inception_index is None:
            lsb = np.asarray(window.scale) * np.asarray(window.primary_ratio or 1.0)
            found = locate_inception(
                values, fs, f0, relative=self.p["inception_relative"], floor=4 * lsb
            )
            if found is not None and found > trigger_idx + 1:
                found = None  # a change after the trigger is the clearing, not the inception
        if window.inception_index is not None:
            inc, source = int(window.inception_index), "daq"
        elif found is not None:
            inc, source = found, "detected"
        else:
            inc, source = trigger_idx, "trigger"
        delay = round(self.p["during_delay_cycles"] * n)
        if inc - n < 0:
            raise FaultCaptureError(
                f"only {max(inc, 0)} samples before the inception, one cycle ({n}) is needed: raise pre_s"
            )
        if inc + delay + n > total:
            raise FaultCaptureError(
                f"only {total - inc} samples after the inception, {delay + n} are needed "
                "(delay + one cycle): raise post_s"
            )
        ph_pre = epoch_phasors(values, fs, f0, start=inc - n, first_sample_ns=window.start_ns)
        if self.p["during_method"] == "ls-dc":
            ph_dur = ls_phasors(values, fs, f0, start=inc + delay, first_sample_ns=window.start_ns)
        else:
            ph_dur = epoch_phasors(
                values, fs, f0, start=inc + delay, first_sample_ns=window.start_ns
            )
        # the sag lasts from inception until the fault is cleared (the next change)
        s0 = inc + delay  # two during-fault cycles are the clearing detector's reference
        clear = locate_inception(values[:, s0:], fs, f0, relative=0.5)
        end = s0 + clear if clear is not None else total
        seg = values[:, inc:end] if end - inc >= n else values[:, inc + delay : inc + delay + n]
        rms = half_cycle_rms(seg, fs, f0)
        pre_rms = np.sqrt(np.mean(values[:, inc - n : inc] ** 2, axis=1))
        # averaged readings: whole cycles only, none within half a cycle of the clearing (the
        # detector may mark it a little late), at most sag_max_cycles
        k_dur = min((end - n // 2 - s0) // n, self.p["sag_max_cycles"])
        sag_mean = self._cycle_rms(values[vk], s0, k_dur, n) if k_dur >= 1 else None
        k_pre = min(inc // n, self.p["pre_cycles"])
        pre_mean = self._cycle_rms(values[vk], inc - k_pre * n, k_pre, n)
        if trigger == "overcurrent":
            self._check_supplied(values, fs, f0, vk, ik, inc, delay, trigger_idx, pre_rms)
        faulted = self._faulted(trigger, ph_pre, ph_dur, vk, ik)
        phase_names = [names[k][1:] or "a" for k in vk]
        if faulted:
            trigger_phases = [phase_names[k] for k in faulted]
        codes = window.codes()
        half = 2 ** (window.adc_bits - 1)
        clipped = int(np.sum((codes <= -half) | (codes >= half - 1)))

        def pairs(z: np.ndarray, ks: list[int]) -> list[list[float]]:
            return [[float(z[k].real), float(z[k].imag)] for k in ks]

        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", ctx.device_id)
        inception_ns = window.start_ns + round(inc * ns_per)
        return FaultRecord(
            record_id=f"{safe}_{inception_ns}",
            kind="waveform",
            device_id=ctx.device_id,
            point_id=window.point_id,
            trigger=trigger,  # type: ignore[arg-type]
            trigger_phases=trigger_phases,  # type: ignore[arg-type]
            trigger_ns=trigger_ns,
            inception_ns=inception_ns,
            inception_source=source,  # type: ignore[arg-type]
            sampling_rate_hz=fs,
            nominal_frequency_hz=f0,
            window_start_ns=window.start_ns,
            n_samples=total,
            pre=PhasorSet(
                voltage=pairs(ph_pre, vk),
                current=pairs(ph_pre, ik),
                cycle_start_ns=window.start_ns + round((inc - n) * ns_per),
            ),
            during=PhasorSet(
                voltage=pairs(ph_dur, vk),
                current=pairs(ph_dur, ik),
                cycle_start_ns=window.start_ns + round((inc + delay) * ns_per),
                method=self.p["during_method"],
            ),
            min_rms_v=[round(float(rms[k].min()), 4) for k in vk],
            max_rms_a=[round(float(rms[k].max()), 4) for k in ik],
            pre_rms_v=[round(float(pre_rms[k]), 4) for k in vk],
            pre_rms_a=[round(float(pre_rms[k]), 4) for k in ik],
            sag_mean_v=None if sag_mean is None else [round(float(x), 5) for x in sag_mean],
            sag_cycles=k_dur if sag_mean is not None else None,
            pre_mean_v=[round(float(x), 5) for x in pre_mean],
            pre_cycles=k_pre,
            clipped_samples=clipped,
            captured_at=ctx.clock.utcnow(),
        )

    @staticmethod
    def _cycle_rms(x: np.ndarray, start: int, cycles: int, n: int) -> np.ndarray:
        """Mean over ``cycles`` consecutive one-cycle RMS readings from ``start``, per channel."""
        seg = x[:, start : start + cycles * n].reshape(x.shape[0], cycles, n)
        return np.sqrt(np.mean(seg**2, axis=2)).mean(axis=1)

    def _check_supplied(
        self,
        values: np.ndarray,
        fs: float,
        f0: float,
        vk: list[int],
        ik: list[int],
        inc: int,
        delay: int,
        trigger_idx: int,
        pre_rms: np.ndarray,
    ) -> None:
        """Raise :class:`Energisation` if, between the cycle before the inception and the
        trigger, there was a moment with no current on any phase (the change the window shows
        is the current stopping or starting, not a fault) and the voltage does not sag."""
        n = samples_per_cycle(fs, f0)
        total = values.shape[1]
        a, b = max(inc - n, 0), min(max(trigger_idx, inc) + 1, total)
        if b - a < n:
            return
        cur = half_cycle_rms(values[ik, a:b], fs, f0)
        floor = self.p["min_current_a"]
        dead = np.all(cur <= floor, axis=0)
        if not dead.any():
            return
        for s0 in (inc + delay, trigger_idx):
            if s0 >= 0 and s0 + n <= total:
                v = np.sqrt(np.mean(values[vk, s0 : s0 + n] ** 2, axis=1))
                if np.any(v < self.p["undervoltage_pu"] * pre_rms[vk]):
                    return  # switched onto a fault: the voltage sags with the current
        raise Energisation(
            f"no current on any phase (<= min_current_a {floor:g} A) for "
            f"{int(dead.sum()) / 2:g} cycle(s) before the trigger, and the voltage does not sag: "
            "the feeder was de-energised"
        )

    def _faulted(
        self, trigger: str, pre: np.ndarray, dur: np.ndarray, vk: list[int], ik: list[int]
    ) -> list[int]:
        """Phases that meet the trigger condition on the phasors (the RMS poll may have caught
        the transition half-way, when only some phases had crossed)."""
        p = self.p
        if trigger == "overcurrent":
            i0, i1 = np.abs(pre[ik]), np.abs(dur[ik])
            hit = (i1 > p["overcurrent_factor"] * i0) & (i1 > p["min_current_a"])
            if p["overcurrent_a"] is not None:
                hit |= i1 > p["overcurrent_a"]
        else:
            v0, v1 = np.abs(pre[vk]), np.abs(dur[vk])
            hit = v1 < p["undervoltage_pu"] * v0
            if p["undervoltage_v"] is not None:
                hit |= v1 < p["undervoltage_v"]
        return [int(k) for k in np.nonzero(hit)[0]]

    def _keep(self, ctx: Any, write_comtrade: Any, window: WaveformWindow, name: str) -> str:
        """Write the COMTRADE pair and drop the oldest records beyond ``max_records``."""
        directory = self.record_dir(ctx)
        fmt = "BINARY" if window.adc_bits <= 16 else "BINARY32"
        cfg, _ = write_comtrade(
            window, directory, name, station=ctx.device_id, device=window.point_id, fmt=fmt
        )
        records = sorted(directory.glob("*.cfg"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        for old in records[: max(0, len(records) - self.p["max_records"])]:
            old.unlink(missing_ok=True)
            old.with_suffix(".dat").unlink(missing_ok=True)
        return str(cfg)


def factory() -> FaultCaptureApp:
    return FaultCaptureApp()
