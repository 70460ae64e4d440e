"""Telemetry app: the meter's periodic reading (seed 002 "telemetry", seed 001 §III-B).

Every ``interval_s`` it reads the DAQ's RMS values and publishes a
:class:`~gridedge.contracts.telemetry.Telemetry` on ``data/<id>/telemetry`` (QoS 1). The sequence
number lives in ``ctx.state`` so it continues across restarts and updates of the app: a receiver
counts gaps in it to measure loss, and a reset would read as thousands of lost messages.

Energy: a backend with its own register (PZEM-004T) is passed through; otherwise the app
integrates imported active power (trapezoid between readings, negative power counts 0) into a
register kept in ``ctx.state``. A gap longer than ``max_gap_s`` (app stopped, DAQ failing) is not
integrated: energy that was not measured is not invented.

Parameters: ``interval_s`` (default 1.0, > 0), ``max_gap_s`` (default 3 × interval, at least 5 s).

The payload is built by :func:`payload_json` — byte for byte what ``Telemetry.to_json()`` of the
numbered reading gives, without copying the model (a fleet process publishes thousands a second,
and ``model_copy`` + ``model_dump_json`` cost more than the rest of the reading).
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from gridedge.apps._loop import FailureLog, Ticker, ns
from gridedge.apps.params import ParamError, number, unknown
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.topics import Stream

NAME = "telemetry"
KNOWN = {"interval_s", "max_gap_s"}


class TelemetryApp:
    def __init__(self) -> None:
        self.interval_s = 1.0
        self.max_gap_s: float | None = None
        self._ticker = Ticker()
        self._timer: Any = None  # the runtime's Periodic, while running on one
        self.log_bad_params: str | None = None

    # -- parameters ---------------------------------------------------------------------------
    def _apply(self, params: dict[str, Any]) -> None:
        unknown(params, KNOWN, NAME)
        interval = number(params, "interval_s", 1.0, gt=0, le=86400, app=NAME)
        gap = number(params, "max_gap_s", None, gt=0, app=NAME)
        assert interval is not None
        self.interval_s, self.max_gap_s = interval, gap

    def on_params(self, params: dict[str, Any]) -> None:
        """Re-parameterise without a restart; a bad set is refused and the old one kept."""
        self._apply(params)
        if self._timer is not None:
            self._timer.set_interval(self.interval_s)
        self._ticker.poke()

    def gap_limit_s(self) -> float:
        return self.max_gap_s if self.max_gap_s is not None else max(3 * self.interval_s, 5.0)

    # -- run ----------------------------------------------------------------------------------
    async def run(self, ctx: Any) -> None:
        self._apply(ctx.params)
        if ctx.daq is None:
            raise RuntimeError("telemetry needs a DAQ backend, and this node has none")
        failures = FailureLog(ctx.log, "reading the DAQ")
        ctx.state.setdefault("next_seq", 0)
        every = getattr(ctx, "every", None)
        if every is None:  # a context without the runtime's shared timer: a loop of its own
            await self._run_sleeping(ctx, failures)
            return
        # the node runtime's periodic timer: one loop timer for every app of the node's event
        # loop (in a fleet, 5,000 meters), instead of a sleeping task each
        timer = self._timer = every(self.interval_s)
        seen_skips = 0
        try:
            async for _ in timer:
                if timer.skipped != seen_skips:
                    ctx.state["skipped_ticks"] = (
                        ctx.state.get("skipped_ticks", 0) + timer.skipped - seen_skips
                    )
                    seen_skips = timer.skipped
                await self._read_and_publish(ctx, failures)
        finally:
            self._timer = None
            timer.close()

    async def _read_and_publish(self, ctx: Any, failures: FailureLog) -> None:
        try:
            reading = await ctx.daq.read_rms()
        except NotImplementedError:
            raise
        except Exception as exc:  # a failing DAQ is logged once, the app keeps polling
            failures.failed(exc)
            ctx.state["read_errors"] = ctx.state.get("read_errors", 0) + 1
        else:
            failures.succeeded()
            ctx.publish(Stream.TELEMETRY, await self._message(ctx, reading), qos=1)

    async def _run_sleeping(self, ctx: Any, failures: FailureLog) -> None:
        due = ctx.clock.now_ns()
        while True:
            await self._read_and_publish(ctx, failures)
            last = due
            step = ns(self.interval_s)
            due = last + step
            now = ctx.clock.now_ns()
            if due <= now:  # fell behind (slow DAQ, paused node): skip ticks, do not burst
                skipped = (now - due) // step + 1
                ctx.state["skipped_ticks"] = ctx.state.get("skipped_ticks", 0) + skipped
                due = last + (skipped + 1) * step
            while not await self._ticker.wait_until(ctx, due):
                # new parameters: the next reading is one *new* interval after the last one
                due = max(last + ns(self.interval_s), ctx.clock.now_ns())

    async def _message(self, ctx: Any, reading: Telemetry) -> bytes:
        now_ns = ctx.clock.now_ns()
        energy = reading.energy_wh
        if energy is None:
            energy = self._integrate(ctx.state, reading, now_ns)
        relay = reading.relay_closed
        relay_state = getattr(ctx.actuators, "relay_state", None)
        if relay is None and relay_state is not None:
            try:
                relay = await relay_state()
            except Exception:  # the reading goes out without the relay state
                relay = None
        seq = int(ctx.state.get("next_seq", 0))
        ctx.state["next_seq"] = seq + 1
        return payload_json(
            reading,
            device_id=ctx.device_id,
            seq=seq,
            energy_wh=round(energy, 6) if energy is not None else None,
            relay_closed=relay,
        )

    def _integrate(self, state: dict[str, Any], reading: Telemetry, now_ns: int) -> float:
        p_now = sum(reading.active_power_w or [])
        energy = float(state.get("energy_wh", 0.0))
        last_ns, last_p = state.get("energy_last_ns"), state.get("energy_last_p_w")
        if last_ns is not None and last_p is not None:
            dt = (now_ns - int(last_ns)) / 1e9
            if 0 < dt <= self.gap_limit_s():
                energy += max((float(last_p) + p_now) / 2.0, 0.0) * dt / 3600.0
        state["energy_wh"] = energy
        state["energy_last_ns"] = now_ns
        state["energy_last_p_w"] = p_now
        return energy


# (JSON name, attribute) of every Telemetry field, in the model's order (its JSON's key order)
_FIELDS = [(f.alias or name, name) for name, f in Telemetry.model_fields.items()]
_KEY = dict((name, key) for key, name in _FIELDS)


def payload_json(reading: Telemetry, **update: Any) -> bytes:
    """``reading.model_copy(update=update).to_json()``, at a fraction of the cost.

    pydantic keeps a model's field values in its ``__dict__``; the numbered reading is that dict
    with the updates, under the fields' JSON names, serialised by pydantic-core (the same Rust
    serialiser ``model_dump_json`` uses, so floats, datetimes and NaN come out identically).
    Anything unusual — a Telemetry subclass, a value pydantic-core cannot serialise on its own —
    takes the model's own path."""
    if type(reading) is Telemetry:
        values = reading.__dict__
        try:
            doc = {key: values[name] for key, name in _FIELDS}
            for name, value in update.items():
                doc[_KEY[name]] = value
            return pydantic_core.to_json(doc, inf_nan_mode="null")
        except (KeyError, pydantic_core.PydanticSerializationError):
            pass
    return reading.model_copy(update=update).to_json()


def factory() -> TelemetryApp:
    return TelemetryApp()


__all__ = ["NAME", "ParamError", "TelemetryApp", "factory"]
