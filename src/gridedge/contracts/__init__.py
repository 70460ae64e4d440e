"""Versioned wire contracts shared by every role: REST bodies, MQTT payloads, topic builder.

Each role's contracts live in a submodule (``catalog``, ``twin``, ``telemetry``…); this package
re-exports the pieces nearly everyone needs.
"""

from gridedge.contracts.common import Contract, FieldError, Message, Problem, utcnow
from gridedge.contracts.topics import Plane, Stream, TopicError, parse_topic, subscription, topic

__all__ = [
    "Contract",
    "FieldError",
    "Message",
    "Plane",
    "Problem",
    "Stream",
    "TopicError",
    "parse_topic",
    "subscription",
    "topic",
    "utcnow",
]
