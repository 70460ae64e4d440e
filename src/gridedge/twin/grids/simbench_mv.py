"""``simbench-mv-urban``: simbench ``1-MV-urban--0-sw`` (20 kV urban MV grid, 144 buses) with
its load and PV profiles.

simbench data is ODbL 1.0 (contents DbCL 1.0): it is loaded from the installed simbench package
at run time and nothing derived from it is stored in this repository. Profiles are read lazily
(``grid.extras["profiles"]()``) because they take seconds. Pitfalls handled: transformer
``tap_changer_type`` set to "Ratio" (REFERENCE §1.5 item 1), zero-sequence data assumed
(item 7), feeder breakers added where missing."""

from __future__ import annotations

import copy
from functools import cache

import simbench as sb

from gridedge.twin.grids.base import GridModel
from gridedge.twin.grids.external import add_head_breakers, assign_roles, name_everything

CODE = "1-MV-urban--0-sw"


@cache
def _load():
    # reading the simbench CSVs takes seconds; every build gets its own copy
    return sb.get_simbench_net(CODE)


def build(seed: int | None = None) -> GridModel:
    net = copy.deepcopy(_load())
    if "tap_changer_type" in net.trafo:
        net.trafo["tap_changer_type"] = net.trafo["tap_changer_type"].fillna("Ratio")
        net.trafo.loc[net.trafo["tap_changer_type"].isna(), "tap_changer_type"] = "Ratio"
    name_everything(net)
    gm = GridModel(
        name="simbench-mv-urban",
        net=net,
        description=f"simbench {CODE}: urban 20 kV grid with load/PV profiles (a year at 15 min)",
        provenance=f"simbench {CODE} (data ODbL 1.0, loaded at run time, not redistributed)",
        seed=seed,
    )
    assign_roles(gm)
    add_head_breakers(gm)

    @cache
    def profiles() -> dict:
        return sb.get_absolute_values(net, profiles_instead_of_study_cases=True)

    gm.extras["profiles"] = profiles
    gm.extras["licence"] = "ODbL-1.0 (simbench data)"
    return gm


def profile_step(gm: GridModel, step: int) -> tuple[dict[str, float], dict[str, float]]:
    """Active/reactive power (W, var) of every load and static generator at 15-min ``step``
    (0 .. 35135) of simbench's year, keyed by twin id, for ``Twin.set_load_power``."""
    prof = gm.extras["profiles"]()
    n = len(prof[("load", "p_mw")])
    if not 0 <= step < n:
        from gridedge.twin.errors import TwinError

        raise TwinError("step", f"{step} is outside 0..{n - 1}")
    net = gm.net
    p: dict[str, float] = {}
    q: dict[str, float] = {}
    lp, lq = prof[("load", "p_mw")].iloc[step], prof[("load", "q_mvar")].iloc[step]
    for idx, name in zip(net.load.index, net.load["name"], strict=True):
        p[name], q[name] = float(lp[idx]) * 1e6, float(lq[idx]) * 1e6
    gp = prof[("sgen", "p_mw")].iloc[step]
    for idx, name in zip(net.sgen.index, net.sgen["name"], strict=True):
        p[name], q[name] = float(gp[idx]) * 1e6, 0.0
    return p, q
