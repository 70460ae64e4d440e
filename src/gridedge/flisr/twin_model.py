"""The fault locator's view of a feeder, built from the twin's model data (or any source that
offers the same line/transformer/load tables).

What a real locator knows and what it does not: the line data and the switch states (from the
catalog's topology and the utility's asset database), the load of every secondary substation
(from its meter's pre-fault reading, or a forecast where there is no meter), and the meters'
positions. It does not know the fault. Nothing here reads the twin's during-fault state.

Zero-impedance links (closed switches, busbar couplers) merge their nodes into one electrical
node; a merged node is named after its substation (``SS-A2`` for ``SS-A2-in``/``SS-A2``/
``SS-A2-out``), so a faulted section is reported between two substations as in seed 003.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from gridedge.flisr.network import FeederModel, Load, Section, dyn_view, sequence_to_phase
from gridedge.twin.state import GridState, MeasurementPoint

OMEGA = 2 * np.pi * 50.0
_KIND_RANK = {"substation": 0, "source": 1, "bus": 2, "junction": 3, "load": 4}


@dataclass
class FeederInfo:
    """The feeder model plus what is needed to talk about it in the grid's own ids."""

    model: FeederModel
    head_point: MeasurementPoint
    group_of: dict[str, str]  # grid node id -> merged node name
    members: dict[str, list[str]]  # merged node -> grid node ids
    line_ends: dict[str, tuple[str, str]]  # line id -> (grid from, grid to), head side first
    transformer_of_lv: dict[str, tuple[str, str]]  # lv node -> (transformer id, mv merged node)
    # line id -> the closed switches between the head and that line: the ones a fault on the
    # line drives its current through (what fault passage indicators at the switches tell)
    switches_on_path: dict[str, frozenset[str]] = field(default_factory=dict)


def refer_lv_load(t, s_lv_va: complex, u_lv_v: float | None = None) -> complex:
    """MV-side power of a secondary substation from its LV meter's reading: add the
    transformer's series losses (from uk, pk) and its no-load losses (p0, i0)."""
    u2 = u_lv_v or t.u2_v
    z = t.uk * t.u2_v**2 / t.sn_va
    r = t.pk_w * t.u2_v**2 / t.sn_va**2
    x = np.sqrt(max(z * z - r * r, 0.0))
    i2 = abs(s_lv_va) ** 2 / (3 * (u2 / np.sqrt(3)) ** 2) / 3  # |I|^2 per phase
    s_mag = np.sqrt(max((t.i0 * t.sn_va) ** 2 - t.p0_w**2, 0.0))
    return complex(s_lv_va) + 3 * i2 * complex(r, x) + complex(t.p0_w, s_mag)


def _clock(vector_group: str) -> int:
    m = re.search(r"(\d+)$", vector_group or "")
    return int(m.group(1)) if m else 11


