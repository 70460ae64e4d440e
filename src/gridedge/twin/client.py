"""Client of the twin's network interface, and the meter-side ports built on it.

A meter node talks to the twin as a 3SMA talks to its DAQ board and relay: :class:`TwinDaq`
implements :class:`gridedge.node.appapi.DaqBackend` and :class:`TwinActuators` implements
:class:`gridedge.node.appapi.ActuatorBackend`, both on one shared :class:`TwinClient`
(one HTTP connection pool per node process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
from httpx_sse import aconnect_sse

from gridedge.contracts.common import Problem
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.twin import (
    FaultInfo,
    FaultRequest,
    GridStatus,
    PhaseState,
    PointInfo,
    RelayState,
    SwitchState,
    TwinEvent,
)
from gridedge.contracts.waveform import WaveformWindow

Around = Literal["latest", "now", "fault"]


class TwinApiError(RuntimeError):
    """A 4xx/5xx answer of the twin; ``problem.errors`` names the refused fields."""

    def __init__(self, status: int, problem: Problem | None, text: str = "") -> None:
        self.status = status
        self.problem = problem
        if problem is not None:
            fields = "; ".join(f"{e.field}: {e.reason}" for e in problem.errors)
            msg = f"{status} {problem.title}: {fields or problem.detail}"
        else:
            msg = f"{status}: {text[:200]}"
        super().__init__(msg)

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.problem.errors] if self.problem else []


class TwinClient:
    """Async client of ``gridedge twin serve``. Use as ``async with TwinClient(url) as twin``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own = client is None
        self._http = client or httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> TwinClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = await self._http.request(method, path, **kw)
        if r.status_code >= 400:
            try:
                problem = Problem.model_validate_json(r.content)
            except ValueError:
                problem = None
            raise TwinApiError(r.status_code, problem, r.text)
        return r

    # -- reading --------------------------------------------------------------------------
    async def points(self) -> list[PointInfo]:
        r = await self._call("GET", "/v1/points")
        return [PointInfo.model_validate(p) for p in r.json()]

    async def telemetry(self, point_id: str, *, device_id: str | None = None) -> Telemetry:
        params = {"device_id": device_id} if device_id else None
        r = await self._call("GET", f"/v1/points/{point_id}/telemetry", params=params)
        return Telemetry.from_json(r.content)

    async def window(
        self,
        point_id: str,
        *,
        pre_s: float = 0.5,
        post_s: float = 0.5,
        around_ns: int | None = None,
        around: Around = "latest",
        rate_hz: float | None = None,
    ) -> WaveformWindow:
        """A sampled window of ``pre_s`` before and ``post_s`` after ``around_ns``, or (if None)
        after ``around``: ``latest`` = the latest fault inception if there was one, else now;
        ``fault`` = the latest fault inception (404 if none); ``now`` = the present instant."""
        params: dict[str, Any] = {"pre_s": pre_s, "post_s": post_s, "around": around}
        if around_ns is not None:
            params["around_ns"] = around_ns
        if rate_hz is not None:
            params["rate_hz"] = rate_hz
        r = await self._call("GET", f"/v1/points/{point_id}/window", params=params)
        return WaveformWindow.from_json(r.content)

    async def status(self) -> GridStatus:
        return GridStatus.model_validate_json((await self._call("GET", "/v1/status")).content)

    async def switches(self) -> list[SwitchState]:
        r = await self._call("GET", "/v1/switches")
        return [SwitchState.model_validate(s) for s in r.json()]

    async def events_log(self, since: int = 0) -> list[TwinEvent]:
        r = await self._call("GET", "/v1/events/log", params={"since": since})
        return [TwinEvent.model_validate(e) for e in r.json()]

    async def events(self, since: int | None = None) -> AsyncIterator[TwinEvent]:
        """Server-sent events, from ``since`` (sequence number, exclusive) or from now on."""
        params = {"since": since} if since is not None else None
        async with aconnect_sse(
            self._http, "GET", "/v1/events", params=params, timeout=None
        ) as source:
            if source.response.status_code >= 400:
                await source.response.aread()
                raise TwinApiError(source.response.status_code, None, source.response.text)
            async for sse in source.aiter_sse():
                if sse.data:
                    yield TwinEvent.from_json(sse.data)

    # -- acting ---------------------------------------------------------------------------
    async def operate(self, switch_id: str, closed: bool) -> bool:
        """Open/close a breaker, sectionalizer or tie; returns its actual state after acting."""
        r = await self._call("POST", f"/v1/switches/{switch_id}", json={"closed": closed})
        return SwitchState.model_validate_json(r.content).closed

    async def set_relay(self, customer_id: str, closed: bool) -> bool:
        r = await self._call("POST", f"/v1/customers/{customer_id}/relay", json={"closed": closed})
        return RelayState.model_validate_json(r.content).closed

    async def select_phase(self, customer_id: str, phase: str) -> str:
        r = await self._call("POST", f"/v1/customers/{customer_id}/phase", json={"phase": phase})
        return PhaseState.model_validate_json(r.content).phase

    async def apply_fault(self, branch_id: str, **kw: Any) -> FaultInfo:
        """Inject a fault (fields of :class:`FaultRequest`: fraction, kind, phases, r_f_ohm…)."""
        body = FaultRequest(branch_id=branch_id, **kw).model_dump(mode="json")
        r = await self._call("POST", "/v1/fault", json=body)
        return FaultInfo.model_validate_json(r.content)

    async def clear_fault(self) -> GridStatus:
        return GridStatus.model_validate_json((await self._call("DELETE", "/v1/fault")).content)

    async def clock(self) -> dict[str, Any]:
        """``{"mode": wall|accelerated|stepped, "now_ns": …, "speed": …}``"""
        return dict((await self._call("GET", "/v1/clock")).json())

    async def advance(self, seconds: float) -> GridStatus:
        """Move a stepped twin clock forward (protection acts on the way); 409 otherwise."""
        r = await self._call("POST", "/v1/clock/advance", json={"seconds": seconds})
        return GridStatus.model_validate_json(r.content)


