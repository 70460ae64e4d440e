"""During-fault phasors of the twin against OpenDSS (an independent n-phase solver) on the same
feeder, with loads: turin-2feeder feeder A built in OpenDSS from the pandapower model.

OpenDSS solves its own pre-fault power flow (constant-PQ loads), then turns every load into the
constant impedance that draws that power at that voltage and solves with the fault — the same
physics the twin claims, computed by different code."""

from __future__ import annotations

import math

import numpy as np
import opendssdirect as dss
import pytest

from gridedge.twin import Fault, Twin

RF = 0.001  # seed 003: R_on = R_g = 0.001 ohm


def _dss_name(s: str) -> str:
    return s.lower().replace("-", "_")


def build_opendss(twin: Twin, fault: Fault | None, feeder: str | None = "A") -> None:
    """``feeder``: build only that feeder of turin-2feeder (its own source); None: everything."""
    net = twin.net
    bus = net.bus["name"].to_dict()
    eg = net.ext_grid.iloc[0]
    if feeder is None:
        keep = set(bus)
    else:
        keep = {b for b, n in bus.items() if twin.grid.node_feeder.get(n) == feeder} | {
            b for b, n in bus.items() if n == "TIE"
        }
        assert bus[int(eg["bus"])] == f"HV-{feeder}"
    keep.add(int(eg["bus"]))
    vn = float(net.bus.at[int(eg["bus"]), "vn_kv"])
    z = vn**2 / float(eg["s_sc_max_mva"])
    x1 = z / math.sqrt(1 + float(eg["rx_max"]) ** 2)
    r1 = float(eg["rx_max"]) * x1
    x0 = x1 * float(eg["x0x_max"])
    r0 = x0 * float(eg["r0x0_max"])
    cmds = [
        "clear",
        "set defaultbasefrequency=50",
        f"new circuit.twin bus1={_dss_name(bus[int(eg['bus'])])} basekv={vn} pu=1.0 phases=3 "
        f"basefreq=50 r1={r1} x1={x1} r0={r0} x0={x0}",
    ]
    for _, tr in net.trafo.iterrows():
        if int(tr["hv_bus"]) not in keep:
            continue
        sn = tr["sn_mva"] * 1000
        x = math.sqrt(tr["vk_percent"] ** 2 - tr["vkr_percent"] ** 2)
        cmds.append(
            f"new transformer.{_dss_name(tr['name'])} phases=3 windings=2 "
            f"buses=[{_dss_name(bus[int(tr['hv_bus'])])} {_dss_name(bus[int(tr['lv_bus'])])}] "
            f"conns=[delta wye] leadlag=lead kvs=[{tr['vn_hv_kv']} {tr['vn_lv_kv']}] kvas=[{sn} {sn}] "
            f"xhl={x} %rs=[{tr['vkr_percent'] / 2} {tr['vkr_percent'] / 2}] %noloadloss={tr['pfe_kw'] / sn * 100} "
            f"%imag={math.sqrt(max(tr['i0_percent'] ** 2 - (tr['pfe_kw'] / sn * 100) ** 2, 0))}"
        )
    for _, ln in net.line.iterrows():
        if int(ln["from_bus"]) not in keep:
            continue
        a, b = _dss_name(bus[int(ln["from_bus"])]), _dss_name(bus[int(ln["to_bus"])])
        params = (
            f"r1={ln['r_ohm_per_km']} x1={ln['x_ohm_per_km']} c1={ln['c_nf_per_km']} "
            f"r0={ln['r0_ohm_per_km']} x0={ln['x0_ohm_per_km']} c0={ln['c0_nf_per_km']} units=km"
        )
        length = float(ln["length_km"])
        if fault is not None and ln["name"] == fault.branch_id and 0 < fault.fraction < 1:
            d = fault.fraction
            cmds.append(
                f"new line.{_dss_name(ln['name'])} bus1={a} bus2=fpt length={d * length} {params}"
            )
            cmds.append(
                f"new line.{_dss_name(ln['name'])}_2 bus1=fpt bus2={b} "
                f"length={(1 - d) * length} {params}"
            )
        else:
            cmds.append(
                f"new line.{_dss_name(ln['name'])} bus1={a} bus2={b} length={length} {params}"
            )
    for _, sw in net.switch.iterrows():
        a, b = int(sw["bus"]), int(sw["element"])
        if a not in keep or b not in keep or not sw["closed"]:
            continue
        cmds.append(
            f"new line.{_dss_name(sw['name'])} bus1={_dss_name(bus[a])} "
            f"bus2={_dss_name(bus[b])} switch=yes r1=1e-7 x1=1e-7 r0=1e-7 x0=1e-7 c1=0 c0=0 "
            "length=1 units=none"  # OpenDSS's default switch is 1 mOhm: not negligible on LV
        )
    for _, ld in net.load.iterrows():
        if int(ld["bus"]) not in keep:
            continue
        kv = net.bus.at[int(ld["bus"]), "vn_kv"]
        cmds.append(
            f"new load.{_dss_name(ld['name'])} bus1={_dss_name(bus[int(ld['bus'])])} phases=3 "
            f"conn=wye kv={kv} kw={ld['p_mw'] * 1000} kvar={ld['q_mvar'] * 1000} model=1 "
            f"vminpu=0.5 vmaxpu=1.5"
        )
    if "asymmetric_load" in net:
        for _, ld in net.asymmetric_load.iterrows():
            if int(ld["bus"]) not in keep:
                continue
            ph = next(k for k, c in enumerate("abc") if ld[f"p_{c}_mw"] != 0)
            kv = net.bus.at[int(ld["bus"]), "vn_kv"] / math.sqrt(3)
            c = "abc"[ph]
            cmds.append(
                f"new load.{_dss_name(ld['name'])} bus1={_dss_name(bus[int(ld['bus'])])}.{ph + 1} "
                f"phases=1 conn=wye kv={kv} kw={ld[f'p_{c}_mw'] * 1000} "
                f"kvar={ld[f'q_{c}_mvar'] * 1000} model=1 vminpu=0.5 vmaxpu=1.5"
            )
    cmds.append("set voltagebases=[220 22 0.4]")
    cmds.append("calcvoltagebases")
    dss.Text.Commands("\n".join(cmds))


