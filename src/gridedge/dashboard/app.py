"""The supervisory dashboard's web app: one page (static HTML/JS/SVG, no build step), a JSON API
the page and scripts read, Server-Sent Events for live updates, and the two operator actions
(operate a switch; inject/clear a fault for the demo) behind the admin token."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from gridedge.contracts.common import FieldError, Problem
from gridedge.dashboard.grid import GridUnavailable, GridView
from gridedge.dashboard.latency import TRANSFER_CLASSES
from gridedge.dashboard.layout import layout
from gridedge.dashboard.live import LiveState, flisr_steps
from gridedge.historian.store import HistorianStore, QueryError

STATIC = Path(__file__).parent / "static"


class SwitchRequest(BaseModel):
    closed: bool = Field(description="true closes the switch, false opens it")


class FaultRequest(BaseModel):
    branch_id: str = Field(min_length=1)
    kind: Literal["1ph", "2ph", "2ph-g", "3ph"] = "3ph"
    position: float = Field(default=0.5, ge=0.0, le=1.0, description="fraction along the line")
    resistance_ohm: float = Field(default=0.001, ge=0.0)


def _problem(
    status: int, title: str, detail: str = "", errors: list[FieldError] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors or [])
    return JSONResponse(
        body.model_dump(), status_code=status, media_type="application/problem+json"
    )


class Dashboard:
    """Everything the app serves from; the runner keeps it current."""

    def __init__(
        self,
        live: LiveState,
        store: HistorianStore | None,
        grid: GridView | None,
        admin_token: str,
        *,
        historian_stats: Any = None,
        devices: Any = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.live = live
        self.store = store
        self.grid = grid
        self.admin_token = admin_token
        self.historian_stats = historian_stats  # callable -> dict
        self.devices = devices  # async callable -> list of device dicts
        self.info = info or {}
        self.topology: dict[str, Any] | None = None
        self._grid_lock = asyncio.Lock()

    async def poll_grid(self) -> None:
        """Read the grid and publish it. Serialised: two overlapping reads (the poller's and an
        action's) must not land out of order and put an older state back on the page."""
        assert self.grid is not None
        async with self._grid_lock:
            self.live.set_grid(await self.grid.snapshot())

    async def refresh_grid(self) -> None:
        """Re-read the grid right after an operator action, so its effect is on the page (and in
        /api/state) when the action's answer arrives, not at the next poll."""
        if self.grid is not None:
            with contextlib.suppress(GridUnavailable, OSError):
                await self.poll_grid()

    async def load_topology(self) -> dict[str, Any] | None:
        if self.grid is None:
            return None
        doc = await self.grid.topology()
        pos = layout(doc)
        self.topology = {
            "grid": doc.grid,
            "version": doc.version,
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "feeder": n.feeder,
                    "x": pos[n.id][0],
                    "y": pos[n.id][1],
                }
                for n in doc.nodes
            ],
            "branches": [b.model_dump() for b in doc.branches],
            "placements": [p.model_dump() for p in doc.placements],
        }
        return self.topology


