"""pandapower net -> power-grid-model input, with the fixes of REFERENCE §1.5 and the name maps
the twin needs (PGM uses integer ids; everyone else uses the names of the grid builder).

The converter (power-grid-model-io's ``PandaPowerConverter``) does the element physics (lines,
transformers with vector groups and taps, sources, switches -> links/statuses). Loads are rebuilt
here as one ``sym_load`` per pandapower load and one ``asym_load`` per single-phase customer,
because the twin updates them individually (profiles, relays, phase selectors) and the converter's
three-loads-per-load split (const P / I / Z) would make every update three times larger."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp
import structlog
from power_grid_model import ComponentType as CT
from power_grid_model import LoadGenType, initialize_array
from power_grid_model_io.converters import PandaPowerConverter

BRANCH_TYPES = (CT.line, CT.transformer, CT.link)


@dataclass
class SwitchRef:
    """Where a named switch acts in the PGM model."""

    component: CT
    row: int  # row in the component's input array
    sides: tuple[str, ...]  # ("from", "to") for a link, one side for a line switch


@dataclass
class PgmNetwork:
    input: dict[CT, np.ndarray]
    node_names: list[str]
    branch_names: list[str]
    branch_rows: list[tuple[CT, int]]
    switches: dict[str, SwitchRef]
    load_names: list[str]  # aligned with input[sym_load]
    asym_load_names: list[str]  # aligned with input[asym_load]
    line_length_km: np.ndarray  # aligned with input[line]
    line_names: list[str]
    trafo_names: list[str]
    link_names: list[str]
    gen_names: list[str] = field(default_factory=list)  # aligned with input[sym_gen]
    node_row: dict[int, int] = field(default_factory=dict)  # pgm id -> row

    def __post_init__(self) -> None:
        self.node_row = {int(i): k for k, i in enumerate(self.input[CT.node]["id"])}


def _names(table, prefix: str) -> list[str]:
    out = []
    for idx, name in zip(table.index, table["name"], strict=True):
        out.append(str(name) if isinstance(name, str) and name else f"{prefix}{idx}")
    return out


def prepare_net(net: pp.pandapowerNet) -> None:
    """In-place fixes before conversion (REFERENCE §1.5 items 1, 7)."""
    if len(net.trafo):
        if "tap_changer_type" in net.trafo:
            has_tap = net.trafo["tap_pos"].notna()
            net.trafo.loc[has_tap & net.trafo["tap_changer_type"].isna(), "tap_changer_type"] = (
                "Ratio"
            )
        if "vector_group" not in net.trafo:
            net.trafo["vector_group"] = None
        vg = net.trafo["vector_group"]
        # Without a vector group the converter fails; Dyn + the net's shift is what a
        # distribution transformer almost always is.
        missing = vg.isna()
        if missing.any():
            shift = net.trafo.loc[missing, "shift_degree"].fillna(0.0)
            net.trafo.loc[missing, "vector_group"] = [
                f"Dyn{round(float(s) / 30) % 12}" for s in shift
            ]
        for col, default in (
            ("vk0_percent", None),
            ("vkr0_percent", None),
            ("mag0_percent", 100.0),
            ("mag0_rx", 0.0),
            ("si0_hv_partial", 0.9),
        ):
            if col not in net.trafo:
                net.trafo[col] = np.nan
            src = {"vk0_percent": "vk_percent", "vkr0_percent": "vkr_percent"}.get(col)
            fill = net.trafo[src] if src else default
            net.trafo[col] = net.trafo[col].fillna(fill)
    if len(net.line):
        # simbench / CIGRE carry no zero-sequence data (REFERENCE §1.5 item 7): r0 = 3 r1,
        # x0 = 3 x1, c0 = c1 / 2 is the usual planning assumption. Builders that know better
        # set these columns themselves.
        for col, src, k in (
            ("r0_ohm_per_km", "r_ohm_per_km", 3.0),
            ("x0_ohm_per_km", "x_ohm_per_km", 3.0),
            ("c0_nf_per_km", "c_nf_per_km", 0.5),
        ):
            if col not in net.line:
                net.line[col] = np.nan
            net.line[col] = net.line[col].fillna(net.line[src] * k)
    for col, val in (("x0x_max", 1.0), ("r0x0_max", 0.1)):
        if col not in net.ext_grid:
            net.ext_grid[col] = np.nan
        net.ext_grid[col] = net.ext_grid[col].fillna(val)
    for col in ("s_sc_max_mva", "s_sc_min_mva"):
        if col not in net.ext_grid:
            net.ext_grid[col] = np.nan
        net.ext_grid[col] = net.ext_grid[col].fillna(1000.0)
    for col in ("rx_max", "rx_min"):
        if col not in net.ext_grid:
            net.ext_grid[col] = np.nan
        net.ext_grid[col] = net.ext_grid[col].fillna(0.1)


def convert(net: pp.pandapowerNet, *, ideal_source: bool = False) -> PgmNetwork:
    prepare_net(net)
    # Only elements the twin handles go through the converter; loads are rebuilt below.
    conv_net = copy.deepcopy(net)
    for tab in ("load", "asymmetric_load"):
        conv_net[tab] = conv_net[tab].iloc[0:0]
    # The converter warns at every build (through structlog, straight to stdout) about transformer
    # zero-sequence fields PGM ignores and i0 clipping; both are known and covered by the OpenDSS
    # cross-checks. gridedge itself does not use structlog, so keep its errors only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    inp, extra = PandaPowerConverter(log_level=logging.ERROR).load_input_data(conv_net)
    inp = {k: v.copy() for k, v in inp.items() if len(v)}
    inp.pop(CT.sym_load, None)
    inp.pop(CT.asym_load, None)
    if ideal_source and CT.source in inp:
        inp[CT.source]["sk"] = 1e15  # REFERENCE §1.5 item 3: pandapower's ext_grid is ideal in PF

    bus_names = _names(net.bus, "bus")
    bus_name_of = dict(zip(net.bus.index, bus_names, strict=True))
    pgm_of_bus: dict[int, int] = {}
    tables: dict[int, tuple[str, int, str | None]] = {}
    for pid, info in extra.items():
        ref = info["id_reference"]
        tables[int(pid)] = (ref["table"], int(ref["index"]), ref.get("name"))
        if ref["table"] == "bus":
            pgm_of_bus[int(ref["index"])] = int(pid)
    node_names = [bus_name_of[tables[int(i)][1]] for i in inp[CT.node]["id"]]

    line_names_all = dict(zip(net.line.index, _names(net.line, "line"), strict=True))
    trafo_names_all = dict(zip(net.trafo.index, _names(net.trafo, "trafo"), strict=True))
    switch_names_all = dict(zip(net.switch.index, _names(net.switch, "switch"), strict=True))

    def names_for(ct: CT, mapping: dict[int, str]) -> list[str]:
        if ct not in inp:
            return []
        return [mapping[tables[int(i)][1]] for i in inp[ct]["id"]]

    line_names = names_for(CT.line, line_names_all)
    trafo_names = names_for(CT.transformer, trafo_names_all)
    link_names = names_for(CT.link, switch_names_all)
    sgen_names_all = (
        dict(zip(net.sgen.index, _names(net.sgen, "sgen"), strict=True)) if len(net.sgen) else {}
    )
    gen_names = names_for(CT.sym_gen, sgen_names_all)
    branch_names: list[str] = []
    branch_rows: list[tuple[CT, int]] = []
    for ct, names in ((CT.line, line_names), (CT.transformer, trafo_names), (CT.link, link_names)):
        for k, n in enumerate(names):
            branch_names.append(n)
            branch_rows.append((ct, k))
    if len(set(branch_names)) != len(branch_names):
        raise ValueError("branch names (lines, transformers, bus-bus switches) must be unique")

    switches: dict[str, SwitchRef] = {}
    for k, n in enumerate(link_names):
        switches[n] = SwitchRef(CT.link, k, ("from", "to"))
    line_row = {tables[int(i)][1]: k for k, i in enumerate(inp.get(CT.line, {"id": []})["id"])}
    trafo_row = {
        tables[int(i)][1]: k for k, i in enumerate(inp.get(CT.transformer, {"id": []})["id"])
    }
    for sidx, sw in net.switch.iterrows():
        name = switch_names_all[sidx]
        if sw["et"] == "l" and int(sw["element"]) in line_row:
            ln = net.line.loc[int(sw["element"])]
            side = "from" if int(sw["bus"]) == int(ln["from_bus"]) else "to"
            switches[name] = SwitchRef(CT.line, line_row[int(sw["element"])], (side,))
        elif sw["et"] == "t" and int(sw["element"]) in trafo_row:
            tr = net.trafo.loc[int(sw["element"])]
            side = "from" if int(sw["bus"]) == int(tr["hv_bus"]) else "to"
            switches[name] = SwitchRef(CT.transformer, trafo_row[int(sw["element"])], (side,))

    next_id = max(int(v["id"].max()) for v in inp.values()) + 1
    loads = net.load[net.load["in_service"]] if len(net.load) else net.load
    load_names = _names(loads, "load") if len(loads) else []
    if len(loads):
        sl = initialize_array("input", CT.sym_load, len(loads))
        sl["id"] = np.arange(next_id, next_id + len(loads))
        next_id += len(loads)
        sl["node"] = [pgm_of_bus[int(b)] for b in loads["bus"]]
        sl["status"] = 1
        sl["type"] = LoadGenType.const_power
        scale = loads["scaling"].to_numpy() if "scaling" in loads else 1.0
        sl["p_specified"] = loads["p_mw"].to_numpy() * 1e6 * scale
        sl["q_specified"] = loads["q_mvar"].to_numpy() * 1e6 * scale
        inp[CT.sym_load] = sl
    al = net.asymmetric_load if "asymmetric_load" in net else None
    asym_names: list[str] = []
    if al is not None and len(al):
        al = al[al["in_service"]]
        asym_names = _names(al, "asym_load")
        a = initialize_array("input", CT.asym_load, len(al))
        a["id"] = np.arange(next_id, next_id + len(al))
        next_id += len(al)
        a["node"] = [pgm_of_bus[int(b)] for b in al["bus"]]
        a["status"] = 1
        a["type"] = LoadGenType.const_power
        a["p_specified"] = al[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy() * 1e6
        a["q_specified"] = al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy() * 1e6
        inp[CT.asym_load] = a

    if CT.line in inp:
        lengths = np.array(
            [float(net.line.at[tables[int(i)][1], "length_km"]) for i in inp[CT.line]["id"]]
        )
    else:
        lengths = np.zeros(0)
    return PgmNetwork(
        input=inp,
        node_names=node_names,
        branch_names=branch_names,
        branch_rows=branch_rows,
        switches=switches,
        load_names=load_names,
        asym_load_names=asym_names,
        line_length_km=lengths,
        line_names=line_names,
        trafo_names=trafo_names,
        link_names=link_names,
        gen_names=gen_names,
    )
