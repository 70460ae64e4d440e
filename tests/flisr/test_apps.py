"""The FLISR apps refuse bad parameters with a sentence naming the parameter, and the contracts
refuse malformed payloads naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridedge.apps.fault_location import FaultLocationApp
from gridedge.apps.params import ParamError
from gridedge.apps.reconfiguration import ReconfigurationApp
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


def test_sag_report_prefers_the_averaged_readings() -> None:
    """The fault-location app hands the locator a meter's averaged sag with its cycle counts
    when the record carries it (so the locator weighs it √cycles tighter), and falls back to
    the one-cycle readings of an older record."""
    from gridedge.apps.fault_location import sag_report
    from gridedge.contracts.events import FaultRecord

    body = {
        "record_id": "r1",
        "device_id": "SM-1",
        "point_id": "SM-1",
        "kind": "rms",
        "trigger": "undervoltage",
        "trigger_ns": 1,
        "inception_ns": 1,
        "inception_source": "trigger",
        "min_rms_v": [120.0, 229.0, 229.0],
        "max_rms_a": [1.0, 1.0, 1.0],
        "pre_rms_v": [231.0, 231.0, 231.0],
        "pre_rms_a": [1.0, 1.0, 1.0],
        "captured_at": "2026-11-22T00:00:00Z",
    }
    old = sag_report(FaultRecord.model_validate(body))
    assert (old.cycles_pre, old.cycles_during) == (1, 1)
    assert list(old.v_during) == [120.0, 229.0, 229.0]
    new = sag_report(
        FaultRecord.model_validate(
            {
                **body,
                "sag_mean_v": [126.5, 229.5, 229.4],
                "sag_cycles": 13,
                "pre_mean_v": [230.2, 230.1, 230.0],
                "pre_cycles": 10,
            }
        )
    )
    assert (new.cycles_pre, new.cycles_during) == (10, 13)
    assert list(new.v_during) == [126.5, 229.5, 229.4]
    assert list(new.v_pre) == [230.2, 230.1, 230.0]
    # a single-phase record cannot be compared with the three-phase model
    one = {**body, "min_rms_v": [92.0], "pre_rms_v": [230.0], "max_rms_a": [1.0]}
    assert sag_report(FaultRecord.model_validate({**one, "pre_rms_a": [1.0]})) is None
