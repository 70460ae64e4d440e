"""``turin-urban``: a synthetic urban MV network the size of seed 003 §III (Turin, 22 kV).

Seed figures: one primary substation, 11 MV feeders, 415 secondary substations, 42 MV loads,
220 LV aggregated loads, 403 MV branches. The seed's network data is not public, so this grid is
generated from a seed number (same number -> same grid) with urban Italian practice:

- the primary: two 40 MVA 220/22 kV Dyn11 transformers in parallel on one 22 kV busbar (neutral
  solidly earthed, see docs), one breaker per feeder;
- each feeder a trunk of Al 185/240 mm2 XLPE cable with laterals (Al 95 mm2 XLPE, some legacy
  paper-insulated Cu 70 mm2), sections 80-450 m (seed 003 Table II: 112-239 m);
- 415 secondary substations; 12 of them stand beside another one and hang on its MV busbar
  through a closed coupler (so 415 substations need exactly the seed's 403 cable branches);
- 220 substations feed an aggregated LV load through a 400 or 630 kVA Dyn11 transformer,
  42 are MV customers (load on the MV node), the rest are switching substations without load;
- remote-controlled sectionalizers on the incoming side of about a third of the substations and
  8 normally-open tie cables between neighbouring feeders (the seed grid had none; FLISR needs
  them). Tie cables are not counted in the 403 radial branches.
"""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp

from gridedge.twin.cables import (
    MV_CABLES,
    PRIMARY_220_22,
    SECONDARY_400KVA,
    SECONDARY_630KVA,
)
from gridedge.twin.grids.base import (
    GridModel,
    add_bus,
    add_cable,
    add_load,
    add_source,
    add_switch,
    add_trafo,
    finalize,
)
from gridedge.twin.state import MeasurementPoint

N_FEEDERS = 11
N_SECONDARIES = 415
N_COUPLED = 12  # 415 - 403
N_MV_LOADS = 42
N_LV_LOADS = 220
N_TIES = 8
DEFAULT_SEED = 3  # seed 003


