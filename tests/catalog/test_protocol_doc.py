"""docs/protocol.md is generated from the contracts; the committed file must be current."""

from __future__ import annotations

from pathlib import Path

from gridedge.catalog.protocol_doc import render
from gridedge.contracts.topics import Plane, Stream, topic

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_committed_protocol_doc_is_current() -> None:
    assert DOC.read_text() == render(), "run: gridedge catalog protocol-doc"


def test_doc_lists_every_topic_and_endpoint() -> None:
    text = render()
    assert f"`{topic(Plane.MGMT, 'catalog', Stream.TOPOLOGY)}`" in text
    for stream in ("settings", "status", "heartbeat", "app-state"):
        assert f"gridedge/v1/mgmt/{{device_id}}/{stream}" in text
    for stream in ("telemetry", "event", "fault", "command", "command-result"):
        assert f"gridedge/v1/data/{{device_id}}/{stream}" in text
    for path in ("/v1/devices/{device_id}/provision", "/v1/topology/{grid}", "/v1/apps"):
        assert f"`{path}`" in text
    assert "### SettingsChanged" in text and "`gridedge.settings-changed/1`" in text
    assert "### Telemetry" in text and "### Command" in text
