"""The one place MQTT topics are built and parsed.

Topic shape (DESIGN.md §3): ``gridedge/v1/<plane>/<device-id>/<stream>``. Building topics anywhere
else by string concatenation is how two roles end up talking past each other, so every role calls
:func:`topic` / :func:`parse_topic` and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "gridedge"
VERSION = "v1"

# Device ids appear inside topics: no MQTT wildcards, separators or whitespace.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
_STREAM_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")

# Pseudo device ids for messages that belong to a service rather than to one device.
CATALOG_ID = "catalog"
BROADCAST_ID = "all"


class Plane(StrEnum):
    """Data plane carries measurements and commands; management plane carries configuration."""

    DATA = "data"
    MGMT = "mgmt"


class Stream(StrEnum):
    """Streams used by more than one role. Roles may use other lowercase stream names."""

    # management plane
    SETTINGS = "settings"  # catalog -> device: a new settings version exists (retained)
    STATUS = "status"  # catalog -> all: connected/disconnected (retained)
    HEARTBEAT = "heartbeat"  # device -> catalog
    TOPOLOGY = "topology"  # catalog -> all (device id = "catalog"): topology version (retained)
    APP_STATE = "app-state"  # device -> catalog: app update state
    # data plane
    TELEMETRY = "telemetry"
    EVENT = "event"
    FAULT = "fault"
    COMMAND = "command"
    COMMAND_RESULT = "command-result"


class TopicError(ValueError):
    """A topic or one of its parts is malformed; the message names the part."""


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID_RE.match(device_id))


def topic(plane: Plane | str, device_id: str, stream: Stream | str) -> str:
    """Build ``gridedge/v1/<plane>/<device-id>/<stream>``; raises TopicError naming the bad part."""
    plane = Plane(plane)
    if device_id not in ("+",) and not valid_device_id(device_id):
        raise TopicError(f"device_id {device_id!r} is not a valid device id ({DEVICE_ID_PATTERN})")
    stream = str(stream)
    if stream not in ("#", "+") and not _STREAM_RE.match(stream):
        raise TopicError(f"stream {stream!r} must be lowercase words separated by '/'")
    return f"{PREFIX}/{VERSION}/{plane.value}/{device_id}/{stream}"


def subscription(plane: Plane | str, device_id: str = "+", stream: Stream | str = "#") -> str:
    """Wildcard subscription on one plane, e.g. every device's telemetry: ``subscription(DATA, "+", TELEMETRY)``."""
    return topic(plane, device_id, stream)


@dataclass(frozen=True, slots=True)
class TopicParts:
    plane: Plane
    device_id: str
    stream: str


def parse_topic(value: str) -> TopicParts:
    parts = value.split("/", 4)
    if len(parts) != 5 or parts[0] != PREFIX or parts[1] != VERSION:
        raise TopicError(
            f"topic {value!r} is not of the form {PREFIX}/{VERSION}/<plane>/<device>/<stream>"
        )
    try:
        plane = Plane(parts[2])
    except ValueError as exc:
        raise TopicError(f"topic {value!r}: plane {parts[2]!r} is not one of data, mgmt") from exc
    if not valid_device_id(parts[3]):
        raise TopicError(f"topic {value!r}: device id {parts[3]!r} is not valid")
    return TopicParts(plane, parts[3], parts[4])
