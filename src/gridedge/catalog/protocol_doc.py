"""Renders docs/protocol.md from the contracts, the topic builder and the catalog's OpenAPI, so
the document cannot drift from the code (``gridedge catalog protocol-doc`` rewrites it; a test
checks the committed file is current)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gridedge.contracts import catalog as cat
from gridedge.contracts import commands, common, events, telemetry
from gridedge.contracts.topics import CATALOG_ID, PREFIX, VERSION, Plane, Stream, topic

PLACEHOLDER = "{device_id}"


@dataclass(frozen=True)
class TopicRow:
    plane: Plane
    stream: Stream
    device: str  # "+" = per device, or a pseudo id
    direction: str
    payload: type[BaseModel] | None
    qos: int
    retained: bool
    note: str


TOPICS: list[TopicRow] = [
    TopicRow(Plane.MGMT, Stream.SETTINGS, "+", "catalog → device", cat.SettingsChanged, 1, True,
             "a new settings version exists: fetch it with GET /v1/devices/{id}/settings"),
    TopicRow(Plane.MGMT, Stream.STATUS, "+", "catalog → all", cat.DeviceStatusChanged, 1, True,
             "connected / disconnected, as decided by the catalog's liveness sweeper"),
    TopicRow(Plane.MGMT, Stream.HEARTBEAT, "+", "device → catalog", cat.Heartbeat, 0, False,
             "refreshes last-seen between check-ins (every heartbeat_period_s)"),
    TopicRow(Plane.MGMT, Stream.APP_STATE, "+", "device → catalog", cat.AppStateReport, 1, False,
             "app update state; also accepted over REST"),
    TopicRow(Plane.MGMT, Stream.TOPOLOGY, CATALOG_ID, "catalog → all", cat.TopologyChanged, 1, True,
             "a new topology version was stored"),
    TopicRow(Plane.DATA, Stream.TELEMETRY, "+", "device → consumers", telemetry.Telemetry, 1, False,
             "periodic readings"),
    TopicRow(Plane.DATA, Stream.EVENT, "+", "device → consumers", telemetry.DeviceEvent, 1, False,
             "outage (last gasp), restore, alarms"),
    TopicRow(Plane.DATA, Stream.FAULT, "+", "device → consumers", events.FaultRecord, 1, False,
             "fault records of the fault-capture / fault-location apps"),
    TopicRow(Plane.DATA, Stream.COMMAND, "+", "controller → device", commands.Command, 1, False,
             "open / close / select-phase"),
    TopicRow(Plane.DATA, Stream.COMMAND_RESULT, "+", "device → controller", commands.CommandResult,
             1, False, "sent once the actuator has really moved (or failed)"),
]  # fmt: skip

SCHEMAS: list[tuple[str, list[type[BaseModel]]]] = [
    (
        "Management plane (MQTT)",
        [cat.SettingsChanged, cat.DeviceStatusChanged, cat.Heartbeat, cat.AppStateReport,
         cat.TopologyChanged],
    ),
    (
        "Data plane (MQTT)",
        [telemetry.Telemetry, telemetry.DeviceEvent, events.FaultRecord, commands.Command,
         commands.CommandResult],
    ),
    (
        "Registry and self-configuration (REST bodies)",
        [cat.DeviceRegistration, cat.DeviceRegistrationBatch, cat.ProvisioningCredentials,
         cat.ProvisionRequest, cat.ProvisionResponse, cat.DeviceSettings, cat.BrokerPlanes,
         cat.BrokerEndpoint, cat.TopicPlan, cat.TopicSpec, cat.AppAssignment, cat.GridPortion,
         cat.GridLocation, cat.Capabilities, cat.SettingsUpdate, cat.DeviceRecord, cat.DeviceList],
    ),
    (
        "Topology and apps (REST bodies)",
        [cat.TopologyDocument, cat.TopologyNode, cat.TopologyBranch, cat.DevicePlacement,
         cat.TopologyStored, cat.AppPackageInfo],
    ),
    ("Errors", [common.Problem, common.FieldError]),
]  # fmt: skip


def _topic_pattern(row: TopicRow) -> str:
    built = topic(row.plane, row.device, row.stream)  # the one topic builder
    return built.replace("/+/", f"/{PLACEHOLDER}/") if row.device == "+" else built


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " \\| ".join(_type(p) for p in prop["anyOf"])
    t = prop.get("type", "any")
    if t == "array":
        return f"list[{_type(prop.get('items', {}))}]"
    if t == "object":
        extra = prop.get("additionalProperties")
        return f"dict[str, {_type(extra)}]" if isinstance(extra, dict) else "object"
    if prop.get("format") == "date-time":
        return "UTC time (ISO 8601)"
    return str(t)


def _constraints(prop: dict[str, Any]) -> str:
    out = []
    for key, sym in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"),
                     ("maximum", "≤"), ("minLength", "len ≥"), ("maxLength", "len ≤"),
                     ("minItems", "items ≥"), ("maxItems", "items ≤")):  # fmt: skip
        if key in prop:
            out.append(f"{sym} {prop[key]}")
    if "pattern" in prop:
        out.append(f"pattern `{prop['pattern']}`")
    for p in prop.get("anyOf", []):
        c = _constraints(p)
        if c:
            out.append(c)
    return ", ".join(out)


def _model_section(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    required = set(schema.get("required", []))
    lines = [f"### {model.__name__}", ""]
    if getattr(model, "SCHEMA", ""):
        lines += [f"Schema id: `{model.SCHEMA}`", ""]
    doc = (model.__doc__ or "").strip()
    if doc:
        lines += [" ".join(doc.split()), ""]
    lines += [
        "| field | type | required | default | constraints / meaning |",
        "|---|---|---|---|---|",
    ]
    for name, prop in schema.get("properties", {}).items():
        default = prop.get("default", "")
        if default != "":
            default = f"`{json.dumps(default)}`"
        meaning = "; ".join(x for x in (_constraints(prop), prop.get("description", "")) if x)
        lines.append(
            f"| `{name}` | {_type(prop)} | {'yes' if name in required else ''} | {default} | {meaning} |"
        )
    return "\n".join(lines) + "\n"


def _endpoints() -> str:
    from gridedge.catalog.api import create_app
    from gridedge.catalog.service import CatalogOptions, CatalogService

    svc = CatalogService(
        CatalogOptions(
            db_url="sqlite://",
            brokers=cat.BrokerPlanes(
                data=cat.BrokerEndpoint(url="mqtt://127.0.0.1:1883"),
                mgmt=cat.BrokerEndpoint(url="mqtt://127.0.0.1:1884"),
            ),
            public_url="http://127.0.0.1:8000",
            admin_token="unused",
        )
    )
    spec = create_app(svc, manage_lifecycle=False).openapi()
    who = {"admin": "admin token", "device": "device token (own id)", "discovery": "admin or any device token",
           "service": "none"}  # fmt: skip
    lines = ["| method | path | who | body | answer | purpose |", "|---|---|---|---|---|---|"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            tag = (op.get("tags") or ["service"])[0]
            auth = who.get(tag, tag)
            if path.endswith("/provision"):
                auth = "provisioning secret in the body"
            body = ""
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _type(content["application/json"]["schema"])
            elif "application/octet-stream" in content:
                body = "package bytes"
            answers = []
            for code, resp in op.get("responses", {}).items():
                if code.startswith("2") or code == "304":
                    sch = resp.get("content", {}).get("application/json", {}).get("schema")
                    answers.append(f"{code} {_type(sch) if sch else ''}".strip())
            summary = op.get("summary", "")
            desc = " ".join((op.get("description") or "").split("\n\n")[0].split())
            lines.append(
                f"| {method.upper()} | `{path}` | {auth} | {body} | {', '.join(answers)} | {desc or summary} |"
            )
    return "\n".join(lines) + "\n"


INTRO = f"""# gridedge protocol (catalog, management plane, data plane)

