"""Actuation over the data plane: a command to a device's relay, switch or phase selector, and
the device's answer once it has acted (seed 001 §IV-B: switch actuation over MQTT, confirmed)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import Field

from gridedge.contracts.common import DeviceId, Message


class CommandAction(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    SELECT_PHASE = "select-phase"


class Command(Message):
    """data/<device>/command, QoS 1, not retained. ``target`` is the switch/branch id or "relay"."""

    SCHEMA = "gridedge.command/1"
    command_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    device_id: DeviceId
    target: str = "relay"
    action: CommandAction
    phase: Literal["a", "b", "c"] | None = None
    origin: str = Field(
        default="", description="who asked: 'flisr', 'scada:<client>', 'operator:<name>'"
    )


class CommandResult(Message):
    """data/<device>/command-result, QoS 1: sent after the actuator has really moved (or failed)."""

    SCHEMA = "gridedge.command-result/1"
    command_id: str
    device_id: DeviceId
    target: str
    ok: bool
    closed: bool | None = Field(default=None, description="actual state after the command")
    phase: Literal["a", "b", "c"] | None = None
    reason: str = ""
