"""A small branched MV feeder solved by power-grid-model: ground truth for the locator's unit
tests that must not depend on the twin (an independent solver from the locator's own linear
model). Faults use the constant-impedance method of REFERENCE §1.5 item 6 (asymmetric power flow,
loads at constant impedance, an extra grounded admittance at a node inserted part-way along the
faulted line)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    LoadGenType,
    PowerGridModel,
    initialize_array,
)

U_LL = 22_000.0
# cable-like per-km data
R1, X1, R0, X0, C1, C0 = 0.125, 0.112, 0.5, 0.35, 0.3e-6, 0.18e-6


@dataclass
class Line:
    id: str
    frm: str
    to: str
    length_km: float


# head H, trunk H-1-2-3-4-5, lateral 2-6-7, lateral 4-8-9
LINES = [
    Line("L1", "H", "N1", 1.2),
    Line("L2", "N1", "N2", 0.9),
    Line("L3", "N2", "N3", 1.5),
    Line("L4", "N3", "N4", 0.7),
    Line("L5", "N4", "N5", 1.1),
    Line("L6", "N2", "N6", 0.8),
    Line("L7", "N6", "N7", 1.3),
    Line("L8", "N4", "N8", 0.6),
    Line("L9", "N8", "N9", 1.0),
]
LOADS = {
    "N1": 400e3,
    "N2": 300e3,
    "N3": 500e3,
    "N4": 250e3,
    "N5": 600e3,
    "N6": 350e3,
    "N7": 450e3,
    "N8": 300e3,
    "N9": 400e3,
}
PF = 0.95


def solve(fault: tuple[str, float, str, str, float] | None = None) -> dict[str, object]:
    """fault = (line id, fraction, kind 'slg'|'3ph'|'llg', phases, rf). Returns node voltages
    (dict node -> (3,) complex), head current (3,) complex. During the fault the loads keep the
    admittance they had before it."""
    vpre = None
    if fault is not None:
        vpre = solve(None)["v"]
    names = ["H", *sorted({ln.to for ln in LINES})]
    lines = list(LINES)
    extra_node = None
    if fault is not None:
        lid, frac, *_ = fault
        ln = next(x for x in lines if x.id == lid)
        lines.remove(ln)
        extra_node = "F"
        names.append("F")
        lines += [
            Line(lid + "a", ln.frm, "F", ln.length_km * frac),
            Line(lid + "b", "F", ln.to, ln.length_km * (1 - frac)),
        ]
    nid = {n: i for i, n in enumerate(names)}
    nxt = len(names)
    node = initialize_array(DatasetType.input, ComponentType.node, len(names))
    node["id"] = list(range(len(names)))
    node["u_rated"] = U_LL
    line = initialize_array(DatasetType.input, ComponentType.line, len(lines))
    line["id"] = np.arange(nxt, nxt + len(lines))
    nxt += len(lines)
    line["from_node"] = [nid[x.frm] for x in lines]
    line["to_node"] = [nid[x.to] for x in lines]
    line["from_status"] = 1
    line["to_status"] = 1
    L = np.array([x.length_km for x in lines])
    line["r1"], line["x1"], line["r0"], line["x0"] = R1 * L, X1 * L, R0 * L, X0 * L
    line["c1"], line["c0"] = C1 * L, C0 * L
    line["tan1"], line["tan0"] = 0.0, 0.0
    line["i_n"] = 400.0
    src = initialize_array(DatasetType.input, ComponentType.source, 1)
    src["id"], src["node"], src["status"], src["u_ref"] = nxt, nid["H"], 1, 1.0
    src["sk"], src["rx_ratio"], src["z01_ratio"] = 1e15, 0.1, 1.0
    nxt += 1
    ld = initialize_array(
        DatasetType.input, ComponentType.asym_load, len(LOADS) + (fault is not None)
    )
    ld["id"] = np.arange(nxt, nxt + len(ld))
    ld["status"] = 1
    ld["type"] = LoadGenType.const_impedance if fault is not None else LoadGenType.const_power
    for k, (n, p) in enumerate(LOADS.items()):
        ld["node"][k] = nid[n]
        scale = 1.0
        if vpre is not None:  # constant admittance: specified at rated voltage
            scale = (U_LL / np.sqrt(3)) ** 2 / np.abs(vpre[n]) ** 2
        ld["p_specified"][k] = p / 3 * scale
        ld["q_specified"][k] = p / 3 * np.tan(np.arccos(PF)) * scale
    if fault is not None:
        _, _, _kind, phases, rf = fault
        g = (U_LL / np.sqrt(3)) ** 2 / max(rf, 1e-4)
        ld["node"][-1] = nid["F"]
        ld["p_specified"][-1] = [g if ph in phases else 0.0 for ph in "abc"]
        ld["q_specified"][-1] = 0.0
        ld["type"][-1] = LoadGenType.const_impedance
    data = {
        ComponentType.node: node,
        ComponentType.line: line,
        ComponentType.source: src,
        ComponentType.asym_load: ld,
    }
    out = PowerGridModel(data).calculate_power_flow(
        symmetric=False, calculation_method=CalculationMethod.newton_raphson
    )
    u = out[ComponentType.node]["u"] * np.exp(1j * out[ComponentType.node]["u_angle"])
    volts = {n: u[nid[n]] for n in names}
    # head current from line 1 (from side): I = conj(S/V)
    lo = out[ComponentType.line]
    first = [i for i, x in enumerate(lines) if x.frm == "H"]
    i_head = np.zeros(3, dtype=complex)
    for i in first:
        s = lo["p_from"][i] + 1j * lo["q_from"][i]
        i_head += np.conj(s / volts["H"])
    return {"v": volts, "i_head": i_head, "extra": extra_node}


def feeder_model():
    """The same feeder as the locator sees it (line data, load forecasts)."""
    from gridedge.flisr.network import FeederModel, Load, Section, sequence_to_phase

    secs = []
    for ln in LINES:
        z = sequence_to_phase(complex(R1, X1), complex(R0, X0)) * ln.length_km
        w = 2 * np.pi * 50
        y = sequence_to_phase(1j * w * C1, 1j * w * C0) * ln.length_km
        secs.append(Section(ln.id, ln.frm, ln.to, z, y, ln.length_km * 1000))
    loads = [Load(n, complex(p, p * np.tan(np.arccos(PF)))) for n, p in LOADS.items()]
    return FeederModel("H", secs, loads, U_LL)
