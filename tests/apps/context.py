"""An in-memory AppContext for app tests without the node runtime.

Only the context is a test double (what the runtime would hand the app); the DAQ and actuators
behind it are real backends. Publications are recorded with their full topic, built by the same
topic builder the runtime uses; ``deliver`` feeds a message to matching subscriptions as the
broker would.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gridedge.clock import Clock
from gridedge.contracts.common import Message
from gridedge.contracts.topics import Plane, topic


@dataclass
class Published:
    topic: str
    stream: str
    payload: bytes
    qos: int
    retain: bool


def _matches(pattern: str, value: str) -> bool:
    p, v = pattern.split("/"), value.split("/")
    for k, part in enumerate(p):
        if part == "#":
            return True
        if k >= len(v) or (part != "+" and part != v[k]):
            return False
    return len(p) == len(v)


@dataclass
class FakeContext:
    device_id: str
    clock: Clock
    daq: Any = None
    actuators: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    app_name: str = "test"
    data_dir: str | None = None
    published: list[Published] = field(default_factory=list)
    subscriptions: list[tuple[str, Any, int]] = field(default_factory=list)
    sleeps: int = 0
    naps: list[float] = field(default_factory=list)
    alive_calls: int = 0

    def __post_init__(self) -> None:
        self.log = logging.getLogger(f"test.app.{self.app_name}")
        self.settings = None
        self.grid = None

    def publish(
        self,
        stream: str,
        payload: Message | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        plane: str = "data",
        device_id: str | None = None,
    ) -> None:
        data = payload.to_json() if isinstance(payload, Message) else bytes(payload)
        t = topic(Plane(plane), device_id or self.device_id, str(stream))
        self.published.append(Published(t, str(stream), data, qos, retain))

    def subscribe(self, pattern: str, handler: Any, *, qos: int = 1, plane: str = "data") -> None:
        self.subscriptions.append((pattern, handler, qos))

    async def deliver(self, t: str, payload: bytes) -> int:
        n = 0
        for pattern, handler, _ in self.subscriptions:
            if _matches(pattern, t):
                res = handler(t, payload)
                if asyncio.iscoroutine(res):
                    await res
                n += 1
        return n

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.naps.append(seconds)
        await self.clock.sleep(seconds)

    def alive(self) -> None:
        self.alive_calls += 1

    def on(self, stream: str) -> list[Published]:
        return [p for p in self.published if p.stream == stream]


async def run_stepped(clock: Clock, seconds: float, step_s: float = 0.005) -> None:
    """Advance a stepped clock in small steps, letting every task run in between."""
    steps = round(seconds / step_s)
    for _ in range(steps):
        clock.advance(step_s)
        for _ in range(12):  # wake-up -> asyncio.wait -> read -> next sleep takes a few rounds
            await asyncio.sleep(0)


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(predicate, timeout_s: float = 30.0) -> None:
    """Wait in real time (file writes run on a thread) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


class BrokerCollector:
    """Subscribes on a real broker and keeps (topic, parsed JSON) in arrival order."""

    def __init__(self, url: str, pattern: str) -> None:
        from gridedge.broker.client import MqttClient

        self.pattern = pattern
        self.items: list[tuple[str, Any]] = []
        self.client = MqttClient(url)

    async def __aenter__(self) -> BrokerCollector:
        await self.client.connect()
        self.client.subscribe(self.pattern, self._on, qos=1)
        await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.disconnect()

    def _on(self, t: str, payload: bytes) -> None:
        import json

        self.items.append((t, json.loads(payload)))

    def on(self, stream: str) -> list[Any]:
        return [b for t, b in self.items if t.endswith("/" + stream)]