def _to_const_z() -> None:
    """Each load becomes the impedance drawing its solved power at its solved voltage."""
    for name in dss.Loads.AllNames():
        dss.Circuit.SetActiveElement(f"Load.{name}")
        nph = dss.CktElement.NumPhases()
        pw = dss.CktElement.Powers()
        p = sum(pw[0 : 2 * nph : 2])
        q = sum(pw[1 : 2 * nph : 2])
        mags = dss.CktElement.VoltagesMagAng()[0 : 2 * nph : 2]
        dss.Loads.Name(name)
        base = dss.Loads.kV() * 1000 / (math.sqrt(3) if nph == 3 else 1.0)
        vpu = float(np.mean(mags)) / base
        dss.Loads.Model(2)
        dss.Loads.kW(p / vpu**2)
        dss.Loads.kvar(q / vpu**2)


def _fault_cmd(f: Fault, node: str) -> str:
    ph = [str("abc".index(p) + 1) for p in f.phases]
    r = max(f.r_f_ohm, 1e-6)
    if f.kind == "1ph":
        return f"new fault.f bus1={node}.{ph[0]} phases=1 r={r}"
    if f.kind == "2ph":
        return f"new fault.f bus1={node}.{ph[0]} bus2={node}.{ph[1]} phases=1 r={r}"
    if f.kind == "2ph-g":
        # the twin's (PGM's) convention: both phases joined solidly, the joint to ground via Z_f
        return (
            f"new fault.fj bus1={node}.{ph[0]} bus2={node}.{ph[1]} phases=1 r=1e-6\n"
            f"new fault.f bus1={node}.{ph[0]} phases=1 r={r}"
        )
    return f"new fault.f bus1={node}.1.2.3 phases=3 r={r}"


def _element_currents(name: str) -> np.ndarray:
    dss.Circuit.SetActiveElement(name)
    c = dss.CktElement.Currents()
    n = dss.CktElement.NumConductors()  # terminal 1 only
    return np.array([complex(c[2 * k], c[2 * k + 1]) for k in range(n)])


def _bus_voltages(name: str) -> np.ndarray:
    dss.Circuit.SetActiveBus(name)
    v = dss.Bus.Voltages()
    return np.array([complex(v[2 * k], v[2 * k + 1]) for k in range(3)])


def opendss_fault(twin: Twin, f: Fault) -> dict[str, np.ndarray]:
    build_opendss(twin, f)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    pre_head = np.abs(_element_currents("Line.cb_a"))
    _to_const_z()
    node = (
        "fpt"
        if 0 < f.fraction < 1
        else _dss_name(
            twin.topology_document().branches[twin.branch_ids.index(f.branch_id)].from_node
        )
    )
    dss.Text.Commands(_fault_cmd(f, node))
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    return {
        "pre_head": pre_head,
        "head": np.abs(_element_currents("Line.cb_a")),
        "fault": np.abs(_element_currents("Fault.f"))[: len(f.phases)],
        "v_ss_a6": np.abs(_bus_voltages("ss_a6")),
        "v_ss_a1": np.abs(_bus_voltages("ss_a1")),
        "v_m2": np.abs(_bus_voltages("ss_a4_lv")),
    }


