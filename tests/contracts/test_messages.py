from datetime import datetime

import pytest
from pydantic import ValidationError

from gridedge.contracts.catalog import (
    DeviceRegistration,
    Heartbeat,
    SettingsChanged,
    TopologyDocument,
)


def test_message_round_trip_keeps_schema_and_utc() -> None:
    msg = SettingsChanged(device_id="M1", version=3, etag='"v3"', reason="topology")
    raw = msg.to_json()
    assert b'"schema":"gridedge.settings-changed/1"' in raw
    back = SettingsChanged.from_json(raw)
    assert back.version == 3 and back.ts.utcoffset().total_seconds() == 0


def test_naive_timestamp_refused() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        Heartbeat(device_id="M1", ts=datetime(2026, 1, 1, 12, 0))


def test_unknown_field_refused_with_its_name() -> None:
    with pytest.raises(ValidationError) as err:
        DeviceRegistration.model_validate({"id": "M1", "kind": "meter", "colour": "red"})
    assert err.value.errors()[0]["loc"] == ("colour",)


def test_duplicate_branch_ids_refused() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        TopologyDocument(
            grid="g",
            nodes=[{"id": "a"}, {"id": "b"}],
            branches=[
                {"id": "L1", "from_node": "a", "to_node": "b", "kind": "line"},
                {"id": "L1", "from_node": "b", "to_node": "a", "kind": "line"},
            ],
        )
