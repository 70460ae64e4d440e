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


def add_bus(
    gm: GridModel,
    name: str,
    vn_kv: float,
    kind: str = "bus",
    feeder: str | None = None,
    xy: tuple[float, float] | None = None,
) -> int:
    idx = pp.create_bus(gm.net, vn_kv=vn_kv, name=name)
    gm.node_kind[name] = kind
    if feeder is not None:
        gm.node_feeder[name] = feeder
    if xy is not None:
        gm.coords[name] = xy
    return int(idx)


def add_cable(
    gm: GridModel, name: str, f: int, t: int, length_km: float, ct: CableType, in_service=True
) -> int:
    return int(
        pp.create_line_from_parameters(
            gm.net,
            f,
            t,
            length_km=length_km,
            r_ohm_per_km=ct.r1_ohm_per_km,
            x_ohm_per_km=ct.x1_ohm_per_km,
            c_nf_per_km=ct.c1_nf_per_km,
            max_i_ka=ct.max_i_ka,
            r0_ohm_per_km=ct.r0_ohm_per_km,
            x0_ohm_per_km=ct.x0_ohm_per_km,
            c0_nf_per_km=ct.c0_nf_per_km,
            name=name,
            std_type=ct.name,
            type="cs",
            in_service=in_service,
        )
    )


def add_trafo(gm: GridModel, name: str, hv: int, lv: int, tt: TransformerType) -> int:
    return int(
        pp.create_transformer_from_parameters(
            gm.net,
            hv,
            lv,
            sn_mva=tt.sn_mva,
            vn_hv_kv=tt.vn_hv_kv,
            vn_lv_kv=tt.vn_lv_kv,
            vk_percent=tt.vk_percent,
            vkr_percent=tt.vkr_percent,
            pfe_kw=tt.pfe_kw,
            i0_percent=tt.i0_percent,
            shift_degree=tt.shift_degree,
            vector_group=tt.vector_group,
            vk0_percent=tt.vk_percent,
            vkr0_percent=tt.vkr_percent,
            mag0_percent=100.0,
            mag0_rx=0.0,
            si0_hv_partial=0.9,
            name=name,
            std_type=tt.name,
        )
    )


def add_switch(gm: GridModel, name: str, a: int, b: int, role: str, closed: bool = True) -> int:
    if role not in SWITCH_ROLES:
        raise ValueError(f"switch role {role!r} not in {SWITCH_ROLES}")
    ptype = {"breaker": "CB", "sectionalizer": "LBS", "tie": "LBS"}.get(role, "DS")
    idx = pp.create_switch(gm.net, a, b, et="b", closed=closed, type=ptype, name=name)
    gm.switch_role[name] = role
    return int(idx)


def add_source(gm: GridModel, bus: int, s_sc_mva: float, rx: float = 0.1) -> int:
    return int(
        pp.create_ext_grid(
            gm.net,
            bus,
            vm_pu=1.0,
            s_sc_max_mva=s_sc_mva,
            s_sc_min_mva=s_sc_mva,
            rx_max=rx,
            rx_min=rx,
            x0x_max=1.0,
            r0x0_max=rx,
        )
    )