@pytest.fixture(scope="module")
def twin() -> Twin:
    return Twin.from_name("turin-2feeder")


def test_prefault_head_current_matches_opendss(twin: Twin) -> None:
    st = twin.solve()
    build_opendss(twin, None)
    dss.Solution.Solve()
    ref = np.abs(_element_currents("Line.cb_a"))
    np.testing.assert_allclose(np.abs(st.branch_current("CB-A")), ref, rtol=2e-3)
    np.testing.assert_allclose(
        np.abs(st.node_voltage("SS-A6")), np.abs(_bus_voltages("ss_a6")), rtol=2e-4
    )


@pytest.mark.parametrize(
    ("kind", "branch", "fraction", "rf"),
    [
        ("1ph", "L-A2-A3", 0.5, RF),
        ("1ph", "L-A4-A5", 0.2, 5.0),
        ("2ph", "L-A2-A3", 0.5, RF),
        ("2ph", "L-A5-A6", 0.8, 2.0),
        ("2ph-g", "L-A1-A2", 0.3, RF),
        ("2ph-g", "L-A4-A5", 0.5, 2.0),
        ("3ph", "L-A1-A2", 0.5, 3.0),
        ("3ph", "L-A3-A4", 0.7, RF),
    ],
)
def test_fault_with_loads_matches_opendss(twin: Twin, kind, branch, fraction, rf) -> None:
    f = Fault(branch, fraction, kind, r_f_ohm=rf)
    st = twin.compute_fault(f)
    ref = opendss_fault(twin, f)
    assert st.fault_current is not None
    faulted = np.abs(st.fault_current[f.phase_index])
    if kind == "2ph-g":  # OpenDSS's element f carries the ground current
        faulted = np.abs(st.fault_current.sum(keepdims=True))
    # a 2ph fault element has one conductor in OpenDSS: the same current in both phases
    # issue 3 asks for 1 %; the two engines agree to ~0.002 %, so hold them to 0.2 %
    np.testing.assert_allclose(faulted, np.resize(ref["fault"], faulted.shape), rtol=2e-3)
    np.testing.assert_allclose(np.abs(st.branch_current("CB-A")), ref["head"], rtol=2e-3)
    for node, key in (("SS-A6", "v_ss_a6"), ("SS-A1", "v_ss_a1"), ("SS-A4-LV", "v_m2")):
        got = np.abs(st.node_voltage(node))
        # 0.2 % of the pre-fault voltage (a faulted phase near 0 V has no meaningful relative
        # error)
        scale = np.abs(twin.solve().node_voltage(node)).max()
        assert np.max(np.abs(got - ref[key])) < 2e-3 * scale, (node, got, ref[key])


@pytest.mark.parametrize(
    ("kind", "phases", "rf"),
    [("1ph", "b", 0.05), ("2ph", "bc", 0.02), ("2ph-g", "ab", 0.02)],
)
def test_lv_fault_with_single_phase_customers_matches_opendss(kind, phases, rf) -> None:
    """Unbalanced single-phase loads (lv-residential): the twin's per-phase load impedances in
    the short-circuit solve against OpenDSS's single-phase loads."""
    lv = Twin.from_name("lv-residential")
    f = Fault("L-B2-3", 0.5, kind, phases, rf)
    st = lv.compute_fault(f)
    build_opendss(lv, f, feeder=None)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    pre = np.abs(_element_currents("Line.sw_b1"))
    np.testing.assert_allclose(np.abs(lv.solve().branch_current("SW-B1")), pre, rtol=5e-3)
    _to_const_z()
    dss.Text.Commands(_fault_cmd(f, "fpt"))
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    faulted = np.abs(st.fault_current[f.phase_index])
    ref = np.abs(_element_currents("Fault.f"))
    if kind == "2ph-g":
        faulted = np.abs(st.fault_current.sum(keepdims=True))
    np.testing.assert_allclose(faulted, np.resize(ref, faulted.shape), rtol=2e-3)
    # a healthy branch keeps its unbalanced load currents, phase by phase
    np.testing.assert_allclose(
        np.abs(st.branch_current("SW-B1")), np.abs(_element_currents("Line.sw_b1")), rtol=2e-3
    )
    np.testing.assert_allclose(
        np.abs(st.branch_current("SW-B2")), np.abs(_element_currents("Line.sw_b2")), rtol=2e-3
    )
