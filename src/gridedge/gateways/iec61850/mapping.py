"""REST mapping of the IEC 61850 model (seed 004 Table 2.8, after Pedersen et al. 2010):

| URL | method | ACSI |
|---|---|---|
| /iec61850 | GET | GetServerDirectory |
| /iec61850/{LD} | GET | GetLogicalDeviceDirectory |
| /iec61850/{LD}/{LN} | GET | GetLogicalNodeDirectory (+ GetAllDataValues) |
| /iec61850/{LD}/{LN}/{DO}[/{DA}...] | GET | GetDataDirectory / GetDataValues |
| /iec61850/{LD}/{LN}/{DO}/{DA}... | POST | SetDataValues |

Directories come from the same model description the server and the SCD are built from; values
are read from the live libiec61850 model (``IedServer_getAttributeValue``), so REST and MMS
clients see the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyiec61850 as iec

from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.shards import ShardManager

# Attributes a client may set through REST: descriptions and configuration (fc DC / CF), but
# never the control model (that would change how SCADA must operate the switch).
SETTABLE_FC = {"DC", "CF"}
NOT_SETTABLE = {"ctlModel"}


class MappingError(Exception):
    def __init__(self, status: int, detail: str, field: str = "path") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


@dataclass(slots=True)
class Leaf:
    path: tuple[str, ...]  # below the LN: ("TotW", "mag", "f")
    btype: str
    fc: str


def _leaves(
    children: tuple[m.DA | m.SDO, ...],
    dotypes: dict[str, m.DOType],
    prefix: tuple[str, ...],
    fc: str = "",
) -> list[Leaf]:
    out: list[Leaf] = []
    for c in children:
        if isinstance(c, m.SDO):
            out += _leaves(dotypes[c.type].children, dotypes, (*prefix, c.name))
        elif c.btype == "Struct":
            out += _leaves(m.DA_TYPES[c.type], dotypes, (*prefix, c.name), c.fc or fc)
        else:
            out.append(Leaf((*prefix, c.name), c.btype, c.fc or fc))
    return out


def _mms_to_py(value: Any, btype: str) -> Any:
    if value is None:
        return None
    t = iec.MmsValue_getType(value)
    if t == iec.MMS_FLOAT:
        return float(iec.MmsValue_toFloat(value))
    if t in (iec.MMS_INTEGER, iec.MMS_UNSIGNED):
        return int(iec.MmsValue_toInt64(value))
    if t == iec.MMS_BOOLEAN:
        return bool(iec.MmsValue_getBoolean(value))
    if t == iec.MMS_UTC_TIME:
        ms = iec.MmsValue_getUtcTimeInMs(value)
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    if t == iec.MMS_BIT_STRING:
        if btype == "Dbpos":
            return {0: "intermediate-state", 1: "off", 2: "on", 3: "bad-state"}.get(
                int(iec.Dbpos_fromMmsValue(value)), "bad-state"
            )
        if btype == "Quality":
            q = int(iec.Quality_fromMmsValue(value))
            validity = {
                iec.QUALITY_VALIDITY_GOOD: "good",
                iec.QUALITY_VALIDITY_INVALID: "invalid",
                iec.QUALITY_VALIDITY_RESERVED: "reserved",
                iec.QUALITY_VALIDITY_QUESTIONABLE: "questionable",
            }[q & 0x3]
            return {"validity": validity, "raw": q}
        return int(iec.MmsValue_getBitStringAsInteger(value))
    if t in (iec.MMS_VISIBLE_STRING, iec.MMS_STRING):
        return iec.MmsValue_toString(value)
    if t == iec.MMS_OCTET_STRING:
        size = iec.MmsValue_getOctetStringSize(value)
        return bytes(iec.MmsValue_getOctetStringOctet(value, i) for i in range(size)).hex()
    return None


class ModelMapper:
    def __init__(self, shards: ShardManager) -> None:
        self.shards = shards
        self.dotypes = {t.id: t for t in m.do_types(shards.ctl_model)}
        self.lntypes = {t.id: t for t in m.LN_TYPES}

    def _meter(self, ld: str) -> tuple[Any, m.MeterSpec]:
        for device_id, shard in list(self.shards._by_device.items()):
            node = shard.nodes[device_id]
            if node.spec.domain == ld:
                return shard, node.spec
        raise MappingError(404, f"logical device {ld!r} does not exist", "LD")

    def _lns(self, spec: m.MeterSpec) -> dict[str, str]:
        out = {"LLN0": "GE_LLN0"}
        out.update({ln.name: ln.ln_type for ln in m.meter_lns(spec.phases)})
        return out

    def server_directory(self) -> list[str]:
        return sorted(s.nodes[d].spec.domain for d, s in list(self.shards._by_device.items()))

    def get(self, parts: list[str]) -> dict[str, Any]:
        if not parts:
            return {"logicalDevices": self.server_directory()}
        shard, spec = self._meter(parts[0])
        lns = self._lns(spec)
        if len(parts) == 1:
            return {"ld": parts[0], "logicalNodes": sorted(lns)}
        ln = parts[1]
        if ln not in lns:
            raise MappingError(404, f"logical node {ln!r} does not exist in {parts[0]}", "LN")
        lntype = self.lntypes[lns[ln]]
        if len(parts) == 2:
            return {
                "ld": parts[0],
                "ln": ln,
                "dataObjects": [d for d, _ in lntype.dos],
            }
        dos = dict(lntype.dos)
        if parts[2] not in dos:
            raise MappingError(404, f"data object {parts[2]!r} does not exist in {ln}", "DO")
        leaves = _leaves(self.dotypes[dos[parts[2]]].children, self.dotypes, (parts[2],))
        sub = tuple(parts[2:])
        chosen = [lf for lf in leaves if lf.path[: len(sub)] == sub]
        if not chosen:
            raise MappingError(
                404, f"attribute {'.'.join(sub[1:])!r} does not exist in {ln}.{parts[2]}", "DA"
            )
        values = {}
        for lf in chosen:
            if lf.fc == "CO":
                continue  # control services are operated over MMS, not read
            values[".".join(lf.path)] = {
                "fc": lf.fc,
                "type": lf.btype,
                "value": self._read(shard, parts[0], ln, lf),
            }
        ref = f"{parts[0]}/{ln}.{'.'.join(sub)}"
        if len(chosen) == 1 and chosen[0].path == sub:
            return {"reference": ref, **values[".".join(sub)]} if values else {"reference": ref}
        return {"reference": ref, "attributes": values}

    @staticmethod
    def _node(shard: Any, ld: str, ln: str, lf: Leaf) -> Any:
        ref = f"{ld}/{ln}.{'.'.join(lf.path)}"
        node = iec.IedModel_getModelNodeByObjectReference(shard.model, ref)
        if node is None:
            raise MappingError(404, f"{ref} is not in the live model", "DA")
        return iec.toDataAttribute(node)

    def _read(self, shard: Any, ld: str, ln: str, lf: Leaf) -> Any:
        da = self._node(shard, ld, ln, lf)
        with shard.locked():
            return _mms_to_py(iec.IedServer_getAttributeValue(shard.server, da), lf.btype)

    def set(self, parts: list[str], value: Any) -> dict[str, Any]:
        if len(parts) < 4:
            raise MappingError(
                405, "only data attributes can be set: POST /iec61850/{LD}/{LN}/{DO}/{DA}"
            )
        current = self.get(parts)
        if "attributes" in current:
            raise MappingError(405, f"{current['reference']} is a structure; set one attribute")
        fc, btype = current["fc"], current["type"]
        name = parts[-1]
        if fc not in SETTABLE_FC or name in NOT_SETTABLE:
            why = {
                "MX": "a measured value (fc=MX) written only by the meter's readings",
                "ST": "a status value (fc=ST) that follows the process",
                "CO": "a control (fc=CO): operate it over MMS",
            }.get(fc, f"fc={fc}")
            if name in NOT_SETTABLE:
                why = "the control model, fixed by the gateway configuration"
            raise MappingError(409, f"{current['reference']} is read-only: {why}", "path")
        shard, _ = self._meter(parts[0])
        lf = Leaf(tuple(parts[2:]), btype, fc)
        da = self._node(shard, parts[0], parts[1], lf)
        with shard.locked():
            if btype.startswith("VisString") or btype.startswith("Unicode"):
                if not isinstance(value, str):
                    raise MappingError(422, f"{btype} needs a string", "value")
                limit = int("".join(ch for ch in btype if ch.isdigit()) or 255)
                if len(value) > limit:
                    raise MappingError(422, f"{btype} holds at most {limit} characters", "value")
                iec.IedServer_updateVisibleStringAttributeValue(shard.server, da, value)
            elif btype in ("FLOAT32", "FLOAT64"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise MappingError(422, f"{btype} needs a number", "value")
                iec.IedServer_updateFloatAttributeValue(shard.server, da, float(value))
            elif btype.startswith("INT") or btype == "Enum":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise MappingError(422, f"{btype} needs an integer", "value")
                iec.IedServer_updateInt32AttributeValue(shard.server, da, value)
            elif btype == "BOOLEAN":
                if not isinstance(value, bool):
                    raise MappingError(422, "BOOLEAN needs true or false", "value")
                iec.IedServer_updateBooleanAttributeValue(shard.server, da, value)
            else:
                raise MappingError(409, f"setting {btype} attributes is not supported", "path")
        return self.get(parts)
