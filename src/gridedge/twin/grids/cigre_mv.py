"""``cigre-mv``: the CIGRE MV benchmark (Task Force C6.04.02) as pandapower ships it, without
DER; ties S1-S3 open. Zero-sequence data is not part of the benchmark: r0 = 3 r1, x0 = 3 x1,
c0 = c1/2 (REFERENCE §1.5 item 7). Feeder-head breakers are added (the benchmark has none)."""

from __future__ import annotations

import pandapower.networks as pn

from gridedge.twin.grids.base import GridModel
from gridedge.twin.grids.external import add_head_breakers, assign_roles, name_everything


def build(seed: int | None = None) -> GridModel:
    net = pn.create_cigre_network_mv(with_der=False)
    name_everything(net)
    gm = GridModel(
        name="cigre-mv",
        net=net,
        description="CIGRE MV benchmark (20 kV, 2 feeders, 15 buses), pandapower version",
        provenance="pandapower.networks.create_cigre_network_mv (CIGRE TF C6.04.02, 2014)",
        seed=seed,
    )
    assign_roles(gm)
    add_head_breakers(gm)
    return gm
