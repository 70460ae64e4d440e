"""Roles for grids that come from pandapower/simbench as they are: which buses are sources and
primary busbars, what each switch is, which feeder every bus belongs to, feeder-head meters."""

from __future__ import annotations

import networkx as nx
import pandapower as pp
import pandapower.topology as top

from gridedge.twin.grids.base import GridModel
from gridedge.twin.state import MeasurementPoint


def name_everything(net: pp.pandapowerNet) -> None:
    """Give every bus, line, trafo, switch, load a unique name (the twin's ids)."""
    for tab, prefix in (
        ("bus", "bus"),
        ("line", "line"),
        ("trafo", "trafo"),
        ("load", "load"),
        ("sgen", "sgen"),
    ):
        df = net[tab]
        if not len(df):
            continue
        names = []
        seen: set[str] = set()
        for idx, n in zip(df.index, df["name"], strict=True):
            n = str(n) if isinstance(n, str) and n else f"{prefix}{idx}"
            if n in seen:
                n = f"{n}#{idx}"
            seen.add(n)
            names.append(n)
        df["name"] = names
    sw = net.switch
    if len(sw):
        names = []
        seen = set()
        for idx, row in sw.iterrows():
            n = row["name"]
            if not (isinstance(n, str) and n):
                n = f"SW-{net.bus.at[row['bus'], 'name']}-{row['et']}{row['element']}"
            if n in seen:
                n = f"{n}#{idx}"
            seen.add(n)
            names.append(n)
        sw["name"] = names


def assign_roles(gm: GridModel, mv_kv_min: float = 1.0) -> None:
    net = gm.net
    bus_name = net.bus["name"].to_dict()
    sources = set(net.ext_grid["bus"])
    busbars = set()
    for _, tr in net.trafo.iterrows():
        if tr["hv_bus"] in sources or net.bus.at[tr["hv_bus"], "vn_kv"] > 30.0:
            busbars.add(int(tr["lv_bus"]))
            sources.add(int(tr["hv_bus"]))
    # substation-internal busbars: reachable from a transformer's MV terminal through bus-bus
    # switches (simbench models the primary as terminal -> CB -> busbar)
    bb_sw = net.switch[net.switch["et"] == "b"]
    grew = True
    while grew:
        grew = False
        for _, sw in bb_sw.iterrows():
            a, b = int(sw["bus"]), int(sw["element"])
            if (a in busbars) != (b in busbars):
                busbars.update((a, b))
                grew = True
    for b in net.bus.index:
        name = bus_name[b]
        if b in sources or b in busbars:
            gm.node_kind[name] = "source"
        elif net.bus.at[b, "vn_kv"] < mv_kv_min:
            gm.node_kind[name] = "load"
        else:
            gm.node_kind[name] = "substation"
    for _, sw in net.switch.iterrows():
        t = str(sw.get("type") or "")
        if t == "CB":
            role = "breaker"
        elif not sw["closed"]:
            role = "tie"
        elif t in ("LBS", "LS"):
            role = "sectionalizer"
        else:
            role = "switch"
        gm.switch_role[sw["name"]] = role
    # feeders: components of the graph without the primary busbars, named after the line leaving
    # the busbar; meters at each feeder head
    g = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    roots = sources | busbars
    g2 = g.copy()
    g2.remove_nodes_from(roots)
    mps = []
    for bb in sorted(busbars):
        for nb in g.neighbors(bb):
            if nb in roots:
                continue
            comp = nx.node_connected_component(g2, nb)
            lines = net.line[
                (net.line["from_bus"] == bb) & (net.line["to_bus"] == nb)
                | (net.line["to_bus"] == bb) & (net.line["from_bus"] == nb)
            ]
            if not len(lines):
                continue
            head = lines.iloc[0]
            fid = str(head["name"])
            for b in comp:
                gm.node_feeder.setdefault(bus_name[b], fid)
            mps.append(
                MeasurementPoint(
                    id=f"M-{len(mps) + 1}",
                    node_id=bus_name[bb],
                    branch_id=fid,
                    end="from" if int(head["from_bus"]) == bb else "to",
                    vt_ratio=net.bus.at[bb, "vn_kv"] * 1000 / 100,
                    ct_ratio=400 / 5,
                    description=f"feeder-head meter, feeder {fid}",
                )
            )
    gm.measurement_points = mps


def add_head_breakers(gm: GridModel) -> None:
    """Grids without feeder breakers get one (a line switch of type CB at the busbar end of each
    feeder-head line), so protection has something to trip."""
    net = gm.net
    for mp in gm.measurement_points:
        row = net.line[net.line["name"] == mp.branch_id].iloc[0]
        bus = int(row["from_bus"] if mp.end == "from" else row["to_bus"])
        has = net.switch[
            (net.switch["et"] == "l")
            & (net.switch["element"] == row.name)
            & (net.switch["bus"] == bus)
            & (net.switch["type"] == "CB")
        ]
        if len(has):
            continue
        name = f"CB-{mp.branch_id}"
        pp.create_switch(net, bus, int(row.name), et="l", closed=True, type="CB", name=name)
        gm.switch_role[name] = "breaker"
