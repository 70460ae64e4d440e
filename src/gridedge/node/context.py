"""The runtime's implementation of :class:`gridedge.node.appapi.AppContext`.

One context per running app instance. It is the app's only door to the node: publications go
through the node's outbox (store-and-forward), subscriptions through the node's shared MQTT
connections (dropped when the instance stops), and every ``sleep``/``alive`` feeds the watchdog.
Apps that declare themselves blocking run on their own thread and event loop; the context then
hands their publications and subscriptions over to the node's loop thread-safely.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import weakref
from typing import Any, Protocol

from gridedge.clock import Clock
from gridedge.contracts.catalog import DeviceSettings, GridPortion
from gridedge.contracts.common import Message
from gridedge.contracts.topics import Plane, topic
from gridedge.node.appapi import ActuatorBackend, DaqBackend, MessageHandler
from gridedge.node.schedule import Periodic


class AppHost(Protocol):
    """What the node offers its apps (implemented by the runtime and by fleet meters)."""

    device_id: str
    clock: Clock
    settings: DeviceSettings
    daq: DaqBackend | None
    actuators: ActuatorBackend | None
    loop: asyncio.AbstractEventLoop

    def enqueue(self, plane: Plane, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...
    def add_subscription(
        self, plane: Plane, pattern: str, handler: MessageHandler, qos: int
    ) -> int: ...
    def remove_subscription(self, plane: Plane, token: int) -> None: ...


class NodeAppContext:
    def __init__(
        self,
        host: AppHost,
        app_name: str,
        version: str,
        params: dict[str, Any],
        state: dict[str, Any],
    ) -> None:
        self._host = host
        self.device_id = host.device_id
        self.app_name = app_name
        self.version = version
        self.params = dict(params)
        self.state = state
        self.clock = host.clock
        self.log = logging.getLogger(f"gridedge.app.{app_name}")
        self.last_alive = time.monotonic()
        self.published = 0
        self._subs: list[tuple[Plane, int]] = []
        self._topics: dict[tuple[str, str | None, str], tuple[Plane, str]] = {}
        self._timers: weakref.WeakSet[Periodic] = weakref.WeakSet()
        self._app_loop: asyncio.AbstractEventLoop | None = None  # set for blocking apps
        self._node_thread = threading.get_ident()  # contexts are created on the node's loop
        self.closed = False

    # -- read ---------------------------------------------------------------------------------
    @property
    def settings(self) -> DeviceSettings:
        return self._host.settings

    @property
    def grid(self) -> GridPortion | None:
        return self._host.settings.grid

    @property
    def daq(self) -> DaqBackend | None:
        return self._host.daq

    @property
    def actuators(self) -> ActuatorBackend | None:
        return self._host.actuators

    # -- do -----------------------------------------------------------------------------------
    def _on_node_loop(self) -> bool:
        return self._app_loop is None or threading.get_ident() == self._node_thread

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
        if self.closed:
            return  # a stopped instance (e.g. the old version after a swap) no longer speaks
        data = payload.to_json() if isinstance(payload, Message) else bytes(payload)
        key = (plane, device_id, stream)
        cached = self._topics.get(key)
        if cached is None:  # building (and validating) a topic costs more than the publish
            cached = self._topics[key] = (
                Plane(plane),
                topic(plane, device_id or self.device_id, stream),
            )
        p, t = cached
        self.published += 1
        if self._on_node_loop():
            self._host.enqueue(p, t, data, qos, retain)
        else:
            self._host.loop.call_soon_threadsafe(self._host.enqueue, p, t, data, qos, retain)

    def subscribe(
        self, pattern: str, handler: MessageHandler, *, qos: int = 1, plane: str = "data"
    ) -> None:
        p = Plane(plane)
        if self._app_loop is not None:
            handler = self._bridge(handler)
        if self._on_node_loop():
            self._subs.append((p, self._host.add_subscription(p, pattern, handler, qos)))
        else:
            fut = asyncio.run_coroutine_threadsafe(
                self._sub_async(p, pattern, handler, qos), self._host.loop
            )
            fut.result(10)

    async def _sub_async(self, p: Plane, pattern: str, handler: MessageHandler, qos: int) -> None:
        self._subs.append((p, self._host.add_subscription(p, pattern, handler, qos)))

    def _bridge(self, handler: MessageHandler) -> MessageHandler:
        """Run a blocking app's handler on the app's own loop, not the node's."""
        app_loop = self._app_loop
        assert app_loop is not None

        def deliver(t: str, payload: bytes) -> None:
            async def call() -> None:
                result = handler(t, payload)
                if inspect.isawaitable(result):
                    await result

            if not app_loop.is_closed():
                asyncio.run_coroutine_threadsafe(call(), app_loop)

        return deliver

    async def sleep(self, seconds: float) -> None:
        self.last_alive = time.monotonic()
        await self.clock.sleep(seconds)
        self.last_alive = time.monotonic()

    def alive(self) -> None:
        self.last_alive = time.monotonic()

    def every(self, interval_s: float) -> Periodic:
        """A periodic tick on the node's clock, shared with every other app of the event loop
        (gridedge.node.schedule): ``async for _ in ctx.every(1.0): ...``."""
        timer = Periodic(self.clock, interval_s, on_tick=self.alive)
        self._timers.add(timer)  # weakly: a timer the app dropped is gone from here too
        return timer

    def idle_s(self) -> float:
        # an app parked in its periodic timer waits on the runtime, not on itself: not a stall
        # however long the interval
        for timer in list(self._timers):
            if timer.waiting:
                return 0.0
        return time.monotonic() - self.last_alive

    def close(self) -> None:
        """Drop this instance's subscriptions and timers (called on the node's loop)."""
        self.closed = True
        for timer in list(self._timers):
            if self._app_loop is None:
                timer.close()
            elif not self._app_loop.is_closed():
                self._app_loop.call_soon_threadsafe(timer.close)
        self._timers.clear()
        for plane, token in self._subs:
            self._host.remove_subscription(plane, token)
        self._subs.clear()
