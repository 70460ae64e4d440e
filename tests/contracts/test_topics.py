import pytest

from gridedge.contracts import Plane, Stream, TopicError, parse_topic, subscription, topic


def test_topic_shape_and_round_trip() -> None:
    t = topic(Plane.DATA, "SM-3f2a", Stream.TELEMETRY)
    assert t == "gridedge/v1/data/SM-3f2a/telemetry"
    parts = parse_topic(t)
    assert (parts.plane, parts.device_id, parts.stream) == (Plane.DATA, "SM-3f2a", "telemetry")


def test_subscription_wildcards() -> None:
    assert subscription(Plane.MGMT, "+", Stream.STATUS) == "gridedge/v1/mgmt/+/status"
    assert subscription(Plane.DATA) == "gridedge/v1/data/+/#"


@pytest.mark.parametrize("bad", ["a/b", "x#", "", "a+b", "has space"])
def test_bad_device_id_is_named(bad: str) -> None:
    with pytest.raises(TopicError, match="device_id"):
        topic(Plane.DATA, bad, Stream.TELEMETRY)


def test_bad_plane_and_foreign_topic() -> None:
    with pytest.raises(ValueError):
        topic("control", "M1", Stream.TELEMETRY)
    with pytest.raises(TopicError, match="plane"):
        parse_topic("gridedge/v1/ctrl/M1/x")
    with pytest.raises(TopicError, match="form"):
        parse_topic("other/v1/data/M1/x")
