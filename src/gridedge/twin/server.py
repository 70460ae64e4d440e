"""The twin's network interface: meter nodes in other processes sample it and operate its
switches and relays as a 3SMA does its DAQ board and relay (the Opal-RT's analog outputs and
Ethernet-connected switches of seed 001 §V).

``gridedge twin serve --grid NAME`` runs it (127.0.0.1 by default); :class:`TwinServer` runs it in
a background thread for tests, benchmarks and the demo. All twin access happens on the server's
event loop (the Twin is not thread-safe); a small ticker lets protection trip on time and fans
the twin's event log out to ``/v1/events`` subscribers as server-sent events.

Every answer ≥ 400 is an ``application/problem+json`` :class:`~gridedge.contracts.common.Problem`
whose ``errors`` name the refused fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import uvicorn
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridedge.clock import Clock, ClockMode
from gridedge.contracts.common import FieldError, Problem
from gridedge.contracts.twin import (
    FaultInfo,
    FaultRequest,
    GridStatus,
    PhaseCommand,
    PhaseState,
    PointInfo,
    RelayCommand,
    RelayState,
    SwitchCommand,
    SwitchState,
    TwinEvent,
    TwinEventKind,
)
from gridedge.twin.profiles import ProfileDriver, TwinLoadScaler
from gridedge.twin.state import GridState, MeasurementPoint
from gridedge.twin.telemetry import MeterAccuracy, customer_telemetry, telemetry_from_state
from gridedge.twin.waveforms import (
    MAX_RATE_HZ,
    MAX_WINDOW_S,
    DaqSpec,
    Segment,
    inception_at_angle,
    synthesize,
)
from gridedge.webthread import UvicornThread

if TYPE_CHECKING:
    from gridedge.twin.model import Twin

log = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"
EVENT_KIND = {
    "fault": TwinEventKind.FAULT_INCEPTION,
    "trip": TwinEventKind.BREAKER_TRIP,
    "clear": TwinEventKind.FAULT_CLEARED,
    "operate": TwinEventKind.SWITCH_CHANGED,
    "relay": TwinEventKind.RELAY_CHANGED,
    "phase": TwinEventKind.PHASE_CHANGED,
    "load": TwinEventKind.PROFILE_STEP,
}


class ApiProblem(Exception):
    def __init__(self, status: int, title: str, errors: list[tuple[str, str]]) -> None:
        self.status, self.title, self.errors = status, title, errors
        super().__init__(title)


def problem_response(status: int, title: str, errors: list[tuple[str, str]]) -> JSONResponse:
    body = Problem(
        title=title,
        status=status,
        detail="; ".join(f"{f}: {r}" for f, r in errors),
        errors=[FieldError(field=f, reason=r) for f, r in errors],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_TYPE)


@dataclass
class TwinServiceOptions:
    """Meter-side settings shared by every point (a fleet of identical 3SMAs)."""

    daq: DaqSpec = field(default_factory=DaqSpec)
    accuracy: MeterAccuracy = field(default_factory=MeterAccuracy)
    seed: int = 0
    tick_s: float = 0.01  # wall seconds between protection/event checks
    profiles: ProfileDriver | None = None
    profile_step_s: float = 900.0  # simulated seconds between profile updates


def _detail(ev: Any) -> dict[str, object]:
    out: dict[str, object] = {"target": ev.target}
    for k, v in ev.detail.items():
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out[k] = dataclasses.asdict(v)
        elif isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        else:
            out[k] = str(v)
    return out


class TwinService:
    """A Twin behind the network interface: timeline of states, events, meter settings."""

    def __init__(self, twin: Twin, options: TwinServiceOptions | None = None) -> None:
        self.twin = twin
        self.clock: Clock = twin.clock
        self.opt = options or TwinServiceOptions()
        self.rng = np.random.default_rng(self.opt.seed)
        self.points: dict[str, MeasurementPoint] = {p.id: p for p in twin.measurement_points}
        self._switch_points: dict[str, MeasurementPoint] = {}
        self.events: list[TwinEvent] = []
        self._seen = 0
        self._subscribers: set[asyncio.Queue[TwinEvent]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._scaler: TwinLoadScaler | None = None
        self._next_profile_ns: int | None = None
        twin.state  # noqa: B018 - solve once so the timeline starts with the pre-fault state

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.opt.profiles is not None:
            self._scaler = TwinLoadScaler(self.twin, self.opt.profiles)
            self.apply_profiles()
        self._ticker = asyncio.create_task(self._tick_loop(), name="twin-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick_loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # pragma: no cover - logged once per failure, loop survives
                log.exception("twin tick failed")
            await asyncio.sleep(self.opt.tick_s)

    def tick(self) -> None:
        """Let protection act (the Twin trips lazily when its state is read), step profiles,
        publish new events."""
        _ = self.twin.state
        if self._next_profile_ns is not None and self.clock.now_ns() >= self._next_profile_ns:
            self.apply_profiles()
        self._publish_new()

    def apply_profiles(self) -> None:
        """Scale every profiled load to its nominal × factor at the present simulated time."""
        if self._scaler is None:
            return
        now = self.clock.now_ns()
        total = self._scaler.apply(now)
        self._next_profile_ns = now + int(self.opt.profile_step_s * 1e9)
        n = len(self._scaler.base)
        self._emit(TwinEventKind.PROFILE_STEP, now, {"loads": n, "total_p_w": total})

    def _emit(self, kind: TwinEventKind, time_ns: int, detail: dict[str, object]) -> None:
        msg = TwinEvent(seq=len(self.events) + 1, kind=kind, time_ns=time_ns, detail=detail)
        self.events.append(msg)
        for q in list(self._subscribers):
            q.put_nowait(msg)

    def _publish_new(self) -> None:
        new = self.twin.events[self._seen :]
        self._seen = len(self.twin.events)
        for ev in new:
            kind = EVENT_KIND.get(ev.kind, TwinEventKind.SWITCH_CHANGED)
            self._emit(kind, int(ev.time_ns), _detail(ev))

    def subscribe(self) -> asyncio.Queue[TwinEvent]:
        q: asyncio.Queue[TwinEvent] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[TwinEvent]) -> None:
        self._subscribers.discard(q)

    # -- lookups -------------------------------------------------------------------------
    def point(self, point_id: str) -> MeasurementPoint:
        if point_id in self._switch_points:
            return self._switch_points[point_id]
        if point_id not in self.points and (p := self.twin.switch_point(point_id)):
            # a switch branch is also a point: its field unit's. Made on first use, so the
            # grid's own point list stays what the grid defines.
            self._switch_points[point_id] = p
            return p
        if point_id not in self.points:
            raise ApiProblem(
                404,
                "Unknown measurement point",
                [("point_id", f"{point_id!r} is not a point of {self.twin.name!r} "
                  f"(known: {', '.join(sorted(self.points))}, or any switch branch id)")],
            )  # fmt: skip
        return self.points[point_id]

    def check_switch(self, switch_id: str) -> None:
        if switch_id not in self.twin.switch_ids:
            raise ApiProblem(
                404,
                "Unknown switch",
                [("switch_id", f"{switch_id!r} is not a switch of grid {self.twin.name!r}")],
            )

    def check_customer(self, customer_id: str) -> None:
        if customer_id not in self.twin.customers:
            raise ApiProblem(
                404,
                "Unknown customer",
                [("customer_id", f"{customer_id!r} is not a customer of {self.twin.name!r}")],
            )

    def latest_inception_ns(self) -> int | None:
        for ev in reversed(self.twin.events):
            if ev.kind == "fault":
                return int(ev.time_ns)
        return None

    # -- reading -------------------------------------------------------------------------
    def status(self) -> GridStatus:
        st = self.twin.state
        return GridStatus(
            grid=self.twin.name,
            time_ns=self.clock.now_ns(),
            faulted=bool(st.faulted),
            radial=self.twin.is_radial(),
            energised={n: bool(e) for n, e in zip(st.node_ids, st.energised, strict=True)},
            switches=self.twin.switch_states(),
            fault=self.fault_info(),
        )

    def fault_info(self) -> FaultInfo | None:
        f = self.twin.active_fault
        if f is None:
            return None
        inc = self.latest_inception_ns() or 0
        trips = [ev for ev in self.twin.events if ev.kind == "trip" and ev.time_ns >= inc]
        return FaultInfo(
            branch_id=f.branch_id,
            fraction=f.fraction,
            kind=f.kind,
            phases=str(f.phases),
            r_f_ohm=f.r_f_ohm,
            x_f_ohm=f.x_f_ohm,
            inception_ns=inc,
            trip_ns=int(trips[0].time_ns) if trips else None,
            tripped=[ev.target for ev in trips],
        )

    def telemetry(self, point_id: str, device_id: str | None) -> Any:
        p = self.point(point_id)
        cust = self.twin.customers.get(point_id)
        if cust is not None:
            return customer_telemetry(
                cust.id,
                cust.node_id,
                self.twin.customer_phase(cust.id),
                cust.p_w,
                cust.q_var,
                bool(cust.relay_on),
                self.twin.state,
                device_id=device_id or cust.id,
                accuracy=self.opt.accuracy,
                rng=self.rng,
                ts=self.clock.utcnow(),
            )
        return telemetry_from_state(
            p,
            self.twin.state,
            device_id=device_id,
            accuracy=self.opt.accuracy,
            rng=self.rng,
            ts=self.clock.utcnow(),
        )

    def segments(self, start_ns: int, end_ns: int) -> list[Segment]:
        """The states that held over [start, end], with how each transition happened."""
        hist = self.twin.history
        first: GridState = hist[0][1]
        for t, st in hist:
            if t <= start_ns:
                first = st
        segs = [Segment(start_ns, first)]
        by_time: dict[int, GridState] = {}
        for t, st in hist:
            if start_ns < t <= end_ns:
                by_time[t] = st  # the last state computed at an instant is the one that held
        trips = {int(ev.time_ns) for ev in self.twin.events if ev.kind in ("trip", "clear")}
        faults = sorted(int(ev.time_ns) for ev in self.twin.events if ev.kind == "fault")
        prev, prev_t = first, start_ns
        for t in sorted(by_time):
            st = by_time[t]
            if st.faulted and not prev.faulted:
                kind = "fault"
                # the solver stamps the during-fault state when it finishes; the fault began
                # at the logged inception instant
                inc = [f for f in faults if prev_t < f <= t]
                t = inc[-1] if inc else t
            elif t in trips or (prev.faulted and not st.faulted):
                kind = "interrupt"
            else:
                kind = "step"
            segs.append(Segment(t, st, kind))  # type: ignore[arg-type]
            prev, prev_t = st, t
        return segs

    async def window(
        self,
        point_id: str,
        pre_s: float,
        post_s: float,
        around: str,
        around_ns: int | None,
        rate_hz: float | None,
    ) -> Any:
        p = self.point(point_id)
        if point_id in self.twin.customers:
            raise ApiProblem(
                422,
                "No waveforms at this point",
                [("point_id", f"{point_id!r} is a single-phase customer meter; it reports RMS "
                  "telemetry only")],
            )  # fmt: skip
        errors: list[tuple[str, str]] = []
        if pre_s + post_s > MAX_WINDOW_S:
            errors.append(("post_s", f"pre_s + post_s = {pre_s + post_s:g} s exceeds "
                           f"the {MAX_WINDOW_S:g} s a window may span"))  # fmt: skip
        if pre_s + post_s <= 0:
            errors.append(("post_s", "pre_s + post_s must be > 0"))
        if rate_hz is not None and round(rate_hz / self.twin.state.frequency_hz) < 4:
            errors.append(("rate_hz", f"{rate_hz:g} Hz gives fewer than 4 samples per cycle"))
        if errors:
            raise ApiProblem(422, "Invalid window request", errors)
        if around_ns is not None:
            centre = around_ns
        elif around == "now":
            centre = self.clock.now_ns()
        else:
            inc = self.latest_inception_ns()
            if inc is None and around == "fault":
                raise ApiProblem(
                    404, "No fault recorded", [("around", "the twin has seen no fault yet")]
                )
            centre = inc if inc is not None else self.clock.now_ns()
        start = centre - round(pre_s * 1e9)
        end = centre + round(post_s * 1e9)
        now = self.clock.now_ns()
        if end - now > (pre_s + post_s) * 1e9 + 1e6:
            raise ApiProblem(
                422,
                "Window lies in the future",
                [("around_ns", f"the window starts {(start - now) / 1e9:.3f} s after the twin's "
                  f"clock ({now} ns); is the node's clock in step with the twin's (GET /v1/clock)?")],
            )  # fmt: skip
        if end > now:
            if self.clock.mode is ClockMode.STEPPED:
                raise ApiProblem(
                    409,
                    "Window ends in the future",
                    [("post_s", f"the window ends {(end - now) / 1e9:.3f} s after the twin's "
                      "stepped clock; advance the clock (POST /v1/clock/advance) first")],
                )  # fmt: skip
            # a DAQ record is complete only once its post-trigger time has passed
            await self.clock.sleep((end - now) / 1e9)
            self.tick()
        daq = self.opt.daq
        if rate_hz is not None:
            daq = dataclasses.replace(daq, rate_hz=rate_hz)
        segs = self.segments(start, end)
        inc = self.latest_inception_ns()
        syn = synthesize(
            p,
            segs,
            start_ns=start,
            duration_s=pre_s + post_s,
            daq=daq,
            inception_ns=inc if inc is not None and start <= inc < end else None,
            rng=self.rng,
        )
        return syn

    # -- acting --------------------------------------------------------------------------
    def operate(self, switch_id: str, closed: bool) -> SwitchState:
        self.check_switch(switch_id)
        self.twin.operate(switch_id, closed)
        self._publish_new()
        return SwitchState(
            switch_id=switch_id,
            closed=self.twin.switch_states()[switch_id],
            role=self.twin.switch_role(switch_id),
        )

    def set_relay(self, customer_id: str, closed: bool) -> RelayState:
        self.check_customer(customer_id)
        self.twin.set_relay(customer_id, closed)
        self._publish_new()
        return RelayState(
            customer_id=customer_id, closed=bool(self.twin.customers[customer_id].relay_on)
        )

    def select_phase(self, customer_id: str, phase: str) -> PhaseState:
        self.check_customer(customer_id)
        self.twin.select_phase(customer_id, phase)
        self._publish_new()
        return PhaseState(customer_id=customer_id, phase=self.twin.customer_phase(customer_id))  # type: ignore[arg-type]

    async def apply_fault(self, req: FaultRequest) -> FaultInfo:
        from gridedge.twin.faults import Fault

        if req.branch_id not in self.twin.branch_ids:
            raise ApiProblem(
                404,
                "Unknown branch",
                [("branch_id", f"{req.branch_id!r} is not a branch of {self.twin.name!r}")],
            )
        fault = Fault(
            branch_id=req.branch_id,
            fraction=req.fraction,
            kind=req.kind,
            phases=req.phases,
            r_f_ohm=req.r_f_ohm,
            x_f_ohm=req.x_f_ohm,
        )
        if self.twin.active_fault is not None:
            raise ApiProblem(
                409, "Fault already active", [("branch_id", "clear the active fault first")]
            )
        if req.inception_angle_deg is not None:
            # Wait for the requested point on wave of the first point's phase-a voltage
            # (exact on a stepped clock; within the event loop's jitter on a wall clock).
            ref = next(iter(self.points.values()))
            now = self.clock.now_ns()
            t = inception_at_angle(ref, self.twin.state, now, req.inception_angle_deg)
            if self.clock.mode is ClockMode.STEPPED:
                self.clock.advance((t - now) / 1e9)
            else:
                await self.clock.sleep((t - now) / 1e9)
        self.twin.apply_fault(fault)
        self._publish_new()
        info = self.fault_info()
        assert info is not None
        return info

    def clear_fault(self) -> GridStatus:
        self.twin.clear_fault()
        self._publish_new()
        return self.status()

    def advance(self, seconds: float) -> GridStatus:
        if self.clock.mode is not ClockMode.STEPPED:
            raise ApiProblem(
                409,
                "Clock is not stepped",
                [("seconds", f"the twin's clock is {self.clock.mode.value}; it moves by itself")],
            )
        self.twin.advance(seconds)
        self.tick()
        return self.status()


def create_app(service: TwinService) -> FastAPI:
    from gridedge.twin.errors import LoadflowNotConverged, TwinError

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="gridedge twin",
        description=(
            f"Network interface of the grid digital twin {service.twin.name!r}: measurement "
            "points (telemetry, sampled windows), switches, customer relays and phase "
            "selectors, faults, event stream. Errors are `application/problem+json` bodies "
            "whose `errors` name each field."
        ),
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.errors)

    @app.exception_handler(TwinError)
    async def _twin_error(_: Request, exc: TwinError) -> JSONResponse:
        return problem_response(422, "Refused by the twin", [(exc.field, exc.reason)])

    @app.exception_handler(LoadflowNotConverged)
    async def _diverged(_: Request, exc: LoadflowNotConverged) -> JSONResponse:
        return problem_response(409, "Power flow did not converge", [("grid", exc.detail)])

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path"):
                loc = loc[1:] or loc[:1]
            errors.append((".".join(loc) or "body", str(e.get("msg", "invalid"))))
        return problem_response(422, "Invalid request", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), [("path", str(exc.detail))])

    S = service

    @app.get("/v1/health")
    async def health() -> dict[str, object]:
        return {"grid": S.twin.name, "time_ns": S.clock.now_ns(), "clock": S.clock.mode.value}

    @app.get("/v1/points", response_model=list[PointInfo])
    async def points() -> list[PointInfo]:
        return [
            PointInfo(
                id=p.id,
                node_id=p.node_id,
                branch_id=p.branch_id,
                end=p.end,  # type: ignore[arg-type]
                vt_ratio=p.vt_ratio,
                ct_ratio=p.ct_ratio,
                description=p.description,
            )
            for p in S.points.values()
        ]

    @app.get("/v1/points/{point_id}/telemetry")
    async def telemetry(point_id: str, device_id: str | None = None) -> Response:
        t = S.telemetry(point_id, device_id)
        return Response(t.to_json(), media_type="application/json")

    @app.get("/v1/points/{point_id}/window")
    async def window(
        point_id: str,
        pre_s: Annotated[float, Query(ge=0.0, le=MAX_WINDOW_S)] = 0.5,
        post_s: Annotated[float, Query(ge=0.0, le=MAX_WINDOW_S)] = 0.5,
        around: Annotated[str, Query(pattern="^(latest|now|fault)$")] = "latest",
        around_ns: int | None = None,
        rate_hz: Annotated[float | None, Query(gt=0.0, le=MAX_RATE_HZ)] = None,
    ) -> Response:
        syn = await S.window(point_id, pre_s, post_s, around, around_ns, rate_hz)
        return Response(
            syn.window.to_json(),
            media_type="application/json",
            headers={"X-Clipped-Samples": ",".join(str(int(c)) for c in syn.clipped)},
        )

    @app.get("/v1/status", response_model=GridStatus)
    async def status() -> GridStatus:
        return S.status()

    @app.get("/v1/switches", response_model=list[SwitchState])
    async def switches() -> list[SwitchState]:
        return [
            SwitchState(switch_id=s, closed=c, role=S.twin.switch_role(s))
            for s, c in S.twin.switch_states().items()
        ]

    @app.post("/v1/switches/{switch_id}", response_model=SwitchState)
    async def operate(switch_id: str, cmd: SwitchCommand) -> SwitchState:
        return S.operate(switch_id, cmd.closed)

    @app.post("/v1/customers/{customer_id}/relay", response_model=RelayState)
    async def relay(customer_id: str, cmd: RelayCommand) -> RelayState:
        return S.set_relay(customer_id, cmd.closed)

    @app.post("/v1/customers/{customer_id}/phase", response_model=PhaseState)
    async def phase(customer_id: str, cmd: PhaseCommand) -> PhaseState:
        return S.select_phase(customer_id, cmd.phase)

    @app.post("/v1/fault", response_model=FaultInfo)
    async def fault(req: FaultRequest) -> FaultInfo:
        return await S.apply_fault(req)

    @app.delete("/v1/fault", response_model=GridStatus)
    async def clear() -> GridStatus:
        return S.clear_fault()

    @app.get("/v1/clock")
    async def clock() -> dict[str, object]:
        return {"mode": S.clock.mode.value, "now_ns": S.clock.now_ns(), "speed": S.clock.speed}

    @app.post("/v1/clock/advance", response_model=GridStatus)
    async def advance(
        seconds: Annotated[float, Body(embed=True, ge=0.0, le=86400.0)],
    ) -> GridStatus:
        return S.advance(seconds)

    @app.get("/v1/events/log", response_model=list[TwinEvent])
    async def events_log(since: Annotated[int, Query(ge=0)] = 0) -> list[TwinEvent]:
        S.tick()
        return [e for e in S.events if e.seq > since]

    @app.get("/v1/events", response_class=EventSourceResponse)
    async def events(
        since: Annotated[int | None, Query(ge=0)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        q = S.subscribe()
        try:
            backlog = [e for e in S.events if since is not None and e.seq > since]
            last = backlog[-1].seq if backlog else (since or 0)
            for e in backlog:
                yield ServerSentEvent(raw_data=e.to_json().decode(), id=str(e.seq), event=e.kind)
            while True:
                try:
                    e = await asyncio.wait_for(q.get(), timeout=15.0)
                except TimeoutError:
                    yield ServerSentEvent(comment="keep-alive")
                    continue
                if e.seq <= last:
                    continue
                last = e.seq
                yield ServerSentEvent(raw_data=e.to_json().decode(), id=str(e.seq), event=e.kind)
        finally:
            S.unsubscribe(q)

    return app


def make_clock(mode: str = "wall", speed: float = 1.0, start_ns: int | None = None) -> Clock:
    return Clock(mode, speed=speed, start_ns=start_ns if start_ns is not None else time.time_ns())


@dataclass
class TwinServer:
    """The twin's network interface in a background thread (tests, benchmarks, the demo)."""

    service: TwinService
    host: str = "127.0.0.1"
    port: int = 8300
    log_level: str = "warning"
    _runner: UvicornThread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> TwinServer:
        config = uvicorn.Config(
            create_app(self.service),
            host=self.host,
            port=self.port,
            log_level=self.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,  # open event streams must not hold a shutdown
        )
        self._runner = UvicornThread(config, "twin server").start(timeout_s)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._runner is not None:
            self._runner.stop(timeout_s)
        self._runner = None

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    twin: Twin,
    *,
    host: str = "127.0.0.1",
    port: int = 8300,
    options: TwinServiceOptions | None = None,
    log_level: str = "info",
) -> None:
    """Run the interface in the foreground until interrupted (``gridedge twin serve``)."""
    if not math.isfinite(port) or not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    uvicorn.run(
        create_app(TwinService(twin, options)),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


def start_twin_server(
    grid: str = "turin-2feeder",
    *,
    clock: Clock | None = None,
    port: int | None = None,
    trip_delay_s: float = 0.3,
    options: TwinServiceOptions | None = None,
    seed: int | None = None,
) -> TwinServer:
    """A real Twin behind its network interface in a background thread, on a free loopback
    port (tests of every role, benchmarks, the demo). Default clock: stepped, starting now;
    advance it with ``POST /v1/clock/advance``. Stop with ``.stop()``."""
    from gridedge.broker.mosquitto import free_port
    from gridedge.twin.model import Twin

    clk = clock if clock is not None else make_clock("stepped")
    twin = Twin.from_name(grid, seed=seed, clock=clk, trip_delay_s=trip_delay_s)
    return TwinServer(TwinService(twin, options), port=port or free_port()).start()