def build(seed: int | None = None) -> GridModel:
    seed = DEFAULT_SEED if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    gm = GridModel(
        name="turin-urban",
        net=pp.create_empty_network(name="turin-urban", f_hz=50.0),
        description=(
            "Synthetic 22 kV urban network of seed 003's size: 1 primary, 11 feeders, 415 "
            "secondaries, 42 MV + 220 LV loads, 403 radial cable branches, 8 ties."
        ),
        provenance=f"seed 003_d79ab1d3eafa89fc §III (sizes); generated with seed={seed}",
        seed=seed,
    )
    hv = add_bus(gm, "HV", 220.0, "source", xy=(0.0, 0.0))
    add_source(gm, hv, s_sc_mva=10000.0)
    bb = add_bus(gm, "BB", 22.0, "source", xy=(0.0, 0.0))
    add_trafo(gm, "TR-1", hv, bb, PRIMARY_220_22)
    add_trafo(gm, "TR-2", hv, bb, PRIMARY_220_22)

    # feeder sizes around 415 / 11, summing exactly to 415
    sizes = np.full(N_FEEDERS, N_SECONDARIES // N_FEEDERS)
    sizes[: N_SECONDARIES % N_FEEDERS] += 1
    for _ in range(30):
        i, j = rng.integers(0, N_FEEDERS, 2)
        if i != j and sizes[j] > 30:
            sizes[i] += 1
            sizes[j] -= 1
    coupled = set(rng.choice(np.arange(N_SECONDARIES), N_COUPLED, replace=False).tolist())
    first_of_feeder = set(np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist())
    coupled -= first_of_feeder
    while len(coupled) < N_COUPLED:
        c = int(rng.integers(0, N_SECONDARIES))
        if c not in first_of_feeder:
            coupled.add(c)
    order = rng.permutation([k for k in range(N_SECONDARIES)])
    mv_load = set(order[:N_MV_LOADS].tolist())
    lv_load = set(order[N_MV_LOADS : N_MV_LOADS + N_LV_LOADS].tolist())

    trunk = MV_CABLES["ARE4H5E-3x1x185-Al"]
    head = MV_CABLES["ARE4H5E-3x1x240-Al"]
    lat = MV_CABLES["ARE4H5E-3x1x95-Al"]
    legacy = MV_CABLES["PILC-3x70-Cu"]

    feeder_nodes: dict[str, list[tuple[str, int, float]]] = {}
    k_global = 0
    n_sect = 0
    mps: list[MeasurementPoint] = []
    for f in range(N_FEEDERS):
        fid = f"F{f + 1:02d}"
        theta = 2 * math.pi * f / N_FEEDERS
        d = np.array([math.cos(theta), math.sin(theta)])
        hnode = add_bus(gm, f"{fid}-CB", 22.0, "bus", feeder=fid, xy=tuple(0.15 * d))
        add_switch(gm, f"CB-{fid}", bb, hnode, "breaker")
        mps.append(
            MeasurementPoint(
                id=f"M-{fid}",
                node_id="BB",
                branch_id=f"CB-{fid}",
                vt_ratio=22000 / 100,
                ct_ratio=600 / 5,
                description=f"feeder-head meter of {fid} at the primary",
            )
        )
        pos: dict[int, np.ndarray] = {hnode: 0.15 * d}
        depth_dir: dict[int, np.ndarray] = {hnode: d}
        nodes: list[tuple[str, int, float]] = []  # (name, bus, distance from head km)
        dist: dict[int, float] = {hnode: 0.0}
        trunk_end = hnode
        feeder_buses: list[int] = []
        for j in range(int(sizes[f])):
            k = k_global
            k_global += 1
            name = f"S{k + 1:03d}"
            if j == 0:
                parent, on_trunk = hnode, True
            elif k in coupled:
                parent, on_trunk = feeder_buses[-1], False
            elif rng.random() < 0.7:
                parent, on_trunk = trunk_end, True
            else:
                parent, on_trunk = int(rng.choice(feeder_buses)), False
            if j == 0:
                length, ct = float(rng.uniform(0.6, 2.0)), head
            elif on_trunk:
                length, ct = float(np.clip(rng.lognormal(math.log(0.19), 0.35), 0.08, 0.45)), trunk
            else:
                length = float(np.clip(rng.lognormal(math.log(0.17), 0.35), 0.08, 0.45))
                ct = legacy if rng.random() < 0.15 else lat
            if k in coupled:
                direction = depth_dir[parent]
                xy = pos[parent] + 0.05 * np.array([-direction[1], direction[0]])
            else:
                direction = d if on_trunk else _rot(depth_dir[parent], rng.choice([-1, 1]) * 1.0)
                xy = pos[parent] + length * direction
            ss = add_bus(gm, name, 22.0, "substation", feeder=fid, xy=tuple(xy))
            pos[ss], depth_dir[ss] = xy, direction
            if k in coupled:
                add_switch(gm, f"CPL-{name}", parent, ss, "link")
                dist[ss] = dist[parent]
            else:
                sect = j > 0 and (rng.random() < 0.33 or j == int(sizes[f]) // 2)
                if sect:
                    s_in = add_bus(
                        gm,
                        f"{name}-in",
                        22.0,
                        "junction",
                        feeder=fid,
                        xy=tuple(xy - 0.03 * direction),
                    )
                    add_cable(gm, f"L-{name}", parent, s_in, length, ct)
                    add_switch(gm, f"SW-{name}", s_in, ss, "sectionalizer")
                    n_sect += 1
                else:
                    add_cable(gm, f"L-{name}", parent, ss, length, ct)
                dist[ss] = dist[parent] + length
            if on_trunk and k not in coupled:
                trunk_end = ss
            feeder_buses.append(ss)
            nodes.append((name, ss, dist[ss]))
            if k in lv_load:
                lv = add_bus(
                    gm,
                    f"{name}-LV",
                    0.4,
                    "load",
                    feeder=fid,
                    xy=tuple(xy + 0.02 * np.array([d[1], -d[0]])),
                )
                big = rng.random() < 0.3
                add_trafo(gm, f"TR-{name}", ss, lv, SECONDARY_630KVA if big else SECONDARY_400KVA)
                p = float(rng.uniform(0.08, 0.30 if big else 0.22))
                cosphi = float(rng.uniform(0.92, 0.97))
                add_load(gm, f"LD-{name}", lv, p, p * math.tan(math.acos(cosphi)))
            elif k in mv_load:
                p = float(rng.uniform(0.15, 0.8))
                add_load(gm, f"LD-{name}", ss, p, p * 0.33)
        feeder_nodes[fid] = nodes
        lv_nodes = [n for n, _, _ in nodes if f"{n}-LV" in gm.node_kind]
        for n in (lv_nodes[len(lv_nodes) // 2], lv_nodes[-1]) if lv_nodes else ():
            mps.append(
                MeasurementPoint(
                    id=f"M-{n}",
                    node_id=f"{n}-LV",
                    branch_id=f"TR-{n}",
                    end="to",
                    ct_ratio=1000 / 5,
                    description=f"meter at secondary {n} ({fid}), LV side",
                )
            )
    # ties between neighbouring feeders, from the outer halves of both
    fids = list(feeder_nodes)
    for t in range(N_TIES):
        a, b = fids[t % N_FEEDERS], fids[(t + 1) % N_FEEDERS]
        na = _far(feeder_nodes[a], rng)
        nb = _far(feeder_nodes[b], rng)
        xa, xb = np.array(gm.coords[na[0]]), np.array(gm.coords[nb[0]])
        tie = add_bus(gm, f"TIE-{t + 1}", 22.0, "junction", xy=tuple((xa + xb) / 2))
        length = float(np.clip(np.linalg.norm(xa - xb) * 0.3, 0.2, 0.8))
        add_cable(gm, f"L-TIE-{t + 1}", na[1], tie, length, trunk)
        add_switch(gm, f"TIE-{t + 1}", tie, nb[1], "tie", closed=False)
    gm.measurement_points = mps
    gm.extras["n_sectionalizers"] = n_sect
    return finalize(gm)


def _rot(v: np.ndarray, sign: float) -> np.ndarray:
    a = sign * math.pi / 3
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _far(nodes: list[tuple[str, int, float]], rng: np.random.Generator) -> tuple[str, int, float]:
    ranked = sorted(nodes, key=lambda x: x[2])
    half = ranked[len(ranked) // 2 :]
    return half[int(rng.integers(0, len(half)))]
