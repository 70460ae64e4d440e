"""``turin-2feeder``: the laboratory case of seed 001 §V (Fig. 7, Table II).

Two HV/MV primary substations (220/22 kV), twelve MV/LV secondary substations (22/0.4 kV) 220 m
apart on two feeders joined by one normally-open tie switch, remote-controlled sectionalizers,
residential LV load at every secondary, meters M1 (primary) and M2 (a secondary).

What the seed leaves open is filled with typical Italian urban values (documented in
docs/grids/turin-2feeder.md): six secondaries per feeder, a 220 m cable from the primary to the
first secondary as well, Al 185 mm2 XLPE cables, a remote-controlled sectionalizer on each cable
end inside every secondary (ring-main unit), 400 kVA Dyn11 secondary transformers, 20 MVA
operating load per primary not modelled beyond the two feeders. The MV neutral is solidly
earthed at the primary transformer's star point (see docs for why)."""

from __future__ import annotations

import pandapower as pp

from gridedge.twin.cables import MV_CABLES, PRIMARY_220_22, SECONDARY_400KVA
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

N_SECONDARIES_PER_FEEDER = 6
SECTION_KM = 0.220
CABLE = MV_CABLES["ARE4H5E-3x1x185-Al"]
# Residential aggregate per secondary (kW), cos phi 0.95: the LV grids behind each substation.
LOAD_KW = {"A": [180, 220, 160, 240, 200, 150], "B": [210, 170, 230, 190, 160, 140]}
PF = 0.95


def build(seed: int | None = None) -> GridModel:
    gm = GridModel(
        name="turin-2feeder",
        net=pp.create_empty_network(name="turin-2feeder", f_hz=50.0),
        description=(
            "Seed 001 Fig. 7: two 220/22 kV primaries, 12 secondaries 220 m apart on two feeders "
            "joined by a normally-open tie; sectionalizers at every secondary; M1, M2 meters."
        ),
        provenance="seed 001_024648f67fb34191 §V, Fig. 7 and Table II (topology, voltages, 220 m)",
        seed=seed,
    )
    tan = (1 / PF**2 - 1) ** 0.5
    ends: dict[str, int] = {}
    for fi, f in enumerate(("A", "B")):
        y0 = 0.0 if f == "A" else -2.0
        hv = add_bus(gm, f"HV-{f}", 220.0, "source", feeder=f, xy=(-1.0, y0))
        bb = add_bus(gm, f"BB-{f}", 22.0, "source", feeder=f, xy=(0.0, y0))
        add_source(gm, hv, s_sc_mva=10000.0)
        add_trafo(gm, f"TR-{f}", hv, bb, PRIMARY_220_22)
        head = add_bus(gm, f"CB-{f}-out", 22.0, "bus", feeder=f, xy=(0.5, y0))
        add_switch(gm, f"CB-{f}", bb, head, "breaker")
        prev = head
        for k in range(1, N_SECONDARIES_PER_FEEDER + 1):
            x = 1.0 + 1.5 * (k - 1)
            s_in = add_bus(gm, f"SS-{f}{k}-in", 22.0, "junction", feeder=f, xy=(x - 0.4, y0))
            ss = add_bus(gm, f"SS-{f}{k}", 22.0, "substation", feeder=f, xy=(x, y0))
            s_out = add_bus(gm, f"SS-{f}{k}-out", 22.0, "junction", feeder=f, xy=(x + 0.4, y0))
            lv = add_bus(gm, f"SS-{f}{k}-LV", 0.4, "load", feeder=f, xy=(x, y0 - 0.6))
            name = f"L-{f}{k - 1}-{f}{k}" if k > 1 else f"L-{f}0-{f}1"
            add_cable(gm, name, prev, s_in, SECTION_KM, CABLE)
            add_switch(gm, f"SW-{f}{k}-in", s_in, ss, "sectionalizer")
            add_switch(gm, f"SW-{f}{k}-out", ss, s_out, "sectionalizer")
            add_trafo(gm, f"TR-{f}{k}", ss, lv, SECONDARY_400KVA)
            p = LOAD_KW[f][k - 1] / 1000.0
            add_load(gm, f"LD-{f}{k}", lv, p, p * tan)
            prev = s_out
            _ = fi
        ends[f] = prev
    tie = add_bus(gm, "TIE", 22.0, "junction", xy=(1.0 + 1.5 * 5 + 1.0, -1.0))
    add_cable(gm, "L-A6-TIE", ends["A"], tie, SECTION_KM, CABLE)
    add_switch(gm, "TIE-AB", tie, ends["B"], "tie", closed=False)
    gm.measurement_points = [
        MeasurementPoint(
            id="M1",
            node_id="BB-A",
            branch_id="CB-A",
            end="from",
            vt_ratio=22000 / 100,
            ct_ratio=600 / 5,
            description="3SMA at the primary substation, head of feeder A (seed 001 M1)",
        ),
        MeasurementPoint(
            id="M2",
            node_id="SS-A4-LV",
            branch_id="TR-A4",
            end="to",
            vt_ratio=1.0,
            ct_ratio=1000 / 5,
            description="3SMA at secondary substation SS-A4, LV side (seed 001 M2)",
        ),
        MeasurementPoint(
            id="M-B",
            node_id="BB-B",
            branch_id="CB-B",
            end="from",
            vt_ratio=22000 / 100,
            ct_ratio=600 / 5,
            description="feeder-head meter of feeder B",
        ),
    ]
    return finalize(gm)