def build_feeder(
    twin,
    head_point: MeasurementPoint | str,
    prefault: GridState,
    *,
    meters: Iterable[MeasurementPoint] = (),
    load_estimate: dict[str, complex] | None = None,
    load_estimate_at_lv: bool = False,
) -> FeederInfo:
    """The feeder downstream of ``head_point``'s branch, as currently switched.

    ``load_estimate``: three-phase complex power (VA) per transformer id or MV load id; where
    missing, the transformer's pre-fault flow in ``prefault`` (what a meter at that secondary
    reads) or the load's data is used. ``load_estimate_at_lv``: the transformer values are LV-side
    meter readings, referred to MV here through the transformer's losses."""
    if isinstance(head_point, str):
        found = [m for m in twin.measurement_points if m.id == head_point]
        if not found:
            raise ValueError(f"head_point: {head_point!r} is not a measurement point of the twin")
        head_point = found[0]
    if head_point.branch_id is None:
        raise ValueError(f"head_point: {head_point.id!r} measures no branch current")
    load_estimate = load_estimate or {}
    closed = dict(zip(twin.branch_ids, twin.branch_closed(), strict=True))
    kinds = twin.grid.node_kind
    lines = {ln.id: ln for ln in twin.line_data()}
    trafos = {t.id: t for t in twin.transformer_data()}
    # links = branches that are neither lines nor transformers
    br_ends: dict[str, tuple[str, str]] = {}
    for b, k in zip(twin.branch_ids, range(len(twin.branch_ids)), strict=True):
        br_ends[b] = (twin.node_ids[twin._br_from[k]], twin.node_ids[twin._br_to[k]])
    head_branch = head_point.branch_id
    hf, ht = br_ends[head_branch]
    head_side = head_point.node_id
    start = ht if head_side == hf else hf

    # union-find over closed links, never across the head's own branch
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for b, (f, t) in br_ends.items():
        if b in lines or b in trafos or b == head_branch or not closed[b]:
            continue
        parent[find(f)] = find(t)
    # walk the feeder: groups joined by closed lines; transformers become loads
    adj: dict[str, list[str]] = {}
    for lid, ln in lines.items():
        if not closed[lid]:
            continue
        for a in (ln.from_node, ln.to_node):
            adj.setdefault(find(a), []).append(lid)
    head_group = find(start)
    if find(head_side) == head_group:
        raise ValueError(
            f"head_point: the feeder behind {head_branch!r} loops back to {head_side!r}"
        )
    seen = {head_group}
    order = [head_group]
    used_lines: list[str] = []
    k = 0
    while k < len(order):
        g = order[k]
        k += 1
        for lid in adj.get(g, []):
            ln = lines[lid]
            a, b = find(ln.from_node), find(ln.to_node)
            other = b if a == g else a
            if other in seen:
                continue
            seen.add(other)
            order.append(other)
            used_lines.append(lid)
    members: dict[str, list[str]] = {}
    for n in twin.node_ids:
        r = find(n)
        if r in seen:
            members.setdefault(r, []).append(n)

    def rep_name(r: str) -> str:
        ms = members.get(r, [r])
        return sorted(ms, key=lambda n: (_KIND_RANK.get(kinds.get(n, "bus"), 9), len(n), n))[0]

    name_of = {r: rep_name(r) for r in seen}
    head_name = name_of[head_group]
    group_of = {n: name_of[r] for r, ms in members.items() for n in ms}

    sections: list[Section] = []
    line_ends: dict[str, tuple[str, str]] = {}
    for lid in used_lines:
        ln = lines[lid]
        km = ln.length_m / 1000.0
        z = sequence_to_phase(ln.z1_ohm_per_km, ln.z0_ohm_per_km) * km
        y = (
            sequence_to_phase(
                1j * OMEGA * ln.c1_nf_per_km * 1e-9, 1j * OMEGA * ln.c0_nf_per_km * 1e-9
            )
            * km
        )
        sections.append(
            Section(lid, name_of[find(ln.from_node)], name_of[find(ln.to_node)], z, y, ln.length_m)
        )
        line_ends[lid] = (ln.from_node, ln.to_node)

    loads: list[Load] = []
    transformer_of_lv: dict[str, tuple[str, str]] = {}
    for tid, t in trafos.items():
        if not closed[tid]:
            continue
        fg, tg = find(t.from_node), find(t.to_node)
        if fg in seen and tg not in seen:
            mv_end, mv_node, lv_node = "from", fg, t.to_node
        elif tg in seen and fg not in seen:
            mv_end, mv_node, lv_node = "to", tg, t.from_node
        else:
            continue
        if tid in load_estimate:
            s = complex(load_estimate[tid])
            if load_estimate_at_lv:
                s = refer_lv_load(t, s)
        else:
            v = prefault.node_voltage(t.from_node if mv_end == "from" else t.to_node)
            i = prefault.branch_current(tid, mv_end)
            s = complex(np.sum(v * np.conj(i)))
        grounded = not t.vector_group.upper().startswith("D")
        loads.append(Load(name_of[mv_node], s, grounded=grounded))
        transformer_of_lv[lv_node] = (tid, name_of[mv_node])
    for ld in twin.load_data():
        g = find(ld.node_id)
        if g in seen and ld.status:
            s = load_estimate.get(ld.id, complex(np.sum(ld.p_w), np.sum(ld.q_var)))
            loads.append(Load(name_of[g], complex(s), grounded=True))

    u_rated = twin.node_voltage_kv(start) * 1000.0
    model = FeederModel(head_name, sections, loads, u_rated)
    for m in meters:
        if m.id == head_point.id:
            continue
        g = find(m.node_id)
        if g in seen:
            model.meter_views[m.id] = (name_of[g], np.eye(3, dtype=complex))
        elif m.node_id in transformer_of_lv:
            tid, mv = transformer_of_lv[m.node_id]
            model.meter_views[m.id] = (mv, dyn_view(_clock(trafos[tid].vector_group)))
    switchable = set(twin.switch_ids)
    links = {
        b: ends
        for b, ends in br_ends.items()
        if b in switchable and b != head_branch and closed[b] and b not in lines
    }
    return FeederInfo(
        model,
        head_point,
        group_of,
        members and {name_of[r]: ms for r, ms in members.items()},
        line_ends,
        transformer_of_lv,
        _switches_on_path(start, {lid: line_ends[lid] for lid in used_lines}, links),
    )


def _switches_on_path(
    start: str, lines: dict[str, tuple[str, str]], links: dict[str, tuple[str, str]]
) -> dict[str, frozenset[str]]:
    """For each line, the switches on the way to it from the feeder's first node: a walk over
    the grid's own nodes (not the merged ones, where a substation's switches disappear)."""
    adj: dict[str, list[tuple[str, str, bool]]] = {}
    for eid, (a, b) in lines.items():
        adj.setdefault(a, []).append((b, eid, False))
        adj.setdefault(b, []).append((a, eid, False))
    for eid, (a, b) in links.items():
        adj.setdefault(a, []).append((b, eid, True))
        adj.setdefault(b, []).append((a, eid, True))
    on_path: dict[str, frozenset[str]] = {start: frozenset()}
    out: dict[str, frozenset[str]] = {}
    stack = [start]
    while stack:
        n = stack.pop()
        for other, eid, is_switch in adj.get(n, []):
            if other in on_path:
                continue
            if not is_switch:
                out[eid] = on_path[n]
            on_path[other] = on_path[n] | {eid} if is_switch else on_path[n]
            stack.append(other)
    return out
