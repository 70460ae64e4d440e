"""Supervision of one app: start it, watch it, contain its failures, restart it with backoff.

What is contained, and what is not (in-process supervision has limits):
- an app whose ``run`` raises: caught, reported (app-state ``failed`` + an ``app-error`` event),
  restarted after an exponential backoff; the node and the other apps carry on.
- an app that stalls *while awaiting* (a future that never resolves, a lost connection it waits
  on forever) without calling ``ctx.sleep``/``ctx.alive`` within its watchdog period: cancelled,
  reported as stalled, restarted.
- an app declared ``blocking`` in its manifest runs on its own thread and event loop, so a CPU
  loop or a blocking call stalls only that thread; the watchdog sees it, cancels the task (which
  takes effect at its next await) and, if the thread does not end within a grace period,
  abandons it (Python cannot kill a thread) and starts a fresh instance. An abandoned thread
  keeps its CPU until it returns: counted in ``abandoned_threads`` and reported.
- NOT contained: a non-blocking app that runs a CPU loop or a blocking call on the node's event
  loop freezes the whole node until it returns (the watchdog itself cannot run). The watchdog
  reports it as stalled afterwards. Declare such apps ``blocking: true`` — or run them as a
  separate node process, which the OS contains.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridedge.contracts.catalog import AppUpdateState
from gridedge.node.context import AppHost, NodeAppContext

log = logging.getLogger(__name__)

Reporter = Callable[[str, str, AppUpdateState, str], Awaitable[None] | None]
EventSink = Callable[[str, dict[str, Any]], None]


@dataclass
class AppSpec:
    """A loaded, verified app version, ready to be instantiated."""

    name: str
    version: str
    factory: Callable[[], Any]
    watchdog_s: float = 30.0
    blocking: bool = False
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    min_version: str | None = None
    source: str = "builtin"  # "builtin" or "package"
    root: Path | None = None


class _Instance:
    """One running instance of an app: a task on the node's loop, or a thread with its own loop."""

    def __init__(self, app: Any, ctx: NodeAppContext, blocking: bool) -> None:
        self.app = app
        self.ctx = ctx
        self.blocking = blocking
        self.done: asyncio.Future[None]
        self._thread: threading.Thread | None = None
        self._thread_task: asyncio.Task[None] | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        node_loop = asyncio.get_running_loop()
        if not self.blocking:
            self.done = asyncio.ensure_future(self.app.run(self.ctx))
            return
        self.done = node_loop.create_future()
        started = threading.Event()

        def finish(exc: BaseException | None) -> None:
            if self.done.done():
                return
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)

        def body() -> None:
            loop = asyncio.new_event_loop()
            self._thread_loop = loop
            self.ctx._app_loop = loop
            outcome: BaseException | None = None
            try:
                self._thread_task = loop.create_task(self.app.run(self.ctx))
                started.set()
                loop.run_until_complete(self._thread_task)
            except BaseException as exc:  # delivered to the node's loop, not lost in the thread
                outcome = exc
            finally:
                started.set()
                with contextlib.suppress(Exception):
                    loop.close()
                if not node_loop.is_closed():
                    node_loop.call_soon_threadsafe(finish, outcome)

        self._thread = threading.Thread(target=body, name=f"app-{self.ctx.app_name}", daemon=True)
        self._thread.start()
        started.wait(5)

    async def stop(self, grace_s: float = 3.0) -> bool:
        """Cancel; True if the instance really ended (False: an abandoned thread)."""
        if self.done.done():
            return True
        if not self.blocking:
            self.done.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self.done), grace_s)
            return self.done.done()
        loop, task = self._thread_loop, self._thread_task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.done), grace_s)
        return self.done.done()