class TwinDaq:
    """The simulated DAQ of one meter: a :class:`gridedge.node.appapi.DaqBackend` on the twin."""

    def __init__(
        self,
        client: TwinClient,
        point_id: str,
        *,
        device_id: str | None = None,
        rate_hz: float | None = None,
    ) -> None:
        self.client = client
        self.point_id = point_id
        self.device_id = device_id
        self.rate_hz = rate_hz

    async def read_rms(self) -> Telemetry:
        return await self.client.telemetry(self.point_id, device_id=self.device_id)

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        return await self.client.window(
            self.point_id,
            pre_s=pre_s,
            post_s=post_s,
            around_ns=around_ns,
            around="latest",
            rate_hz=self.rate_hz,
        )


class TwinActuators:
    """What a device can move in the twin: its customer relay and phase selector (LV operator
    nodes) and the switches it is allowed to operate (a ``switches`` set; None = any)."""

    def __init__(
        self,
        client: TwinClient,
        *,
        customer_id: str | None = None,
        switches: set[str] | None = None,
    ) -> None:
        self.client = client
        self.customer_id = customer_id
        self.switches = switches

    async def set_relay(self, closed: bool) -> bool:
        if self.customer_id is None:
            raise NotImplementedError("this device has no customer relay")
        return await self.client.set_relay(self.customer_id, closed)

    async def operate_switch(self, switch_id: str, closed: bool) -> bool:
        if self.switches is not None and switch_id not in self.switches:
            raise PermissionError(
                f"switch_id: {switch_id!r} is not operated by this device "
                f"(it operates {sorted(self.switches)})"
            )
        return await self.client.operate(switch_id, closed)

    async def select_phase(self, phase: str) -> str:
        if self.customer_id is None:
            raise NotImplementedError("this device has no phase selector")
        return await self.client.select_phase(self.customer_id, phase)
