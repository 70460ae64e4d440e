"""Fault location against ground truth: an independent power-grid-model solve of a branched
feeder (tests/flisr/pgm_feeder.py) and the twin's own during-fault states (turin-2feeder)."""

from __future__ import annotations

import numpy as np
import pytest

from gridedge.flisr.location import HeadPhasors, LocationError, SagReport, classify, locate
from gridedge.flisr.network import FaultKind, dyn_view
from gridedge.flisr.twin_model import build_feeder
from gridedge.twin.faults import Fault
from gridedge.twin.model import Twin
from gridedge.twin.state import MeasurementPoint
from tests.flisr import pgm_feeder as P

METERS = {"M5": "N5", "M7": "N7", "M9": "N9", "M3": "N3"}


def _pgm_case(fault):
    pre, during = P.solve(), P.solve(fault)
    model = P.feeder_model()
    for mid, n in METERS.items():
        model.meter_views[mid] = (n, dyn_view(11))
    head = HeadPhasors(pre["v"]["H"], pre["i_head"], during["v"]["H"], during["i_head"])
    sags = [
        SagReport(
            mid, np.abs(dyn_view(11) @ pre["v"][n]) / 55, np.abs(dyn_view(11) @ during["v"][n]) / 55
        )
        for mid, n in METERS.items()
    ]
    return model, head, sags


@pytest.mark.parametrize(
    "fault",
    [
        ("L3", 0.4, "slg", "a", 5.0),
        ("L7", 0.3, "slg", "b", 0.001),  # on a lateral: the sweep alone gives two candidates
        ("L9", 0.8, "3ph", "abc", 2.0),
        ("L1", 0.15, "slg", "c", 20.0),
    ],
)
def test_branched_feeder_noise_free_is_located_on_the_right_section(fault) -> None:
    model, head, sags = _pgm_case(fault)
    out = locate(model, head, sags)
    line = next(x for x in P.LINES if x.id == fault[0])
    assert out.best.section_id == fault[0]
    assert abs(out.best.distance_m - fault[1] * line.length_km * 1000) < 5.0
    assert out.best.rf_ohm == pytest.approx(fault[4], abs=0.2)
    assert out.classification.phases == fault[3]
    assert 0.0 <= out.confidence <= 1.0


def test_meter_voltages_resolve_the_multiple_estimation() -> None:
    """Without sag reports a fault on lateral L7 and one on the trunk at the same electrical
    distance look alike to the head; the meters tell them apart."""
    model, head, sags = _pgm_case(("L7", 0.5, "slg", "a", 10.0))
    with_sags = locate(model, head, sags)
    assert with_sags.best.section_id == "L7"
    sweep_sections = {c.section_id for c in with_sags.sweep}
    assert len(sweep_sections) >= 2  # the loop equation alone is ambiguous


def test_classification_of_the_four_fault_types() -> None:
    kinds = {
        ("slg", "b"): (FaultKind.SLG, "b"),
        ("3ph", "abc"): (FaultKind.THREE_PHASE, "abc"),
        ("llg", "bc"): (FaultKind.LLG, "bc"),
    }
    for (kind, ph), expect in kinds.items():
        _, head, _ = _pgm_case(("L3", 0.5, kind, ph, 1.0))
        c = classify(head)
        assert (c.kind, c.phases) == expect


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(LocationError, match=r"head\.v_pre"):
        HeadPhasors(np.zeros(2), np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(LocationError, match="no fault"):
        classify(HeadPhasors(np.ones(3), np.ones(3), np.ones(3), np.ones(3)))
    model, head, _ = _pgm_case(("L3", 0.5, "slg", "a", 1.0))
    with pytest.raises(LocationError, match="M-unknown"):
        locate(model, head, [SagReport("M-unknown", np.ones(3), np.ones(3))])


@pytest.fixture(scope="module")
def twin2() -> Twin:
    return Twin.from_name("turin-2feeder")


@pytest.mark.parametrize(
    "fault",
    [
        Fault("L-A2-A3", 0.5, "1ph", "a", 0.001),
        Fault("L-A4-A5", 0.3, "2ph", "bc", 5.0),
        Fault("L-A1-A2", 0.7, "2ph-g", "ab", 2.0),
        Fault("L-A5-A6", 0.25, "3ph", "abc", 10.0),
    ],
)
def test_twin_faults_located_within_a_metre(twin2: Twin, fault: Fault) -> None:
    pre = twin2.solve()
    during = twin2.compute_fault(fault)
    head_pt = next(m for m in twin2.measurement_points if m.id == "M1")
    meters = [MeasurementPoint(f"SM-A{k}", f"SS-A{k}-LV", f"TR-A{k}", "to") for k in range(1, 7)]
    info = build_feeder(twin2, head_pt, pre, meters=meters)
    head = HeadPhasors(
        pre.node_voltage("BB-A"),
        pre.branch_current("CB-A"),
        during.node_voltage("BB-A"),
        during.branch_current("CB-A"),
    )
    sags = [
        SagReport(m.id, np.abs(pre.node_voltage(m.node_id)), np.abs(during.node_voltage(m.node_id)))
        for m in meters
    ]
    out = locate(info.model, head, sags)
    length = next(ln.length_m for ln in twin2.line_data() if ln.id == fault.branch_id)
    assert out.best.section_id == fault.branch_id
    assert abs(out.best.distance_m - fault.fraction * length) < 1.0
    assert out.best.rf_ohm == pytest.approx(fault.r_f_ohm, abs=0.05)
    # reported between the two substations the section joins
    assert out.best.from_node.startswith(("SS-A", "CB-A")) and out.best.to_node.startswith("SS-A")
