"""The app API: everything an app may read and do, and nothing else.

Kept as small as mosaik's simulator API (DESIGN.md §3): an app is a class with ``run(ctx)``
(a coroutine that runs until cancelled) and optionally ``on_params(params)`` (re-parameterise in
place, without a restart). The node runtime gives it an :class:`AppContext`; the same app runs on
a meter (edge), a fog host or a cloud host, only the context's backends differ.

The runtime (:mod:`gridedge.node.context`) implements AppContext. Supervision reads two optional
settings — from a package's manifest, or for a built-in app module from a module-level
``MANIFEST = {"watchdog_s": 30, "blocking": False, "params_schema": {...}}``: an app that neither
sleeps through ``ctx.sleep`` nor calls ``ctx.alive`` within ``watchdog_s`` is restarted, and a
``blocking`` app runs on its own thread. docs/apps.md is the guide.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from gridedge.clock import Clock
from gridedge.contracts.catalog import DeviceSettings, GridPortion
from gridedge.contracts.common import Message
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.waveform import WaveformWindow


@runtime_checkable
class DaqBackend(Protocol):
    """Where measurements come from: the twin's simulated DAQ, a PZEM-004T, a replay file."""

    async def read_rms(self) -> Telemetry:
        """Current RMS/phasor reading (device_id filled in, seq 0; the telemetry app numbers them)."""
        ...

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        """A sampled window of pre_s before and post_s after ``around_ns`` (default: now / the
        latest event the DAQ has seen). Backends without waveforms raise NotImplementedError."""
        ...


@runtime_checkable
class ActuatorBackend(Protocol):
    """What the device can move: its relay, the switches it operates, a phase selector."""

    async def set_relay(self, closed: bool) -> bool:
        """Returns the relay's actual state after acting."""
        ...

    async def operate_switch(self, switch_id: str, closed: bool) -> bool:
        """Returns the switch's actual state after acting."""
        ...

    async def select_phase(self, phase: str) -> str:
        """Returns the phase actually selected."""
        ...


MessageHandler = Callable[[str, bytes], Awaitable[None] | None]


class AppContext(Protocol):
    """What the runtime hands an app."""

    device_id: str
    app_name: str
    params: dict[str, Any]
    settings: DeviceSettings
    clock: Clock
    log: logging.Logger
    state: dict[str, Any]  # kept by the runtime across restarts and updates of this app

    @property
    def grid(self) -> GridPortion | None: ...

    @property
    def daq(self) -> DaqBackend | None: ...

    @property
    def actuators(self) -> ActuatorBackend | None: ...

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
        """Publish on ``gridedge/v1/<plane>/<device_id or own id>/<stream>`` (store-and-forward
        while the broker is away)."""
        ...

    def subscribe(
        self, pattern: str, handler: MessageHandler, *, qos: int = 1, plane: str = "data"
    ) -> None:
        """Receive messages matching an MQTT pattern (unsubscribed automatically when the app stops)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep on the node's clock; also tells the runtime's watchdog the app is alive."""
        ...

    def alive(self) -> None:
        """Tell the watchdog the app is alive (call it in long loops that do not sleep)."""
        ...

    def every(self, interval_s: float) -> Any:
        """A periodic tick on the node's clock: ``async for _ in ctx.every(1.0): ...`` (the
        first tick at once; late ticks skipped and counted in ``.skipped``; ``.set_interval(s)``
        from ``on_params``). Cheaper than a ``sleep`` loop: one timer serves every app on the
        node's event loop (gridedge.node.schedule.Periodic)."""
        ...


class App(Protocol):
    """What an app package's entry point returns (``module:factory`` → ``factory() -> App``)."""

    async def run(self, ctx: AppContext) -> None: ...

    def on_params(self, params: dict[str, Any]) -> None:  # optional
        ...
