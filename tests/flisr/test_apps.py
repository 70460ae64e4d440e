"""The FLISR apps refuse bad parameters with a sentence naming the parameter, and the contracts
refuse malformed payloads naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridedge.apps.fault_location import FaultLocationApp
from gridedge.apps.params import ParamError
from gridedge.apps.reconfiguration import ReconfigurationApp
from gridedge.contracts.events import FaultRecord
from gridedge.contracts.flisr import FaultLocation


def test_fault_location_params() -> None:
    app = FaultLocationApp()
    with pytest.raises(ParamError, match="'grid'"):
        app._apply({})
    with pytest.raises(ParamError, match="'meters'"):
        app._apply({"grid": "turin-2feeder", "meters": ["M2"]})
    with pytest.raises(ParamError, match="'sag_wait_s'"):
        app._apply({"grid": "turin-2feeder", "sag_wait_s": -1})
    with pytest.raises(ParamError, match="bogus"):
        app._apply({"grid": "turin-2feeder", "bogus": 1})
    with pytest.raises(ParamError, match="'sag_error'"):
        app._apply({"grid": "turin-2feeder", "sag_error": 0})
    ok = app._apply({"grid": "turin-2feeder", "meters": {"M2": "SS-A4-LV"}})
    assert ok["sag_wait_s"] == 0.3 and ok["meters"] == {"M2": "SS-A4-LV"}
    assert ok["sag_error"] is None  # the locator's own default
    assert app._apply({"grid": "turin-2feeder", "sag_error": 0.001})["sag_error"] == 0.001
    with pytest.raises(ParamError, match="'head_calibration'"):
        app._apply({"grid": "turin-2feeder", "head_calibration": "yes"})
    assert ok["head_calibration"] is False
    with pytest.raises(ParamError, match="'switch_units'"):
        app._apply({"grid": "turin-2feeder", "switch_units": ["FU-A2"]})
    assert ok["switch_units"] == {}


def test_reconfiguration_params() -> None:
    app = ReconfigurationApp()
    with pytest.raises(ParamError, match="switch_device"):
        app._apply({"grid": "turin-2feeder"})
    with pytest.raises(ParamError, match="'method'"):
        app._apply({"grid": "turin-2feeder", "switch_device": "SWGW", "method": "guess"})
    app.params = app._apply(
        {"grid": "turin-2feeder", "switch_devices": {"TIE-AB": "TIE1"}, "switch_device": "SWGW"}
    )
    assert app.device_for("TIE-AB") == "TIE1"
    assert app.device_for("CB-A") == "SWGW"


def test_fault_location_contract_names_the_field() -> None:
    base = dict(
        device_id="M1",
        grid="g",
        record_id="r",
        section_id="L",
        from_node="a",
        to_node="b",
        distance_m=10.0,
        distance_from_head_m=10.0,
        section_length_m=100.0,
        r_f_ohm=1.0,
        fault_kind="slg",
        phases="a",
        confidence=0.5,
        inception_ns=1,
        detected_ns=2,
        window_captured_ns=3,
        located_ns=4,
        compute_s=0.01,
    )
    FaultLocation(**base)
    with pytest.raises(ValidationError, match="distance_m"):
        FaultLocation(**{**base, "distance_m": -1.0})
    with pytest.raises(ValidationError, match="phases"):
        FaultLocation(**{**base, "phases": "x"})
    with pytest.raises(ValidationError, match="confidence"):
        FaultLocation(**{**base, "confidence": 2.0})


def _record(**over) -> FaultRecord:
    body = {
        "record_id": "r1",
        "device_id": "FU-1",
        "point_id": "SW-A2-out",
        "kind": "rms",
        "trigger": "overcurrent",
        "trigger_ns": 1,
        "inception_ns": 1,
        "inception_source": "trigger",
        "min_rms_v": [9000.0, 12000.0, 12000.0],
        "max_rms_a": [400.0, 60.0, 60.0],
        "pre_rms_v": [12000.0, 12000.0, 12000.0],
        "pre_rms_a": [60.0, 60.0, 60.0],
        "captured_at": "2026-11-22T00:00:00Z",
    }
    return FaultRecord.model_validate({**body, **over})


def test_sag_report_prefers_the_averaged_readings() -> None:
    """The fault-location app hands the locator a meter's averaged sag with its cycle counts
    when the record carries it (so the locator weighs it √cycles tighter), and falls back to
    the one-cycle readings of an older record."""
    from gridedge.apps.fault_location import sag_report

    body = {
        "device_id": "SM-1",
        "point_id": "SM-1",
        "trigger": "undervoltage",
        "min_rms_v": [120.0, 229.0, 229.0],
        "max_rms_a": [1.0, 1.0, 1.0],
        "pre_rms_v": [231.0, 231.0, 231.0],
        "pre_rms_a": [1.0, 1.0, 1.0],
    }
    old = sag_report(_record(**body))
    assert (old.cycles_pre, old.cycles_during) == (1, 1)
    assert list(old.v_during) == [120.0, 229.0, 229.0]
    new = sag_report(
        _record(
            **body,
            sag_mean_v=[126.5, 229.5, 229.4],
            sag_cycles=13,
            pre_mean_v=[230.2, 230.1, 230.0],
            pre_cycles=10,
        )
    )
    assert (new.cycles_pre, new.cycles_during) == (10, 13)
    assert list(new.v_during) == [126.5, 229.5, 229.4]
    assert list(new.v_pre) == [230.2, 230.1, 230.0]
    # a single-phase record cannot be compared with the three-phase model
    one = {**body, "min_rms_v": [92.0], "pre_rms_v": [230.0], "max_rms_a": [1.0]}
    assert sag_report(_record(**{**one, "pre_rms_a": [1.0]})) is None


def test_fault_passage_from_the_units_records() -> None:
    """A unit's RMS log gives its current change; half the head's decides. A unit whose
    switch is not on the feeder, or whose record cannot be read three-phase, gives nothing
    (and does not stop the location)."""
    from gridedge.apps.fault_location import fault_passage

    paths = {"L-1": frozenset(), "L-2": frozenset({"SW-A2-out"}), "L-3": frozenset({"SW-A3-in"})}
    head = _record(device_id="M1", point_id="M1", max_rms_a=[500.0, 60.0, 60.0])
    through = _record()  # +340 A of the head's +440 A
    beyond = _record(device_id="FU-2", point_id="SW-A3-in", max_rms_a=[50.0, 55.0, 55.0])
    foreign = _record(device_id="FU-3", point_id="SW-B2-out")
    broken = _record(device_id="FU-4", point_id="SW-A3-in", pre_rms_a=[60.0], max_rms_a=[9.0])
    got = fault_passage(head, [through, beyond, foreign, broken], paths)
    assert got == {"SW-A2-out": True, "SW-A3-in": False}
    # a unit listed under another switch id than its record's point
    assert fault_passage(head, [through], paths, {"FU-1": "SW-A3-in"}) == {"SW-A3-in": True}
    # a head whose current did not change gives no verdicts
    assert fault_passage(_record(device_id="M1", max_rms_a=[60.0] * 3), [through], paths) == {}


def test_switch_units_must_be_switch_branches() -> None:
    """A switch a grid models as a line's status flag has no node for a unit: the app stops
    with a sentence naming the parameter instead of a traceback on the first fault."""
    from types import SimpleNamespace

    from gridedge.twin.model import Twin

    app = FaultLocationApp()
    tw = Twin.from_name("cigre-mv")
    flag = next(w for w in tw.switch_ids if w not in tw.branch_ids)
    app.params = app._apply({"grid": "cigre-mv", "switch_units": {"FU-1": flag}})
    with pytest.raises(ParamError, match=r"'switch_units'.*not a switch branch"):
        app._placements(SimpleNamespace(grid=None), tw)
    tw2 = Twin.from_name("turin-2feeder")
    app.params = app._apply({"grid": "turin-2feeder", "switch_units": {"FU-1": "SW-A2-out"}})
    node = app._placements(SimpleNamespace(grid=None), tw2)["FU-1"]
    assert node == tw2.branch_ends()[tw2.branch_ids.index("SW-A2-out")][0]
