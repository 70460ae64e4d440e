"""Fault API: validation, the fault engine's identities, batch = single."""

from __future__ import annotations

import numpy as np
import pytest
from power_grid_model import ComponentType as CT
from power_grid_model import PowerGridModel

from gridedge.twin import Fault, Twin, TwinError

try:
    from power_grid_model import ShortCircuitVoltageScaling
except ImportError:  # pragma: no cover
    from power_grid_model.enum import ShortCircuitVoltageScaling


@pytest.fixture(scope="module")
def twin() -> Twin:
    return Twin.from_name("turin-2feeder")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"branch_id": "L-A2-A3", "fraction": 1.5}, "fraction"),
        ({"branch_id": "L-A2-A3", "fraction": -0.1}, "fraction"),
        ({"branch_id": "L-A2-A3", "r_f_ohm": -1.0}, "r_f_ohm"),
        ({"branch_id": "L-A2-A3", "kind": "4ph"}, "kind"),
        ({"branch_id": "L-A2-A3", "kind": "2ph", "phases": "a"}, "phases"),
        ({"branch_id": "", "fraction": 0.5}, "branch_id"),
    ],
)
def test_bad_fault_names_the_field(kwargs, field) -> None:
    with pytest.raises(TwinError) as exc:
        Fault(**kwargs)
    assert exc.value.field == field and field in str(exc.value)


def test_unknown_branch_and_partway_switch(twin: Twin) -> None:
    with pytest.raises(TwinError, match="branch_id"):
        twin.apply_fault(Fault("L-XX", 0.5))
    with pytest.raises(TwinError, match="fraction"):
        twin.compute_fault(Fault("TR-A1", 0.5))
    st = twin.compute_fault(Fault("TR-A1", 1.0))  # LV terminal of a secondary transformer
    assert st.fault_current is not None and abs(st.fault_current[0]) > 1000


def test_no_fault_linear_solve_reproduces_the_prefault_flow() -> None:
    """The fault engine's premise: with loads as shunts of their pre-fault admittance and c = 1,
    PGM's short-circuit solve without a fault IS the pre-fault power flow (incl. a source at
    u_ref = 1.03 on CIGRE MV, and unbalanced single-phase customers on the LV grid)."""
    for name in ("turin-2feeder", "cigre-mv", "lv-residential"):
        tw = Twin.from_name(name)
        pre = tw.solve()
        sym = not tw.has_customers
        res = tw._pf(sym)
        inp, _, _ = tw._fault_input(Fault(tw.branch_ids[0], 0.0), res, sym)
        inp[CT.fault]["status"] = 0
        out = PowerGridModel(inp).calculate_short_circuit(
            short_circuit_voltage_scaling=ShortCircuitVoltageScaling.minimum
        )
        n = len(tw.node_ids)
        u = out[CT.node]["u"][:n] * np.exp(1j * out[CT.node]["u_angle"][:n]) * tw._sc_scale()
        rel = np.abs(u - pre.u) / np.abs(pre.u).max(axis=1, keepdims=True)
        assert rel.max() < 1e-6, name


def test_constant_impedance_methods_agree_on_ground_faults(twin: Twin) -> None:
    """REFERENCE §1.5 item 6 (asym PF + const-Z fault load) vs the twin's SC-with-shunts."""
    for f in (Fault("L-A2-A3", 0.4, "1ph", r_f_ohm=3.0), Fault("L-A5-A6", 0.9, "3ph", r_f_ohm=1.0)):
        a = twin.compute_fault(f, method="sc-shunt")
        b = twin.compute_fault(f, method="asym-pf")
        np.testing.assert_allclose(np.abs(a.fault_current), np.abs(b.fault_current), rtol=1e-3)
        np.testing.assert_allclose(np.abs(a.u), np.abs(b.u), rtol=1e-3, atol=1.0)


def test_fault_current_grows_as_rf_falls_and_nearer_the_source(twin: Twin) -> None:
    i = [
        abs(twin.compute_fault(Fault("L-A3-A4", 0.5, r_f_ohm=r)).fault_current[0])
        for r in (20.0, 5.0, 0.0)
    ]
    assert i[0] < i[1] < i[2]
    near = abs(twin.compute_fault(Fault("L-A0-A1", 0.1)).fault_current[0])
    far = abs(twin.compute_fault(Fault("L-A5-A6", 0.9)).fault_current[0])
    assert near > far
    # loads are in: with a 20 ohm fault the unfaulted phases still carry load current
    st = twin.compute_fault(Fault("L-A3-A4", 0.5, r_f_ohm=20.0))
    pre = twin.solve()
    np.testing.assert_allclose(
        abs(st.branch_current("CB-A")[1]), abs(pre.branch_current("CB-A")[1]), rtol=0.2
    )


def test_batch_equals_single(twin: Twin) -> None:
    faults = [
        Fault("L-A2-A3", 0.5, "1ph", "b", 2.0),
        Fault("L-A2-A3", 0.5, "2ph", "ab", 0.0),
        Fault("L-A2-A3", 0.5, "3ph", r_f_ohm=1.0),
        Fault("L-B4-B5", 0.25, "2ph-g", "ac", 0.5),
        Fault("TR-B2", 1.0, "1ph"),
        Fault("L-A2-A3", 0.8, "1ph", r_f_ohm=1.0),  # same line, second position
    ]
    batch = twin.fault_batch(faults)
    assert len(batch) == len(faults)
    for f, b in zip(faults, batch, strict=True):
        s = twin.compute_fault(f, method="sc-shunt")
        # the batch splits every faulted line in one model: charging redistribution only
        np.testing.assert_allclose(b.u, s.u, rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(b.i_from, s.i_from, rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(b.fault_current, s.fault_current, rtol=1e-6)


def test_current_continuity_at_the_fault(twin: Twin) -> None:
    """Current into the faulted section from both ends = fault current (+ cable charging)."""
    f = Fault("L-A3-A4", 0.3, "1ph", r_f_ohm=0.5)
    st = twin.compute_fault(f)
    inflow = st.branch_current("L-A3-A4", "from") + st.branch_current("L-A3-A4", "to")
    assert abs(inflow[0] - st.fault_current[0]) < 0.01 * abs(st.fault_current[0])


def test_unbalanced_customers_are_exact_in_the_fault_solve() -> None:
    lv = Twin.from_name("lv-residential")
    for f in (Fault("L-B1-3", 0.5, "1ph", "b", 0.5), Fault("L-B3-6", 0.3, "1ph", "a", 0.0)):
        a = lv.compute_fault(f)  # sc-shunt with per-phase load impedances
        b = lv.compute_fault(f, method="asym-pf")
        np.testing.assert_allclose(np.abs(a.fault_current), np.abs(b.fault_current), rtol=1e-3)
        # an unfaulted branch carries its own unbalanced load current, phase by phase
        other = "SW-B2"
        np.testing.assert_allclose(
            np.abs(a.branch_current(other)), np.abs(b.branch_current(other)), rtol=1e-3
        )
    # a 3ph fault on the LV grid keeps the load unbalance (default: asymmetric PF)
    st = lv.compute_fault(Fault("L-B3-6", 0.3, "3ph", r_f_ohm=0.2))
    assert np.ptp(np.abs(st.fault_current)) > 1.0
    b3 = lv.fault_batch([Fault("L-B3-6", 0.3, "3ph", r_f_ohm=0.2), Fault("L-B1-3", 0.5)])
    np.testing.assert_allclose(b3[0].fault_current, st.fault_current)
    with pytest.raises(TwinError, match="method"):
        lv.compute_fault(Fault("L-B1-3"), method="emt")
