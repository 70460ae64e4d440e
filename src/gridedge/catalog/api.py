"""REST face of the catalog (FastAPI; OpenAPI at /docs). Every route is under /v1.

Who may call what:
- admin token: operator endpoints (register, change settings, topology, apps, delete);
- device token: the device's own check-in, app states, package downloads, and discovery;
- no token: health and provisioning (the provisioning secret in the body is the credential).

Every answer >= 400 is a ``Problem`` body naming the offending fields.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridedge import __version__
from gridedge.catalog import security
from gridedge.catalog.service import CatalogProblem, CatalogService
from gridedge.contracts.catalog import (
    AppPackageInfo,
    AppStateReport,
    DeviceKind,
    DeviceList,
    DeviceRecord,
    DeviceRegistration,
    DeviceRegistrationBatch,
    DeviceSettings,
    DeviceStatus,
    ProvisioningCredentials,
    ProvisioningCredentialsBatch,
    ProvisionRequest,
    ProvisionResponse,
    SettingsUpdate,
    TopologyDocument,
    TopologyStored,
)
from gridedge.contracts.common import FieldError, Problem

PROBLEM_TYPE = "application/problem+json"
DeviceIdPath = Annotated[str, Path(description="device id")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong token"},
    403: {"model": Problem, "description": "token of another device or role"},
    404: {"model": Problem, "description": "unknown device / grid / app"},
    422: {"model": Problem, "description": "malformed body; `errors` names each field"},
}


def problem_response(
    status: int, title: str, detail: str = "", errors: list[tuple[str, str]] | None = None
) -> JSONResponse:
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        errors=[FieldError(field=f, reason=r) for f, r in errors or []],
    )
    headers = {"WWW-Authenticate": 'Bearer realm="gridedge"'} if status == 401 else None
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_TYPE, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts[:1]
    return ".".join(parts) or "body"


@dataclass(frozen=True, slots=True)
class Principal:
    admin: bool
    device_id: str | None = None


class CheckInFastPath:
    """ASGI wrapper answering the one request that dominates the load — a device's own periodic
    check-in with a valid token — straight from memory, before routing, dependency injection and
    middleware. Everything else, including every error case of that same route, goes to the
    FastAPI app, which documents the route and produces the Problem bodies."""

    PREFIX = "/v1/devices/"
    SUFFIX = "/settings"

    def __init__(self, app: FastAPI, service: CatalogService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(self.PREFIX) and path.endswith(self.SUFFIX):
                device_id = path[len(self.PREFIX) : -len(self.SUFFIX)]
                if "/" not in device_id and await self._answer(device_id, scope, send):
                    return
        await self.app(scope, receive, send)

    async def _answer(self, device_id: str, scope: dict[str, Any], send: Any) -> bool:
        auth = inm = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v.decode("latin-1")
            elif k == b"if-none-match":
                inm = v.decode("latin-1")
        token = security.bearer(auth)
        svc = self.service
        if token is None or svc.device_for_token(token) != device_id:
            return False  # the full route produces the 401/403/404
        e = svc.devices.get(device_id)
        if e is None:
            return False
        body = svc.check_in(e, inm)
        etag = e.quoted_etag.encode()
        if body is None:
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            await send({"type": "http.response.body", "body": b""})
        else:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"etag", etag),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        return True


def create_asgi(service: CatalogService) -> CheckInFastPath:
    """The application servers run: the FastAPI app behind the check-in fast path."""
    return CheckInFastPath(create_app(service), service)


def create_app(service: CatalogService, *, manage_lifecycle: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await service.stop()

    app = FastAPI(
        title="gridedge Device Catalog",
        version=__version__,
        description=(
            "Registry of devices and services, self-configuration, auto-update, liveness and "
            "topology of the grid (seeds 001 §III-A/§IV-A, 003 §II). Errors are "
            "`application/problem+json` bodies whose `errors` name each field."
        ),
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(CatalogProblem)
    async def _problem(_: Request, exc: CatalogProblem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            (_field(tuple(e.get("loc", ()))), str(e.get("msg", "invalid"))) for e in exc.errors()
        ]
        return problem_response(
            422,
            "Invalid request",
            f"{len(errors)} field(s) refused: " + ", ".join(f for f, _ in errors[:5]),
            errors,
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        # logged with its traceback by the server; the client gets a Problem, not a stack dump
        return problem_response(500, "Internal error", f"{type(exc).__name__}; see the catalog log")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), str(exc.detail))

    # -- authentication -----------------------------------------------------------------------
    def principal(request: Request) -> Principal:
        token = security.bearer(request.headers.get("authorization"))
        if token is None:
            raise CatalogProblem(401, "Missing token", "send Authorization: Bearer <token>")
        if service.is_admin(token):
            return Principal(admin=True)
        device_id = service.device_for_token(token)
        if device_id is None:
            raise CatalogProblem(401, "Invalid token", "the token is unknown or revoked")
        return Principal(admin=False, device_id=device_id)

    def admin(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if not p.admin:
            raise CatalogProblem(403, "Operator only", "this endpoint needs the admin token")
        return p

    def own_device(device_id: str, p: Principal) -> None:
        if not p.admin and p.device_id != device_id:
            raise CatalogProblem(
                403,
                "Not your device",
                f"a device token may only act on its own device, not {device_id!r}",
            )

    Admin = Annotated[Principal, Depends(admin)]
    Anyone = Annotated[Principal, Depends(principal)]

    # -- routes -------------------------------------------------------------------------------
    @app.get("/v1/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness of the catalog itself, its management-broker link and counters."""
        return {
            "status": "ok",
            "version": __version__,
            "devices": len(service.devices),
            "grids": len(service.topologies),
            "mgmt_broker_connected": service.publisher.connected,
            "pending_pushes": service.publisher.pending,
            "check_ins": service.check_ins,
            "not_modified": service.not_modified,
            "loop_lag_max_ms": round(service.loop_lag_max_s * 1e3, 1),
            "loop_stalls": service.stalls,
            "disconnections": service.disconnections,
            "reconnections": service.reconnections,
        }

    @app.get("/v1/health/loop", tags=["service"])
    async def loop_lag() -> dict[str, Any]:
        """Per-second maximum event-loop lag of the last 10 minutes (epoch second, ms)."""
        return {"lag_ms": [(sec, round(lag * 1e3, 1)) for sec, lag in service.lag_history]}

    @app.post(
        "/v1/devices",
        status_code=201,
        response_model=ProvisioningCredentials,
        tags=["admin"],
        responses={**ERRORS, 409: {"model": Problem, "description": "duplicate id"}},
    )
    async def register(reg: DeviceRegistration, _: Admin) -> ProvisioningCredentials:
        """Register one device; the provisioning secret is shown once."""
        return (await service.register([reg]))[0]

    @app.post(
        "/v1/devices/batch",
        status_code=201,
        response_model=ProvisioningCredentialsBatch,
        tags=["admin"],
        responses={**ERRORS, 409: {"model": Problem, "description": "duplicate id"}},
    )
    async def register_batch(
        batch: DeviceRegistrationBatch, _: Admin
    ) -> ProvisioningCredentialsBatch:
        """Register many devices in one transaction (all or none)."""
        return ProvisioningCredentialsBatch(devices=await service.register(batch.devices))

    @app.get("/v1/devices", response_model=DeviceList, tags=["discovery"], responses=ERRORS)
    async def list_devices(
        _: Anyone,
        kind: DeviceKind | None = None,
        area: str | None = None,
        grid: str | None = None,
        status: DeviceStatus | None = None,
        node: Annotated[str | None, Query(description="topology node id")] = None,
    ) -> DeviceList:
        """Discovery: devices by kind, grid area, grid, node and status, with their endpoints."""
        return service.list_devices(kind, area, grid, status, node)

    @app.get(
        "/v1/devices/{device_id}", response_model=DeviceRecord, tags=["discovery"], responses=ERRORS
    )
    async def get_device(device_id: DeviceIdPath, _: Anyone) -> DeviceRecord:
        """One device's record: status, last-seen, settings version, apps and their states."""
        return service.record(service.entry(device_id))

    @app.patch(
        "/v1/devices/{device_id}/settings",
        response_model=DeviceSettings,
        tags=["admin"],
        responses=ERRORS,
    )
    async def patch_settings(
        device_id: DeviceIdPath, upd: SettingsUpdate, _: Admin
    ) -> DeviceSettings:
        """Change a device's settings; bumps the version and pushes it when the content changed."""
        return await service.patch_settings(device_id, upd)

    @app.delete("/v1/devices/{device_id}", status_code=204, tags=["admin"], responses=ERRORS)
    async def delete_device(device_id: DeviceIdPath, _: Admin) -> Response:
        """Remove a device; its token stops working and its retained messages are cleared."""
        await service.delete(device_id)
        return Response(status_code=204)

    @app.post(
        "/v1/devices/{device_id}/provision",
        response_model=ProvisionResponse,
        tags=["device"],
        responses=ERRORS,
    )
    async def provision(device_id: DeviceIdPath, req: ProvisionRequest) -> Response:
        """Self-configuration: the secret proves the device; answers a new token (the previous one
        is revoked) and the full settings document."""
        token, e = await service.provision(device_id, req)
        return Response(
            service.provision_response(token, e),
            media_type="application/json",
            headers={"ETag": e.quoted_etag, "Cache-Control": "no-store"},
        )

    @app.get(
        "/v1/devices/{device_id}/settings",
        response_model=DeviceSettings,
        tags=["device"],
        responses={**ERRORS, 304: {"description": "unchanged since If-None-Match"}},
    )
    async def check_in(device_id: DeviceIdPath, request: Request) -> Response:
        """Auto-update check-in: refreshes last-seen; 304 while the etag is unchanged."""
        # Hot path: memory only, no validation or serialisation beyond a dict lookup.
        p = principal(request)
        own_device(device_id, p)
        e = service.entry(device_id)
        body = (
            service.check_in(e, request.headers.get("if-none-match"))
            if not p.admin
            else service.rendered(e)
        )
        if body is None:
            return Response(status_code=304, headers={"ETag": e.quoted_etag})
        return Response(body, media_type="application/json", headers={"ETag": e.quoted_etag})

    @app.post(
        "/v1/devices/{device_id}/app-states", status_code=204, tags=["device"], responses=ERRORS
    )
    async def app_state(device_id: DeviceIdPath, report: AppStateReport, p: Anyone) -> Response:
        """A device reports an app's update state (also accepted on mgmt/<id>/app-state)."""
        own_device(device_id, p)
        if p.admin:
            raise CatalogProblem(
                403, "Devices only", "app states are reported by the device itself"
            )
        await service.app_state(service.entry(device_id), report)
        return Response(status_code=204)

    @app.put("/v1/topology/{grid}", response_model=TopologyStored, tags=["admin"], responses=ERRORS)
    async def put_topology(grid: str, doc: TopologyDocument, _: Admin) -> TopologyStored:
        """Store a new topology version; devices whose grid portion changed get new settings."""
        if doc.grid != grid:
            raise CatalogProblem(
                422, "Grid mismatch", errors=[("grid", f"must be {grid!r} as in the URL")]
            )
        return await service.put_topology(doc)

    @app.get(
        "/v1/topology/{grid}", response_model=TopologyDocument, tags=["discovery"], responses=ERRORS
    )
    async def get_topology(grid: str, _: Anyone) -> TopologyDocument:
        """The latest stored topology version of a grid."""
        return service.get_topology(grid)

    @app.post(
        "/v1/apps", status_code=201, response_model=AppPackageInfo, tags=["admin"], responses=ERRORS
    )
    async def put_app(info: AppPackageInfo, _: Admin) -> AppPackageInfo:
        """Announce an app version (sha256, size, signature); upload its bytes next."""
        return await service.put_app_info(info)

    @app.get("/v1/apps", response_model=list[AppPackageInfo], tags=["discovery"], responses=ERRORS)
    async def list_apps(_: Anyone) -> list[AppPackageInfo]:
        """Every announced app version."""
        return service.list_apps()

    @app.put(
        "/v1/apps/{name}/{version}/package",
        response_model=AppPackageInfo,
        tags=["admin"],
        responses=ERRORS,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
            }
        },
    )
    async def upload_package(name: str, version: str, request: Request, _: Admin) -> AppPackageInfo:
        """Upload the package bytes (raw body); refused unless size and sha256 match the
        announced ones. Devices assigned this version then get its URL pushed."""
        return await service.put_app_data(name, version, await request.body())

    @app.get("/v1/apps/{name}/{version}/package", tags=["discovery"], responses=ERRORS)
    async def download_package(name: str, version: str, _: Anyone) -> Response:
        """Package bytes; headers carry sha256 and signature (the node verifies both)."""
        data = await service.app_data(name, version)
        info = service.app_infos[(name, version)]
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"X-Gridedge-Sha256": info.sha256, "X-Gridedge-Signature": info.signature},
        )

    return app
