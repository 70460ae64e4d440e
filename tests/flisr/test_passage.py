"""Fault passage at the switches against the twin's ground truth (turin-2feeder), and the
verdicts' use: the zone they leave, and the locator kept to it."""

from __future__ import annotations

import numpy as np
import pytest

from gridedge.flisr.location import HeadPhasors, LocationError, SagReport, locate
from gridedge.flisr.passage import (
    MISS_PENALTY,
    current_change,
    fault_passed,
    section_penalties,
)
from gridedge.flisr.twin_model import build_feeder
from gridedge.twin.faults import Fault
from gridedge.twin.model import Twin
from gridedge.twin.state import MeasurementPoint
from tests.flisr.readings import exact_readings

METERS = [MeasurementPoint(f"SM-A{k}", f"SS-A{k}-LV", f"TR-A{k}", "to") for k in range(1, 7)]


@pytest.fixture(scope="module")
def twin2() -> Twin:
    return Twin.from_name("turin-2feeder")


@pytest.fixture(scope="module")
def feeder(twin2: Twin):
    pre = twin2.solve()
    return pre, build_feeder(twin2, "M1", pre, meters=METERS)


def test_switches_on_the_path_to_each_section(feeder) -> None:
    _, info = feeder
    paths = info.switches_on_path
    assert set(paths) == {s.id for s in info.model.sections}
    assert paths["L-A0-A1"] == frozenset()
    assert paths["L-A2-A3"] == {"SW-A1-in", "SW-A1-out", "SW-A2-in", "SW-A2-out"}
    # each section's path is its upstream neighbour's plus the two switches of the substation
    # between them
    assert paths["L-A3-A4"] - paths["L-A2-A3"] == {"SW-A3-in", "SW-A3-out"}


@pytest.mark.parametrize(
    "kind,phases", [("1ph", "a"), ("2ph", "bc"), ("2ph-g", "bc"), ("3ph", "abc")]
)
@pytest.mark.parametrize("rf", [0.001, 20.0, 50.0])
def test_verdicts_from_the_twins_currents_leave_the_faulted_zone(
    twin2: Twin, feeder, kind: str, phases: str, rf: float
) -> None:
    """Every switch's verdict is right, whatever the fault type and resistance: the sections
    left are exactly those behind the same switches as the faulted one (its zone)."""
    pre, info = feeder
    faults = [Fault(s, 0.5, kind, phases, rf) for s in ("L-A0-A1", "L-A2-A3", "L-A5-A6")]
    for fault, st in zip(faults, twin2.fault_batch(faults), strict=True):
        head = current_change(pre.branch_current("CB-A"), st.branch_current("CB-A"))
        switches = sorted(set().union(*info.switches_on_path.values()))
        passed = {
            w: fault_passed(current_change(pre.branch_current(w), st.branch_current(w)), head)
            for w in switches
        }
        truth = info.switches_on_path[fault.branch_id]
        assert {w for w, p in passed.items() if p} == truth, (fault, passed)
        pen = section_penalties(info.switches_on_path, passed)
        free = {s for s, p in pen.items() if p == 0}
        assert free == {s for s, path in info.switches_on_path.items() if path == truth}


def test_penalties_keep_the_zone_free_and_its_neighbours_at_a_cost(feeder) -> None:
    _, info = feeder
    paths = info.switches_on_path
    truth = paths["L-A2-A3"]
    passed = {w: w in truth for w in set().union(*paths.values())}
    pen = section_penalties(paths, passed)
    assert pen["L-A2-A3"] == 0.0
    # one disagreement away: the sections just up- and downstream, at a cost
    assert all(pen[s] == MISS_PENALTY for s in pen if s != "L-A2-A3")
    assert "L-A0-A1" not in pen and "L-A5-A6" not in pen  # two or more: not searched
    # verdicts of switches the feeder does not have change nothing
    assert section_penalties(paths, {"SW-B3-in": True}) == dict.fromkeys(paths, 0.0)


@pytest.fixture(scope="module")
def urban():
    """turin-urban's feeder F01 with a meter on the LV side of every secondary: one
    sectionalizer per substation, so a single wrong verdict moves the best agreement a zone."""
    tw = Twin.from_name("turin-urban")
    pre = tw.solve()
    meters = [
        MeasurementPoint(f"SM-{t.id}", t.to_node, t.id, "to")
        for t in tw.transformer_data()
        if tw.node_voltage_kv(t.to_node) < 1.0
    ]
    info = build_feeder(tw, "M-F01", pre, meters=meters)
    info.model.prepare()
    return tw, pre, info, [m for m in meters if m.id in info.model.meter_views]


@pytest.mark.parametrize("fraction,rf", [(0.1, 0.5), (0.5, 0.5), (0.5, 10.0), (0.9, 20.0)])
def test_one_failed_indicator_is_outweighed_by_the_sags(urban, fraction: float, rf: float) -> None:
    """SW-S028 lies between the head and L-S031; its unit misses the fault current. The best
    agreement is then the zone upstream, but L-S031 stays in the search at MISS_PENALTY and
    the sags (averaged, as fault_capture reports them) carry it: a hard restriction to the
    best-agreeing zone would have lost it every time."""
    tw, pre, info, meters = urban
    paths = info.switches_on_path
    fault = Fault("L-S031", fraction, "1ph", "a", rf)
    st = tw.compute_fault(fault)
    h = info.head_point
    head = HeadPhasors(
        pre.node_voltage(h.node_id),
        pre.branch_current(h.branch_id, h.end),
        st.node_voltage(h.node_id),
        st.branch_current(h.branch_id, h.end),
    )
    sags = [
        SagReport(
            m.id, np.abs(pre.node_voltage(m.node_id)), np.abs(st.node_voltage(m.node_id)), 10, 13
        )
        for m in meters
    ]
    passed = {w: w in paths["L-S031"] for w in set().union(*paths.values())}
    passed["SW-S028"] = False
    pen = section_penalties(paths, passed)
    assert pen["L-S031"] == MISS_PENALTY and min(pen.values()) == 0.0
    out = locate(info.model, head, sags, within=pen, sag_error=0.001)
    assert out.best.section_id == "L-S031"


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(ValueError, match="head_change_a"):
        fault_passed(10.0, 0.0)
    with pytest.raises(ValueError, match="three phases"):
        current_change(np.ones(2), np.ones(3))


def test_locator_searches_only_the_sections_it_is_given(twin2: Twin, feeder) -> None:
    """``within`` is a hard limit: a fault on L-A2-A3 near SS-A3, searched on L-A3-A4 only,
    is reported there (at a worse fit), never outside it."""
    pre, info = feeder
    fault = Fault("L-A2-A3", 0.97, "1ph", "a", 15.0)
    st = twin2.compute_fault(fault)
    head, sags = exact_readings(pre, st, METERS)
    model = info.model
    free = locate(model, head, sags)
    assert free.best.section_id == "L-A2-A3"
    kept = locate(model, head, sags, within={"L-A3-A4"})
    assert {c.section_id for c in kept.candidates} == {"L-A3-A4"}
    assert kept.best.cost > free.best.cost  # the wrong section fits worse
    with pytest.raises(LocationError, match="within"):
        locate(model, head, sags, within={"L-NOPE"})
    with pytest.raises(LocationError, match="within"):
        locate(model, head, sags, within=set())
