"""Shared helpers of the catalog tests: a real MQTT subscriber that records what it receives, and a
small two-feeder topology."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from gridedge.broker.client import MqttClient
from gridedge.contracts.catalog import TopologyBranch, TopologyDocument, TopologyNode


class Recorder:
    """Subscribes on a real broker and keeps (topic, decoded JSON) in arrival order."""

    def __init__(self, url: str) -> None:
        self.client = MqttClient(url)
        self.messages: list[tuple[str, Any]] = []

    async def start(self, *patterns: str) -> Recorder:
        await self.client.connect()
        for p in patterns:
            self.client.subscribe(p, self._on, qos=1)
        await asyncio.sleep(0.2)  # let the SUBACKs (and retained messages) arrive
        return self

    def _on(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, json.loads(payload) if payload else None))

    def on(self, topic: str) -> list[Any]:
        return [p for t, p in self.messages if t == topic]

    async def wait_for(
        self, pred: Callable[[], bool], timeout_s: float = 5.0, what: str = "message"
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.messages[-10:]}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.client.disconnect()


def two_feeders(sw_a_closed: bool = True, tie_closed: bool = False) -> TopologyDocument:
    """Source S feeds A1-A2-[SW-A]-A3-A4 and B1-B2; a normally-open tie joins A4 and B2."""
    nodes = [TopologyNode(id="S", kind="source", voltage_kv=20)] + [
        TopologyNode(id=n, feeder=n[0]) for n in ("A1", "A2", "A3", "A4", "B1", "B2")
    ]
    br = [
        TopologyBranch(id="CB-A", from_node="S", to_node="A1", kind="breaker", switchable=True),
        TopologyBranch(id="L-A12", from_node="A1", to_node="A2", kind="line", length_m=400),
        TopologyBranch(
            id="SW-A",
            from_node="A2",
            to_node="A3",
            kind="switch",
            switchable=True,
            closed=sw_a_closed,
        ),
        TopologyBranch(id="L-A34", from_node="A3", to_node="A4", kind="line", length_m=300),
        TopologyBranch(id="CB-B", from_node="S", to_node="B1", kind="breaker", switchable=True),
        TopologyBranch(id="L-B12", from_node="B1", to_node="B2", kind="cable", length_m=500),
        TopologyBranch(
            id="TIE",
            from_node="A4",
            to_node="B2",
            kind="tie",
            switchable=True,
            normally_open=True,
            closed=tie_closed,
        ),
    ]
    return TopologyDocument(grid="g2", nodes=nodes, branches=br)
