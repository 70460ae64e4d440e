"""What a grid builder hands to the twin: an equivalent pandapower net (the model source the tests
compare with) plus the roles pandapower has no column for (which bus is a primary busbar, which
switch is a breaker or a tie, where the meters sit, which loads are single-phase customers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandapower as pp

from gridedge.twin.cables import CableType, TransformerType
from gridedge.twin.state import MeasurementPoint

SWITCH_ROLES = ("breaker", "sectionalizer", "tie", "switch", "link")


@dataclass
class Customer:
    """A single-phase LV customer (seed 002 "Operator"): on/off relay and phase selector."""

    id: str
    node_id: str
    phase: str  # "a" | "b" | "c"
    p_w: float
    q_var: float
    relay_on: bool = True


@dataclass
class GridModel:
    name: str
    net: pp.pandapowerNet
    description: str
    provenance: str
    node_kind: dict[str, str] = field(default_factory=dict)  # bus name -> TopologyNode.kind
    node_feeder: dict[str, str] = field(default_factory=dict)
    switch_role: dict[str, str] = field(default_factory=dict)  # switch name -> SWITCH_ROLES
    measurement_points: list[MeasurementPoint] = field(default_factory=list)
    customers: dict[str, Customer] = field(default_factory=dict)  # id -> asymmetric_load name = id
    coords: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# Builders stage elements and create them in bulk at the end: pandapower's one-at-a-time create_*
# functions cost milliseconds each (10 s for turin-urban), the bulk ones a few ms per table.


def _stage(gm: GridModel, table: str) -> list[dict[str, Any]]:
    return gm.extras.setdefault("_stage", {}).setdefault(table, [])


def add_bus(
    gm: GridModel,
    name: str,
    vn_kv: float,
    kind: str = "bus",
    feeder: str | None = None,
    xy: tuple[float, float] | None = None,
) -> int:
    st = _stage(gm, "bus")
    st.append({"name": name, "vn_kv": vn_kv})
    gm.node_kind[name] = kind
    if feeder is not None:
        gm.node_feeder[name] = feeder
    if xy is not None:
        gm.coords[name] = (float(xy[0]), float(xy[1]))
    return len(st) - 1


def add_cable(
    gm: GridModel, name: str, f: int, t: int, length_km: float, ct: CableType, in_service=True
) -> int:
    st = _stage(gm, "line")
    st.append(
        {
            "from_bus": f,
            "to_bus": t,
            "length_km": length_km,
            "r_ohm_per_km": ct.r1_ohm_per_km,
            "x_ohm_per_km": ct.x1_ohm_per_km,
            "c_nf_per_km": ct.c1_nf_per_km,
            "max_i_ka": ct.max_i_ka,
            "r0_ohm_per_km": ct.r0_ohm_per_km,
            "x0_ohm_per_km": ct.x0_ohm_per_km,
            "c0_nf_per_km": ct.c0_nf_per_km,
            "name": name,
            "std_type": ct.name,
            "in_service": in_service,
        }
    )
    return len(st) - 1


def add_trafo(gm: GridModel, name: str, hv: int, lv: int, tt: TransformerType) -> int:
    st = _stage(gm, "trafo")
    st.append(
        {
            "hv_bus": hv,
            "lv_bus": lv,
            "sn_mva": tt.sn_mva,
            "vn_hv_kv": tt.vn_hv_kv,
            "vn_lv_kv": tt.vn_lv_kv,
            "vk_percent": tt.vk_percent,
            "vkr_percent": tt.vkr_percent,
            "pfe_kw": tt.pfe_kw,
            "i0_percent": tt.i0_percent,
            "shift_degree": tt.shift_degree,
            "vector_group": tt.vector_group,
            "vk0_percent": tt.vk_percent,
            "vkr0_percent": tt.vkr_percent,
            "mag0_percent": 1.0e4,
            "mag0_rx": 0.0,
            "name": name,
            "std_type": tt.name,
        }
    )
    return len(st) - 1


def add_switch(gm: GridModel, name: str, a: int, b: int, role: str, closed: bool = True) -> int:
    if role not in SWITCH_ROLES:
        raise ValueError(f"switch role {role!r} not in {SWITCH_ROLES}")
    ptype = {"breaker": "CB", "sectionalizer": "LBS", "tie": "LBS"}.get(role, "DS")
    st = _stage(gm, "switch")
    st.append({"bus": a, "element": b, "et": "b", "closed": closed, "type": ptype, "name": name})
    gm.switch_role[name] = role
    return len(st) - 1


def add_load(gm: GridModel, name: str, bus: int, p_mw: float, q_mvar: float) -> int:
    st = _stage(gm, "load")
    st.append({"bus": bus, "p_mw": p_mw, "q_mvar": q_mvar, "name": name})
    return len(st) - 1


def add_customer_load(gm: GridModel, cust: Customer, bus: int) -> int:
    st = _stage(gm, "asymmetric_load")
    p = {ph: 0.0 for ph in "abc"}
    q = {ph: 0.0 for ph in "abc"}
    p[cust.phase] = cust.p_w / 1e6
    q[cust.phase] = cust.q_var / 1e6
    st.append(
        {
            "bus": bus,
            "p_a_mw": p["a"],
            "p_b_mw": p["b"],
            "p_c_mw": p["c"],
            "q_a_mvar": q["a"],
            "q_b_mvar": q["b"],
            "q_c_mvar": q["c"],
            "name": cust.id,
            "in_service": True,
        }
    )
    gm.customers[cust.id] = cust
    return len(st) - 1


def add_source(gm: GridModel, bus: int, s_sc_mva: float, rx: float = 0.1) -> int:
    st = _stage(gm, "ext_grid")
    st.append({"bus": bus, "s_sc_mva": s_sc_mva, "rx": rx})
    return len(st) - 1


def finalize(gm: GridModel) -> GridModel:
    """Create the staged elements in the pandapower net (bulk)."""
    stage: dict[str, list[dict[str, Any]]] = gm.extras.pop("_stage", {})
    net = gm.net
    if rows := stage.get("bus"):
        pp.create_buses(
            net, len(rows), vn_kv=[r["vn_kv"] for r in rows], name=[r["name"] for r in rows]
        )
    for r in stage.get("ext_grid", []):
        pp.create_ext_grid(
            net,
            r["bus"],
            vm_pu=1.0,
            s_sc_max_mva=r["s_sc_mva"],
            s_sc_min_mva=r["s_sc_mva"],
            rx_max=r["rx"],
            rx_min=r["rx"],
            x0x_max=1.0,
            r0x0_max=r["rx"],
        )
    if rows := stage.get("line"):
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        f, t, length = cols.pop("from_bus"), cols.pop("to_bus"), cols.pop("length_km")
        pp.create_lines_from_parameters(net, f, t, length, type="cs", **cols)
    if rows := stage.get("trafo"):
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        hv, lv = cols.pop("hv_bus"), cols.pop("lv_bus")
        vg, std = cols.pop("vector_group"), cols.pop("std_type")  # string lists trip pandapower
        idx = pp.create_transformers_from_parameters(net, hv, lv, **cols)
        net.trafo.loc[idx, "vector_group"] = vg
        net.trafo.loc[idx, "std_type"] = std
    if rows := stage.get("switch"):
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        pp.create_switches(net, cols.pop("bus"), cols.pop("element"), cols.pop("et"), **cols)
    if rows := stage.get("load"):
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        pp.create_loads(net, cols.pop("bus"), **cols)
    for r in stage.get("asymmetric_load", []):
        pp.create_asymmetric_load(net, **r)
    return gm
