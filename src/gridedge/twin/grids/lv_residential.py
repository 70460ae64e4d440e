"""``lv-residential``: an LV circuit with single-phase customers (seed 002, SmartLVGrid).

One 22/0.4 kV 250 kVA Dyn11 secondary substation (the seed's "Coordinator" sits at its LV
busbar), three LV branches each behind a switch-disconnector ("Sub-Coordinator"), and 36
single-phase residential customers ("Operators") with an on/off relay and a phase selector,
assigned to phases a/b/c unevenly (as legacy circuits are) from a seed number. Branch trunks
are Al 150 mm2, spans 30-45 m. Solved with asymmetric power flow."""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp

from gridedge.twin.cables import LV_CABLES, SECONDARY_250KVA
from gridedge.twin.grids.base import (
    Customer,
    GridModel,
    add_bus,
    add_cable,
    add_customer_load,
    add_source,
    add_switch,
    add_trafo,
    finalize,
)
from gridedge.twin.state import MeasurementPoint

N_BRANCHES = 3
NODES_PER_BRANCH = 6
CUSTOMERS_PER_NODE = 2
DEFAULT_SEED = 2  # seed 002


def build(seed: int | None = None) -> GridModel:
    seed = DEFAULT_SEED if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    gm = GridModel(
        name="lv-residential",
        net=pp.create_empty_network(name="lv-residential", f_hz=50.0),
        description="LV circuit: 250 kVA substation, 3 branches, 36 single-phase customers "
        "with relays and phase selectors (seed 002)",
        provenance=f"seed 002_83292631d3fc36f6 (SmartLVGrid hierarchy); generated with seed={seed}",
        seed=seed,
    )
    mv = add_bus(gm, "MV", 22.0, "source", xy=(0.0, 1.0))
    add_source(gm, mv, s_sc_mva=300.0)
    bb = add_bus(gm, "LV-BB", 0.4, "busbar", xy=(0.0, 0.0))
    add_trafo(gm, "TR", mv, bb, SECONDARY_250KVA)
    trunk = LV_CABLES["RG7R-4x150-Al"]
    mps = [
        MeasurementPoint(
            id="M-LV",
            node_id="LV-BB",
            branch_id="TR",
            end="to",
            ct_ratio=400 / 5,
            description="Coordinator meter at the LV busbar (transformer secondary)",
        )
    ]
    n_cust = 0
    for b in range(N_BRANCHES):
        bid = f"B{b + 1}"
        ang = math.pi * (0.25 + 0.25 * b)
        d = np.array([math.cos(ang), -math.sin(ang)])
        head = add_bus(gm, f"{bid}-0", 0.4, "bus", feeder=bid, xy=tuple(0.1 * d))
        add_switch(gm, f"SW-{bid}", bb, head, "breaker")
        mps.append(
            MeasurementPoint(
                id=f"M-{bid}",
                node_id="LV-BB",
                branch_id=f"SW-{bid}",
                ct_ratio=200 / 5,
                description=f"Sub-Coordinator meter at the head of branch {bid}",
            )
        )
        prev, dist = head, 0.1
        for k in range(1, NODES_PER_BRANCH + 1):
            length = float(rng.uniform(0.030, 0.045))
            dist += length * 10
            node = add_bus(gm, f"{bid}-{k}", 0.4, "bus", feeder=bid, xy=tuple(dist * d))
            add_cable(gm, f"L-{bid}-{k}", prev, node, length, trunk)
            for _ in range(CUSTOMERS_PER_NODE):
                n_cust += 1
                # legacy circuits are unbalanced: phase a gets more customers
                phase = str(rng.choice(["a", "b", "c"], p=[0.45, 0.30, 0.25]))
                p = float(rng.uniform(0.8, 3.5)) * 1e3
                cust = Customer(
                    id=f"C{n_cust:02d}",
                    node_id=f"{bid}-{k}",
                    phase=phase,
                    p_w=p,
                    q_var=p * math.tan(math.acos(float(rng.uniform(0.95, 0.99)))),
                )
                add_customer_load(gm, cust, node)
                mps.append(
                    MeasurementPoint(
                        id=cust.id,
                        node_id=cust.node_id,
                        phases=(phase,),
                        description=f"customer smart meter ({phase})",
                    )
                )
            prev = node
    gm.measurement_points = mps
    return finalize(gm)