def create_app(dash: Dashboard) -> FastAPI:
    app = FastAPI(
        title="gridedge dashboard",
        version="1",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )
    app.state.dashboard = dash

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(field=".".join(str(p) for p in e["loc"][1:]) or "body", reason=e["msg"])
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return _problem(422, "invalid request", detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail))

    def admin(authorization: str | None = Header(default=None)) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "admin token required (Authorization: Bearer <token>)")
        if not secrets.compare_digest(token.encode(), dash.admin_token.encode()):
            raise HTTPException(403, "admin token not accepted")

    def need_grid() -> GridView:
        if dash.grid is None:
            raise HTTPException(503, "no grid interface is connected to this dashboard")
        return dash.grid

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "grid": dash.grid is not None, "clients": dash.live.bus.clients}

    @app.get("/api/state")
    async def state() -> dict[str, Any]:
        """Everything the page draws, in one answer (the page then follows /api/stream)."""
        if dash.topology is None and dash.grid is not None:
            with contextlib.suppress(GridUnavailable, OSError):
                await dash.load_topology()
        devices: list[dict[str, Any]] = []
        if dash.devices is not None:
            with contextlib.suppress(Exception):
                devices = await dash.devices()
        for d in devices:  # the live status (mgmt plane) is newer than the catalog's answer
            d["status"] = dash.live.statuses.get(d["id"], d.get("status"))
        live = dash.live
        return {
            "info": dash.info,
            "topology": dash.topology,
            "grid": live.grid_view(),
            "devices": devices,
            "statuses": live.statuses,
            "latest": {k: v for k, v in live.latest.items()},
            "events": list(live.events)[:100],
            "flisr": live.flisr,
            "flisr_steps": flisr_steps(live.flisr) if live.flisr else [],
            "latency": live.latency.summary(),
            "transfer_classes": [
                {"name": n, "limit_ms": lim, "services": s} for n, lim, s in TRANSFER_CLASSES
            ],
            "historian": dash.historian_stats() if dash.historian_stats else None,
        }

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        q = dash.live.bus.subscribe()

        async def frames() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while True:
                    if await request.is_disconnected():
                        return
                    try:
                        yield await asyncio.wait_for(q.get(), 10)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                dash.live.bus.unsubscribe(q)

        return StreamingResponse(
            frames(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @app.get("/api/series")
    async def series(
        device_id: str,
        quantity: str = "voltage_v",
        start_ns: int | None = None,
        end_ns: int | None = None,
        max_points: int = Query(default=300, ge=1, le=5000),
    ) -> dict[str, Any]:
        if dash.store is None:
            raise HTTPException(503, "no historian store is attached")
        try:
            return await asyncio.to_thread(
                dash.store.series, device_id, quantity, start_ns, end_ns, max_points
            )
        except QueryError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/api/events")
    async def events(
        limit: int = Query(default=100, ge=1, le=5000), device_id: str | None = None
    ) -> list[dict[str, Any]]:
        if dash.store is None:
            return list(dash.live.events)[:limit]
        return await asyncio.to_thread(lambda: dash.store.events(device_id=device_id, limit=limit))

    @app.get("/api/flisr")
    async def flisr() -> dict[str, Any]:
        record = dash.live.flisr
        if record is None and dash.store is not None:
            record = await asyncio.to_thread(dash.store.last_flisr_record)
        return {"record": record, "steps": flisr_steps(record) if record else []}

    @app.get("/api/latency")
    async def latency() -> dict[str, Any]:
        return {
            "paths": dash.live.latency.summary(),
            "classes": [
                {"name": n, "limit_ms": lim, "services": s} for n, lim, s in TRANSFER_CLASSES
            ],
        }

    @app.get("/api/historian")
    async def historian() -> dict[str, Any]:
        if dash.historian_stats is None:
            raise HTTPException(503, "no historian is attached")
        return dash.historian_stats()

    @app.post("/api/switches/{branch_id}", dependencies=[Depends(admin)])
    async def operate(branch_id: str, req: SwitchRequest) -> dict[str, Any]:
        grid = need_grid()
        if dash.topology is None:
            await dash.load_topology()
        branches = {b["id"]: b for b in (dash.topology or {}).get("branches", [])}
        if branch_id not in branches:
            raise HTTPException(404, f"branch_id {branch_id!r} is not a branch of the grid")
        if not branches[branch_id].get("switchable"):
            raise HTTPException(
                409, f"branch_id {branch_id!r} is not switchable ({branches[branch_id]['kind']})"
            )
        try:
            result = await grid.operate(branch_id, req.closed, "operator:dashboard")
        except GridUnavailable as exc:
            raise HTTPException(502, str(exc)) from exc
        await dash.refresh_grid()
        dash.live.note(
            "switch",
            f"{branch_id} {'close' if req.closed else 'open'} by the operator",
            branch_id=branch_id,
        )
        return result

    @app.post("/api/faults", dependencies=[Depends(admin)])
    async def inject(req: FaultRequest) -> dict[str, Any]:
        grid = need_grid()
        if dash.topology is None:
            await dash.load_topology()
        kinds = {b["id"]: b["kind"] for b in (dash.topology or {}).get("branches", [])}
        if req.branch_id not in kinds:
            raise HTTPException(404, f"branch_id {req.branch_id!r} is not a branch of the grid")
        if kinds[req.branch_id] not in ("line", "cable"):
            raise HTTPException(
                409,
                f"branch_id {req.branch_id!r} is a {kinds[req.branch_id]}: faults go on lines or cables",
            )
        try:
            result = await grid.inject_fault(
                req.branch_id, req.kind, req.position, req.resistance_ohm
            )
        except GridUnavailable as exc:
            raise HTTPException(502, str(exc)) from exc
        await dash.refresh_grid()
        dash.live.note(
            "fault",
            f"{req.kind} fault injected on {req.branch_id} at {req.position:.0%}",
            branch_id=req.branch_id,
        )
        return result

    @app.delete("/api/faults", dependencies=[Depends(admin)])
    async def clear(grid: GridView = Depends(need_grid)) -> dict[str, Any]:
        grid = need_grid()
        try:
            result = await grid.clear_faults()
        except GridUnavailable as exc:
            raise HTTPException(502, str(exc)) from exc
        await dash.refresh_grid()
        dash.live.note("fault", "faults cleared by the operator")
        return result

    return app
