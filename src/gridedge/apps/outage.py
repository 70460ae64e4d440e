"""Outage/restore detection (seed 002 "Outage Detection" and "Restore Detection"; seed 003:
"Outage Detection for advanced OMS" on board the 3-SMA).

Polls the DAQ every ``poll_interval_s``. A phase is *lost* when its voltage stays below
``loss_pu`` × nominal for ``loss_polls`` consecutive polls, and *back* when it stays above
``restore_pu`` × nominal for ``restore_polls`` polls: two thresholds and two counts, so flicker
around one threshold cannot flood the broker with events.

Events on ``data/<id>/event`` (QoS 1, :class:`~gridedge.contracts.events.OutageDetail` as
detail):
- every phase lost → ``last-gasp`` (scope supply). Published at once: a real meter lives on its
  capacitor for a few hundred milliseconds, and the outbox takes the message without waiting.
- some phases lost (a blown fuse, a broken conductor) → ``alarm`` with ``alarm: phase-loss``
  (scope phase); a single-phase meter losing its phase is a supply loss.
- supply back (any phase returns after a last gasp) → ``restore`` (scope supply) with the outage
  duration and the phases still missing; a lost phase returning → ``restore`` (scope phase).

State (which phases are lost and since when) is kept in ``ctx.state``, so an outage that spans
an app restart still ends with one restore carrying the full duration.

A DAQ that is powered from the measured line (a PZEM-004T) stops answering when the supply goes:
with ``read_error_is_loss`` a failed read counts as a poll with zero volts.

Parameters: ``poll_interval_s`` (0.1), ``nominal_voltage_v`` (None: learned from the first
reading above 50 V), ``loss_pu`` (0.1), ``restore_pu`` (0.85), ``loss_polls`` (3),
``restore_polls`` (5), ``read_error_is_loss`` (false).
"""

from __future__ import annotations

from typing import Any

from gridedge.apps._loop import FailureLog, Ticker, ns
from gridedge.apps.params import ParamError, integer, number, unknown
from gridedge.contracts.events import OutageDetail
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.contracts.topics import Stream

NAME = "outage"
KNOWN = {
    "poll_interval_s",
    "nominal_voltage_v",
    "loss_pu",
    "restore_pu",
    "loss_polls",
    "restore_polls",
    "read_error_is_loss",
}
PHASES = ("a", "b", "c")
LEARN_MIN_V = 50.0


