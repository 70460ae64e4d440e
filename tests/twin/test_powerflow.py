"""Power flow of the twin (power-grid-model) against pandapower on the same grids.

The twin is built with ``ideal_source=True`` here because pandapower's ext_grid is an ideal
voltage source in a power flow while power-grid-model puts the short-circuit impedance in
series (REFERENCE §1.5 item 3); everything else is the model the twin uses."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from gridedge.twin import LoadflowNotConverged, Twin
from gridedge.twin.grids import build

SQ3 = np.sqrt(3)


def _compare(twin: Twin, net) -> tuple[float, float]:
    st = twin.solve(symmetric=True)
    name_to_idx = {n: i for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    idx = [name_to_idx[n] for n in twin.node_ids]
    un = net.bus.loc[idx, "vn_kv"].to_numpy() * 1e3 / SQ3
    vm = np.abs(st.u[:, 0]) / un
    va = np.degrees(np.angle(st.u[:, 0]))
    ref_vm = net.res_bus.loc[idx, "vm_pu"].to_numpy()
    ref_va = net.res_bus.loc[idx, "va_degree"].to_numpy()
    live = np.isfinite(ref_vm)
    dva = (va[live] - ref_va[live] + 180) % 360 - 180
    return float(np.max(np.abs(vm[live] - ref_vm[live]))), float(np.max(np.abs(dva)))


@pytest.mark.parametrize("name", ["turin-2feeder", "turin-urban", "cigre-mv", "simbench-mv-urban"])
def test_symmetric_pf_matches_pandapower(name: str) -> None:
    twin = Twin(build(name), ideal_source=True)
    net = copy.deepcopy(twin.net)
    pp.runpp(net, calculate_voltage_angles=True, tolerance_mva=1e-9, init="dc")
    dvm, dva = _compare(twin, net)
    assert dvm < 1e-4, f"{name}: max |dV| {dvm:.2e} pu"
    assert dva < 0.01, f"{name}: max |d angle| {dva:.3e} deg"


def test_pf_after_switching_matches_pandapower() -> None:
    twin = Twin(build("turin-2feeder"), ideal_source=True)
    twin.operate("SW-A4-in", False)
    twin.operate("TIE-AB", True)
    net = copy.deepcopy(twin.net)
    sw = net.switch
    sw.loc[sw["name"] == "SW-A4-in", "closed"] = False
    sw.loc[sw["name"] == "TIE-AB", "closed"] = True
    pp.runpp(net, calculate_voltage_angles=True, tolerance_mva=1e-9)
    dvm, _ = _compare(twin, net)
    assert dvm < 1e-4
    st = twin.state
    # SS-A4..A6 are now fed from feeder B: feeder B's head carries them
    assert abs(st.branch_current("CB-B")[0]) > 1.5 * abs(st.branch_current("CB-A")[0])


def test_lv_asymmetric_pf_matches_pandapower_3ph() -> None:
    twin = Twin(build("lv-residential"), ideal_source=True)
    st = twin.solve()  # asymmetric by default: the grid has single-phase customers
    net = copy.deepcopy(twin.net)
    net.trafo["vector_group"] = "Dyn"  # runpp_3ph wants the group without the clock number
    # runpp_3ph keeps the ext_grid's negative/zero-sequence impedance even in a power flow;
    # make it ideal like the twin's ideal_source
    net.ext_grid["s_sc_max_mva"] = 1e10
    pp.runpp_3ph(net)
    name_to_idx = {n: i for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    idx = [name_to_idx[n] for n in twin.node_ids]
    un = net.bus.loc[idx, "vn_kv"].to_numpy() * 1e3 / SQ3
    ref = net.res_bus_3ph.loc[idx, ["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy()
    got = np.abs(st.u) / un[:, None]
    assert np.max(np.abs(got - ref)) < 1e-4
    # and the unbalance is real: customers are mostly on phase a
    assert got[twin.node_ids.index("B3-6")].argmin() == 0


def test_relay_and_phase_selector_change_the_solution() -> None:
    twin = Twin.from_name("lv-residential")
    st0 = twin.solve()
    node = twin.customers["C01"].node_id
    old = twin.customer_phase("C01")
    new = "c" if old != "c" else "b"
    st1 = twin.select_phase("C01", new)
    k_old, k_new = "abc".index(old), "abc".index(new)
    v0, v1 = np.abs(st0.node_voltage(node)), np.abs(st1.node_voltage(node))
    assert v1[k_old] > v0[k_old] and v1[k_new] < v0[k_new]
    st2 = twin.set_relay("C01", False)
    assert np.abs(st2.node_voltage(node))[k_new] > v1[k_new]
    assert [e.kind for e in twin.events[-2:]] == ["phase", "relay"]


def test_overload_raises_loadflow_not_converged() -> None:
    twin = Twin.from_name("cigre-mv")
    with pytest.raises(LoadflowNotConverged, match="cigre-mv"):
        twin.set_load_power({n: 400e6 for n in twin.load_ids})


def test_simbench_profile_step_matches_pandapower() -> None:
    from gridedge.twin.grids.simbench_mv import profile_step

    twin = Twin(build("simbench-mv-urban"), ideal_source=True)
    base = twin.solve()
    step = 17_000  # a summer noon: PV high
    p, q = profile_step(twin.grid, step)
    twin.set_load_power(p, q)
    st = twin.state
    assert np.max(np.abs(np.abs(st.u) - np.abs(base.u))) > 10.0  # the profile moved voltages
    net = copy.deepcopy(twin.net)
    for tab in ("load", "sgen"):
        names = net[tab]["name"]
        net[tab]["p_mw"] = [p[n] / 1e6 for n in names]
        net[tab]["q_mvar"] = [q[n] / 1e6 for n in names]
    net.load["scaling"] = 1.0
    net.sgen["scaling"] = 1.0
    pp.runpp(net, calculate_voltage_angles=True, tolerance_mva=1e-9)
    dvm, _ = _compare(twin, net)
    assert dvm < 1e-4