class AppRunner:
    """Keeps one app running: restarts with backoff after a crash or a stall."""

    def __init__(
        self,
        host: AppHost,
        spec: AppSpec,
        params: dict[str, Any],
        state: dict[str, Any],
        *,
        report: Reporter,
        event: EventSink,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self.host = host
        self.spec = spec
        self.params = dict(params)
        self.state = state
        self._report = report
        self._event = event
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.restarts = 0
        self.crashes = 0
        self.stalls = 0
        self.abandoned_threads = 0
        self.instance: _Instance | None = None
        self.running = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    async def _emit(self, state: AppUpdateState, reason: str = "") -> None:
        result = self._report(self.spec.name, self.spec.version, state, reason)
        if inspect.isawaitable(result):
            await result

    def _new_instance(self) -> _Instance:
        ctx = NodeAppContext(self.host, self.spec.name, self.spec.version, self.params, self.state)
        app = self.spec.factory()
        if not callable(getattr(app, "run", None)):
            raise TypeError(
                f"factory of {self.spec.name} returned {type(app).__name__} without run(ctx)"
            )
        return _Instance(app, ctx, self.spec.blocking)

    async def start(self) -> None:
        """Create and start the first instance; raises if the app cannot even be instantiated
        (the caller then keeps the previous version running)."""
        inst = self._new_instance()
        inst.start()
        self.instance = inst
        self.running.set()
        await self._emit(AppUpdateState.RUNNING)
        self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            inst = self.instance
            assert inst is not None
            started = time.monotonic()
            reason = await self._watch(inst)
            inst.ctx.close()
            self.running.clear()
            if self._stopping:
                return
            if reason is None:  # run() returned: the app considers itself done
                await self._emit(AppUpdateState.STOPPED, "run() returned")
                return
            if time.monotonic() - started > self.healthy_after_s:
                attempt = 0
            delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
            delay = random.uniform(delay / 2, delay)
            attempt += 1
            log.warning("app %s %s: %s; restart in %.1f s", self.name, self.version, reason, delay)
            self._event(
                self.name,
                {"reason": reason, "restart_in_s": round(delay, 3), "version": self.version},
            )
            await self._emit(AppUpdateState.FAILED, reason)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                inst = self._new_instance()
                inst.start()
            except Exception as exc:
                self.instance = None
                reason = f"could not instantiate: {type(exc).__name__}: {exc}"
                self._event(self.name, {"reason": reason, "version": self.version})
                await self._emit(AppUpdateState.FAILED, reason)
                await asyncio.sleep(self.backoff_max_s)
                continue
            self.instance = inst
            self.restarts += 1
            self.running.set()
            await self._emit(AppUpdateState.RUNNING, f"restarted ({self.restarts})")

    async def _watch(self, inst: _Instance) -> str | None:
        """Wait for the instance to end or stall; the reason it must be restarted, or None."""
        period = max(0.05, min(5.0, self.spec.watchdog_s / 4))
        while True:
            done, _ = await asyncio.wait({inst.done}, timeout=period)
            if done:
                if inst.done.cancelled():
                    return None if self._stopping else "cancelled"
                exc = inst.done.exception()
                if exc is None:
                    return None
                self.crashes += 1
                tb = traceback.extract_tb(exc.__traceback__)
                where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
                return f"raised {type(exc).__name__}: {exc}{where}"
            if self._stopping:
                return None
            if inst.ctx.idle_s() > self.spec.watchdog_s:
                self.stalls += 1
                idle = inst.ctx.idle_s()
                ended = await inst.stop()
                if not ended:
                    self.abandoned_threads += 1
                    return f"stalled {idle:.1f} s (watchdog {self.spec.watchdog_s} s); thread abandoned"
                return f"stalled {idle:.1f} s (watchdog {self.spec.watchdog_s} s)"

    def set_params(self, params: dict[str, Any]) -> bool:
        """Re-parameterise in place; False if the app has no on_params (caller restarts it)."""
        inst = self.instance
        on_params = getattr(inst.app, "on_params", None) if inst else None
        if inst is None or not callable(on_params):
            return False
        self.params = dict(params)
        inst.ctx.params = dict(params)
        if inst.blocking and inst._thread_loop is not None:
            inst._thread_loop.call_soon_threadsafe(on_params, dict(params))
        else:
            on_params(dict(params))
        return True

    async def stop(self) -> None:
        self._stopping = True
        inst = self.instance
        if inst is not None:
            ended = await inst.stop()
            if not ended:
                self.abandoned_threads += 1
            inst.ctx.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.running.clear()