Generated by `gridedge catalog protocol-doc` from `gridedge.contracts` and the catalog's OpenAPI —
do not edit by hand. The running catalog serves the same REST description at `/docs` (Swagger UI)
and `/openapi.json`.

Two MQTT brokers carry the traffic (seed 001 §III-A): the **data plane** (readings, fault
reports, commands) and the **management plane** (configuration pushes, liveness). REST to the
Device Catalog is used for request/response: registration, self-configuration and the periodic
auto-update check-in.

## Topics

Every topic is `{PREFIX}/{VERSION}/<plane>/<device-id>/<stream>` and is built only by
`gridedge.contracts.topics.topic(plane, device_id, stream)` (parsed by `parse_topic`). A device
id matches `^[A-Za-z0-9][A-Za-z0-9_.:\\-]{{0,127}}$`, so it never contains MQTT wildcards or `/`.
Every payload is UTF-8 JSON of the model named below; MQTT payloads carry `schema` (id and major
version) and `ts` (UTC). A receiver refuses a schema id it does not know instead of guessing.

"""

SEQUENCE = """
## Self-configuration and auto-update (seed 001 §IV-A, Fig. 4)

1. The operator registers the device (`POST /v1/devices` or `/v1/devices/batch`, admin token) with
   its kind, grid location, capabilities, apps and auto-update period. The answer holds the
   **provisioning secret**, shown once; the catalog keeps only its SHA-256.