class OutageApp:
    def __init__(self) -> None:
        self._ticker = Ticker()
        self.poll_interval_s = 0.1
        self.nominal_v: float | None = None
        self.loss_pu = 0.1
        self.restore_pu = 0.85
        self.loss_polls = 3
        self.restore_polls = 5
        self.read_error_is_loss = False

    def _apply(self, params: dict[str, Any]) -> None:
        unknown(params, KNOWN, NAME)
        poll = number(params, "poll_interval_s", 0.1, gt=0, le=3600, app=NAME)
        nominal = number(params, "nominal_voltage_v", None, gt=0, app=NAME)
        loss = number(params, "loss_pu", 0.1, gt=0, le=1, app=NAME)
        restore = number(params, "restore_pu", 0.85, gt=0, le=1.5, app=NAME)
        assert poll is not None and loss is not None and restore is not None
        if restore <= loss:
            raise ParamError(
                f"{NAME} parameter 'restore_pu' ({restore:g}) must be above 'loss_pu' "
                f"({loss:g}): the gap between them is the hysteresis"
            )
        loss_polls = integer(params, "loss_polls", 3, ge=1, app=NAME)
        restore_polls = integer(params, "restore_polls", 5, ge=1, app=NAME)
        flag = params.get("read_error_is_loss", False)
        if not isinstance(flag, bool):
            raise ParamError(f"{NAME} parameter 'read_error_is_loss' must be true or false")
        self.poll_interval_s, self.loss_pu, self.restore_pu = poll, loss, restore
        self.loss_polls, self.restore_polls = loss_polls, restore_polls
        self.read_error_is_loss = flag
        if nominal is not None:
            self.nominal_v = nominal

    def on_params(self, params: dict[str, Any]) -> None:
        self._apply(params)
        self._ticker.poke()

    async def run(self, ctx: Any) -> None:
        self._apply(ctx.params)
        if ctx.daq is None:
            raise RuntimeError("outage detection needs a DAQ backend, and this node has none")
        if self.nominal_v is None and ctx.state.get("nominal_v"):
            self.nominal_v = float(ctx.state["nominal_v"])
        failures = FailureLog(ctx.log, "reading the DAQ")
        st = ctx.state
        st.setdefault("lost_since", {})  # phase -> ns the loss was first seen
        st.setdefault("supply_lost_since", None)
        below: dict[str, int] = {}
        above: dict[str, int] = {}
        due = ctx.clock.now_ns()
        while True:
            volts: list[float] | None = None
            phases: tuple[str, ...] = PHASES
            try:
                reading = await ctx.daq.read_rms()
                volts = list(reading.voltage_v)
                if len(volts) == 1:
                    phases = (reading.phase or st.get("phase") or "a",)
                    st["phase"] = phases[0]
                failures.succeeded()
            except NotImplementedError:
                raise
            except Exception as exc:
                failures.failed(exc)
                if self.read_error_is_loss:
                    known = st.get("phases") or list(PHASES)
                    phases = tuple(known)
                    volts = [0.0] * len(phases)
            if volts is not None:
                st["phases"] = list(phases)
                self._learn(ctx, volts)
                if self.nominal_v is not None:
                    self._step(ctx, dict(zip(phases, volts, strict=True)), below, above)
            due += ns(self.poll_interval_s)
            if due <= ctx.clock.now_ns():
                due = ctx.clock.now_ns() + ns(self.poll_interval_s)
            while not await self._ticker.wait_until(ctx, due):
                due = ctx.clock.now_ns() + ns(self.poll_interval_s)

    def _learn(self, ctx: Any, volts: list[float]) -> None:
        if self.nominal_v is None:
            top = max(volts)
            if top > LEARN_MIN_V:
                self.nominal_v = top
                ctx.state["nominal_v"] = top
                ctx.log.info("outage: nominal voltage learned as %.1f V", top)

    def _step(
        self, ctx: Any, volts: dict[str, float], below: dict[str, int], above: dict[str, int]
    ) -> None:
        assert self.nominal_v is not None
        st = ctx.state
        lost: dict[str, int] = st["lost_since"]
        now = ctx.clock.now_ns()
        loss_v, back_v = self.loss_pu * self.nominal_v, self.restore_pu * self.nominal_v
        newly_lost: list[str] = []
        newly_back: list[str] = []
        for ph, v in volts.items():
            if ph in lost:
                above[ph] = above.get(ph, 0) + 1 if v >= back_v else 0
                if above[ph] >= self.restore_polls:
                    newly_back.append(ph)
                    above[ph] = 0
            else:
                below[ph] = below.get(ph, 0) + 1 if v < loss_v else 0
                if below[ph] >= self.loss_polls:
                    newly_lost.append(ph)
                    below[ph] = 0
                    # the loss began at the first low poll, not at the confirming one
                    lost[ph] = now - int((self.loss_polls - 1) * self.poll_interval_s * 1e9)
        reading = [round(volts[p], 3) for p in volts]
        all_phases = list(volts)
        if newly_lost:
            if all(p in lost for p in all_phases) and st["supply_lost_since"] is None:
                st["supply_lost_since"] = min(lost[p] for p in all_phases)
                self._event(
                    ctx,
                    EventKind.LAST_GASP,
                    OutageDetail(
                        scope="supply",
                        phases=all_phases,  # type: ignore[arg-type]
                        voltage_v=reading,
                        lost_since_ns=st["supply_lost_since"],
                        threshold_v=round(loss_v, 3),
                    ),
                )
            elif st["supply_lost_since"] is None:
                self._event(
                    ctx,
                    EventKind.ALARM,
                    OutageDetail(
                        scope="phase",
                        phases=newly_lost,  # type: ignore[arg-type]
                        phases_still_lost=sorted(lost),  # type: ignore[arg-type]
                        voltage_v=reading,
                        lost_since_ns=min(lost[p] for p in newly_lost),
                        threshold_v=round(loss_v, 3),
                    ),
                    alarm="phase-loss",
                )
        if newly_back:
            since = {p: lost.pop(p) for p in newly_back}
            supply_since = st["supply_lost_since"]
            if supply_since is not None:
                st["supply_lost_since"] = None
                self._event(
                    ctx,
                    EventKind.RESTORE,
                    OutageDetail(
                        scope="supply",
                        phases=newly_back,  # type: ignore[arg-type]
                        phases_still_lost=sorted(lost),  # type: ignore[arg-type]
                        voltage_v=reading,
                        lost_since_ns=supply_since,
                        duration_s=round(max(now - supply_since, 0) / 1e9, 3),
                        threshold_v=round(back_v, 3),
                    ),
                )
            else:
                first = min(since.values())
                self._event(
                    ctx,
                    EventKind.RESTORE,
                    OutageDetail(
                        scope="phase",
                        phases=newly_back,  # type: ignore[arg-type]
                        phases_still_lost=sorted(lost),  # type: ignore[arg-type]
                        voltage_v=reading,
                        lost_since_ns=first,
                        duration_s=round(max(now - first, 0) / 1e9, 3),
                        threshold_v=round(back_v, 3),
                    ),
                )

    def _event(self, ctx: Any, kind: EventKind, detail: OutageDetail, **extra: Any) -> None:
        body = detail.model_dump(mode="json")
        body.update(extra)
        ctx.publish(
            Stream.EVENT,
            DeviceEvent(
                device_id=ctx.device_id,
                kind=kind,
                occurred_at=ctx.clock.utcnow(),
                detail=body,
                app=NAME,
            ),
            qos=1,
        )
        ctx.state["events"] = ctx.state.get("events", 0) + 1
        ctx.log.info("outage: %s %s %s", kind.value, detail.scope, detail.phases)


def factory() -> OutageApp:
    return OutageApp()
