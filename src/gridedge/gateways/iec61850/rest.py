"""HTTP side of the gateway: the thesis' meter API (seed 004 §3.3, §4.4, Table 3.1, appendix A),
GET /SCL, and the REST mapping of the IEC 61850 model (Table 2.8). JSON by default, XML when the
Accept header prefers it (the thesis' "one header switches the format", §3.3.3).

Authorisation: a meter holds its token (the ``id`` from POST /SmartMeter) and may post and read
its own readings with it; listings, other meters' data, deletion, the SCD and writes to the
61850 model need the admin bearer token (the control centre's).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from lxml import etree
from pydantic import BaseModel, ValidationError

from gridedge.contracts.common import FieldError, Problem
from gridedge.contracts.iec61850 import ReadingIn, ReadingOut, SmartMeterCreate, SmartMeterInfo
from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.gateway import Gateway, UnknownMeter
from gridedge.gateways.iec61850.mapping import MappingError, ModelMapper

XML_TYPES = ("application/xml", "text/xml")


class ApiProblem(Exception):
    def __init__(
        self, status: int, title: str, detail: str = "", errors: list[FieldError] | None = None
    ):
        super().__init__(detail or title)
        self.problem = Problem(title=title, status=status, detail=detail, errors=errors or [])


def wants_xml(request: Request) -> bool:
    """Accept negotiation with q-values: XML only when it ranks above JSON."""
    best_xml, best_json = -1.0, -1.0
    for part in request.headers.get("accept", "").split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if mtype in XML_TYPES or mtype.endswith("+xml"):
            best_xml = max(best_xml, q)
        elif mtype in ("application/json", "*/*", "application/*") or mtype.endswith("+json"):
            best_json = max(best_json, q)
    return best_xml > 0 and best_xml > best_json


def _xml_value(parent: etree._Element, key: str, value: Any) -> None:
    el = etree.SubElement(parent, key if key.isidentifier() else "item")
    if key != el.tag:
        el.set("name", key)
    if value is None:
        el.set("nil", "true")
    elif isinstance(value, dict):
        for k, v in value.items():
            _xml_value(el, str(k), v)
    elif isinstance(value, list):
        for v in value:
            _xml_value(el, "value", v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif isinstance(value, datetime):
        el.text = value.isoformat().replace("+00:00", "Z")
    else:
        el.text = str(value)


def render(request: Request, data: Any, root: str, item: str = "", status: int = 200) -> Response:
    """JSON or XML of a model, a list of models or a plain dict."""

    def plain(x: Any) -> Any:
        return x.model_dump(mode="json") if isinstance(x, BaseModel) else x

    body = [plain(x) for x in data] if isinstance(data, list) else plain(data)
    if wants_xml(request):
        el = etree.Element(root)
        if isinstance(body, list):
            for x in body:
                _xml_value(el, item or "item", x)
        else:
            for k, v in body.items():
                _xml_value(el, str(k), v)
        return Response(
            etree.tostring(el, xml_declaration=True, encoding="UTF-8"),
            status_code=status,
            media_type="application/xml",
        )
    return JSONResponse(body, status_code=status)


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="gridedge IEC 61850 gateway",
        description="Seed-004-compatible smart-meter API, SCL of the virtual substation and a REST "
        "mapping of the IEC 61850 model. MMS is served on the ports listed in the SCD.",
        version="1",
    )
    mapper = ModelMapper(gateway.shards)
    app.state.gateway = gateway

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        return JSONResponse(exc.problem.model_dump(mode="json"), status_code=exc.problem.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body",)]
            errors.append(FieldError(field=".".join(loc) or "body", reason=e.get("msg", "invalid")))
        names = ", ".join(f"{e.field} ({e.reason})" for e in errors)
        p = Problem(title="Invalid request", status=422, detail=names, errors=errors)
        return JSONResponse(p.model_dump(mode="json"), status_code=422)

    def admin(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token, gateway.opts.admin_token):
            raise ApiProblem(
                401, "Admin token required", "send Authorization: Bearer <admin token>"
            )

    def is_admin(request: Request) -> bool:
        try:
            admin(request)
            return True
        except ApiProblem:
            return False

    async def resolve(request: Request, ident: str) -> str:
        """A meter's token opens its own data; a device id needs the admin token."""
        device_id = await gateway.device_for_token(ident)
        if device_id is not None:
            return device_id
        if ident in gateway.meters:
            admin(request)
            return ident
        raise ApiProblem(404, "Unknown smart meter", f"no meter has id {ident!r}")

    def info(device_id: str) -> SmartMeterInfo:
        row = gateway.meters[device_id]
        shard = gateway.shards.shard_of(device_id)
        return SmartMeterInfo(
            deviceId=device_id,
            iedName=m.ied_name(device_id),
            name=row.name,
            location=row.location,
            zipCode=row.zip_code,
            phases=row.phases,
            source=row.source,
            created=row.created_at,
            mms=f"{shard.ip}:{shard.port}" if shard else None,
            online=gateway.online.get(device_id, True),
        )

    thesis = APIRouter(tags=["smart meter (seed 004)"])

    @thesis.post("/SmartMeter")
    async def create_meter(body: SmartMeterCreate, request: Request) -> Response:
        created = await gateway.register_meter(body)
        return render(request, created, "SmartMeter")

    @thesis.get("/SmartMeter")
    async def list_meters(request: Request) -> Response:
        admin(request)
        return render(request, [info(d) for d in gateway.meters], "SmartMeters", "SmartMeter")

    @thesis.get("/SmartMeter/{ident}")
    async def get_meter(ident: str, request: Request) -> Response:
        return render(request, info(await resolve(request, ident)), "SmartMeter")

    @thesis.delete("/SmartMeter/{ident}", status_code=204)
    async def delete_meter(ident: str, request: Request) -> Response:
        admin(request)
        device_id = await gateway.device_for_token(ident) or ident
        try:
            await gateway.delete_meter(device_id)
        except UnknownMeter:
            raise ApiProblem(404, "Unknown smart meter", f"no meter has id {ident!r}") from None
        return Response(status_code=204)

    async def _post(ident: str, body: ReadingIn) -> Response:
        device_id = await gateway.device_for_token(ident)
        if device_id is None:
            raise ApiProblem(
                404,
                "Unknown smart meter",
                f"no meter has token {ident!r}; register with POST /SmartMeter first",
                [FieldError(field="id", reason="unknown meter token")],
            )
        await gateway.post_reading(device_id, body)
        return Response(status_code=204)

    @thesis.post("/Readings/{ident}", status_code=204)
    async def post_reading(ident: str, body: ReadingIn) -> Response:
        return await _post(ident, body)

    @thesis.post("/Readings", status_code=204)
    async def post_reading_body(body: ReadingIn) -> Response:
        if not body.smartMeterId:
            raise ApiProblem(
                422,
                "Invalid request",
                "smartMeterId (required without an id in the path)",
                [FieldError(field="smartMeterId", reason="required without an id in the path")],
            )
        return await _post(body.smartMeterId, body)

    @thesis.get("/Readings")
    async def latest_readings(request: Request) -> Response:
        """The latest reading of every meter (the control centre's GET /readings, §3.3.2)."""
        admin(request)
        latest: list[ReadingOut] = [
            gateway.latest[d] for d in gateway.meters if d in gateway.latest
        ]
        return render(request, latest, "Readings", "Reading")

    @thesis.get("/Readings/{ident}")
    async def readings_of(ident: str, request: Request, limit: int = 1000) -> Response:
        if not 1 <= limit <= 100_000:
            raise ApiProblem(
                422,
                "Invalid request",
                "limit must be 1..100000",
                [FieldError(field="limit", reason="must be 1..100000")],
            )
        device_id = await resolve(request, ident)
        return render(request, await gateway.readings(device_id, limit), "Readings", "Reading")

    @thesis.get("/SCL")
    async def scl(request: Request) -> Response:
        admin(request)
        return Response(gateway.scd(), media_type="application/xml")

    app.include_router(thesis)

    iec = APIRouter(prefix="/iec61850", tags=["IEC 61850 model (Table 2.8)"])

    async def mapped(call: Any) -> Any:
        # in a thread: reading the live model waits for its lock, never on the event loop
        try:
            return await asyncio.to_thread(call)
        except MappingError as exc:
            raise ApiProblem(
                exc.status,
                "IEC 61850 model",
                exc.detail,
                [FieldError(field=exc.field, reason=exc.detail)],
            ) from None

    @iec.get("")
    async def server_dir(request: Request) -> Response:
        admin(request)
        return render(request, await mapped(lambda: mapper.get([])), "Server")

    @iec.get("/{path:path}")
    async def get_node(path: str, request: Request) -> Response:
        admin(request)
        parts = [p for p in path.split("/") if p]
        return render(request, await mapped(lambda: mapper.get(parts)), "Node")

    @iec.post("/{path:path}")
    async def set_node(path: str, request: Request) -> Response:
        admin(request)
        parts = [p for p in path.split("/") if p]
        try:
            body = await request.json()
        except ValueError:
            raise ApiProblem(
                422,
                "Invalid request",
                'body must be JSON {"value": ...}',
                [FieldError(field="value", reason="body is not JSON")],
            ) from None
        if not isinstance(body, dict) or "value" not in body or len(body) != 1:
            raise ApiProblem(
                422,
                "Invalid request",
                'body must be {"value": ...}',
                [FieldError(field="value", reason="required (and nothing else)")],
            )
        return render(request, await mapped(lambda: mapper.set(parts, body["value"])), "Node")

    app.include_router(iec)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {
            "meters": len(gateway.meters),
            "shards": len(gateway.shards.shards),
            "mms_connections": gateway.shards.connections(),
            "stats": gateway.stats.__dict__,
        }

    _ = ValidationError  # imported for type checkers of handlers above
    return app