2. At boot the device calls `POST /v1/devices/{id}/provision` with the secret. The catalog issues
   a new **device token** (256 bit; any previous token is revoked), marks the device
   `connected`, publishes that on `mgmt/{id}/status` and answers the full `DeviceSettings`:
   brokers per plane, the topics to publish and subscribe (with QoS and retain flags), the apps
   with package URL, sha256 and signature, its grid portion, the update period, liveness timeout
   and heartbeat period.
3. The device connects to both brokers, subscribes to `mgmt/{id}/settings` (QoS 1) and
   `data/{id}/command`, publishes on the topics of its plan and starts its apps.
4. Every `update_period_s` it checks in: `GET /v1/devices/{id}/settings` with
   `If-None-Match: "<etag>"`. Unchanged settings answer **304** with no body (memory only on the
   catalog); changed settings answer 200 with the new document and its `ETag`. Every check-in
   refreshes last-seen; time-stamps reach the database in batches once a second.
5. When the operator changes the device's settings, an app it runs is released, or a new topology
   changes its grid portion, the catalog bumps the settings `version` and publishes
   `SettingsChanged` (retained, QoS 1) on `mgmt/{id}/settings` — only to devices whose document
   really changed (the etag is a hash of the content). A device that missed the push gets the new
   document at its next check-in because its etag no longer matches.

## Grid portion

The portion a device watches is everything reachable from its node over **closed** branches
without passing through a node of kind `source` (the source itself is included as an end point):
the feeder as currently switched. Open branches touching the portion are included as its boundary
(normally-open ties). The device's node is its placement in the topology document, else its
`location.node_id`. `digest` hashes the content (not the topology version), and
`topology_version` is the version in which the portion took its current shape.

## Liveness (seed 001 §IV-A)

* A provisioned device is `connected` while the catalog hears from it: provisioning, check-ins,
  REST app-state reports, and MQTT `heartbeat` / `app-state` messages all refresh last-seen.
* A sweeper runs every 0.25 s; a device silent for longer than `liveness_timeout_s` (default
  3 × `update_period_s`) becomes `disconnected`, and `DeviceStatusChanged` is published retained
  with QoS 1 on `mgmt/{id}/status`, so every service learns it, including late subscribers.
* Its next sign of life makes it `connected` again and publishes that too. The catalog logs each
  transition once (not every sweep).
* While the management broker is unreachable the catalog keeps serving REST; the latest
  payload of each topic is kept and published as soon as the broker is back.

## Security

* Admin endpoints need `Authorization: Bearer <admin token>` (`$GRIDEDGE_ADMIN_TOKEN`, or
  generated once into `$GRIDEDGE_DATA_DIR/admin-token`, mode 600).
* Device endpoints need the device's own token; a token of another device gets **403**.
* Provisioning secrets and tokens are random (192/256 bit) and stored as SHA-256 only; comparison
  is constant-time.
* Errors: missing/wrong token **401** (with `WWW-Authenticate: Bearer`), right token but wrong
  device or role **403**, unknown device/grid/app **404**, duplicate id **409**, malformed body
  **422**. Every error is an `application/problem+json` `Problem` whose `errors` list names
  each refused field by its dotted path (`location.phase`, `devices.3.id`) and the reason.
"""


ENUMS = [
    cat.DeviceKind, cat.DeviceStatus, cat.AppTarget, cat.AppUpdateState, commands.CommandAction,
    telemetry.EventKind,
]  # fmt: skip


def _enums() -> str:
    lines = ["\n## Enumerations\n", "| name | values |", "|---|---|"]
    for enum in ENUMS:
        lines.append(f"| {enum.__name__} | {', '.join(f'`{m.value}`' for m in enum)} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [INTRO]
    parts.append(
        "| topic | direction | payload | QoS | retained | meaning |\n|---|---|---|---|---|---|\n"
    )
    for row in TOPICS:
        payload = row.payload.__name__ if row.payload else "—"
        parts.append(
            f"| `{_topic_pattern(row)}` | {row.direction} | {payload} | {row.qos} | "
            f"{'yes' if row.retained else 'no'} | {row.note} |\n"
        )
    parts.append(
        "\nThe catalog subscribes to `gridedge/v1/mgmt/+/heartbeat` and `gridedge/v1/mgmt/+/app-state`. "
        "Deleting a device clears its retained `status` and `settings` messages.\n"
    )
    parts.append("\n## REST endpoints of the Device Catalog (all under `/v1`)\n\n")
    parts.append(_endpoints())
    parts.append(SEQUENCE)
    parts.append(_enums())
    parts.append("\n## Payload schemas\n")
    for title, models in SCHEMAS:
        parts.append(f"\n## {title}\n\n")
        parts.extend(_model_section(m) + "\n" for m in models)
    return "".join(parts).rstrip() + "\n"
