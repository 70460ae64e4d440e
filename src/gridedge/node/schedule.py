"""Periodic ticks for apps: ``async for _ in ctx.every(interval_s)``, one timer per event loop.

Why: a fleet process runs 5,000 telemetry apps on one event loop. Each used to sleep on its own
loop timer through a chain of coroutines (app → ticker → context → clock → ``asyncio.sleep``),
and waking it every second cost more than building the reading. Here the periodic waits of
every app on a loop (and clock) sit in one heap behind one loop timer: when it fires, each due
app's task is woken by resolving the one future it waits on. The tick still runs in the app's
own task — so a tick may await anything (Modbus I/O, HTTP to the twin: libraries that need a
current task), what it raises ends the app's ``run`` for the supervisor to restart, and
cancelling the app cancels its wait.

Semantics (the telemetry app's own loop had the same): ticks fall on a grid of ``interval_s`` on
the node's clock, the first at once; ticks that fall due while the event loop is late are
skipped and counted (``skipped``) rather than burst to catch up; a tick that falls due while the
app is still busy with the previous one is kept (one, never more) and taken as soon as the app
asks; a new interval (``set_interval``) takes effect at once — the next tick one new interval
after the last. A stepped clock (tests) has no loop time to keep a heap on: there each timer is
a small task sleeping on the clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from gridedge.clock import Clock, ClockMode

SLACK_NS = 1_000_000  # waits due within 1 ms of a firing are served by it (one wake-up, not two)


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _check(interval_s: float) -> int:
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    return ns(interval_s)


class Periodic:
    """An app's periodic tick, as an async iterator (create it with ``ctx.every``)."""

    def __init__(
        self,
        clock: Clock,
        interval_s: float,
        *,
        start_ns: int | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.step_ns = _check(interval_s)
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._on_tick = on_tick
        self.ticks = 0
        self.skipped = 0
        self.due_ns = clock.now_ns() if start_ns is None else start_ns
        self._last_ns: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._owed = False  # a tick fell due while the app was busy: served at its next ask
        self._closed = False
        self._seq = 0  # which heap entry is current (older ones are stale)
        self._wheel: _Wheel | None = None
        # the wheel holds timers weakly: an app that leaves its ``async for`` early (break) drops
        # the iterator, and its timer then leaves the wheel instead of ticking for nobody
        self._ref = weakref.ref(self)
        self._sleeper: asyncio.Task[None] | None = None
        if clock.mode is ClockMode.STEPPED:
            self._sleeper = self.loop.create_task(self._sleep_loop())
        else:
            self._wheel = _wheel_for(self.loop, clock)
            self._wheel.add(self)

    # -- the app's side -----------------------------------------------------------------------
    def __aiter__(self) -> Periodic:
        return self

    async def __anext__(self) -> int:
        """Wait for the next tick; returns the tick's scheduled time (clock ns)."""
        if self._closed:
            raise StopAsyncIteration
        if self._owed:
            self._owed = False
        else:
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self.close()  # the app is being stopped: its timer goes with it
                raise
            finally:
                self._waiter = None
            if self._closed:
                raise StopAsyncIteration
        self.ticks += 1
        if self._on_tick is not None:
            self._on_tick()
        return self._last_ns if self._last_ns is not None else self.due_ns

    @property
    def waiting(self) -> bool:
        """The app is parked in the timer (not busy with a tick)."""
        return self._waiter is not None

    def set_interval(self, interval_s: float) -> None:
        """Change the interval at once: the next tick one new interval after the last one (any
        thread; apps call it from ``on_params``)."""
        step = _check(interval_s)
        if threading.get_ident() != self._thread:
            self.loop.call_soon_threadsafe(self.set_interval, interval_s)
            return
        old, self.step_ns = self.step_ns, step
        if step == old or self._last_ns is None or self._closed:
            return  # same interval (apps re-apply all parameters): the grid stays as it is
        # anchored on the grid point the timer last served (a skipped tick's too), not on
        # _last_ns: after skips that lies whole intervals back and would give a tick at once
        self._reschedule(max(self.due_ns - old + step, self.clock.now_ns()))

    async def aclose(self) -> None:
        """``close`` for ``contextlib.aclosing(ctx.every(s))``: ends the timer at once when the
        app leaves its loop early, without waiting for the iterator to be dropped."""
        self.close()

    def close(self) -> None:
        """Stop ticking; a waiting app's loop ends (StopAsyncIteration)."""
        if self._closed:
            return
        self._closed = True
        self._seq += 1  # the wheel drops its entry when it comes up
        if self._sleeper is not None and self._sleeper is not asyncio.current_task():
            self._sleeper.cancel()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the timer's side ---------------------------------------------------------------------
    def _reschedule(self, due_ns: int) -> None:
        self.due_ns = due_ns
        if self._wheel is not None:
            self._wheel.add(self)
        elif self._sleeper is not None:
            self._sleeper.cancel()  # it sleeps towards the old deadline
            self._sleeper = self.loop.create_task(self._sleep_loop())

    def _fire(self, now_ns: int) -> None:
        due = self.due_ns
        self._last_ns = due
        nxt = due + self.step_ns
        if nxt <= now_ns:  # the loop was late: skip the ticks it missed, do not burst
            missed = (now_ns - nxt) // self.step_ns + 1
            self.skipped += missed
            nxt += missed * self.step_ns
        self.due_ns = nxt
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self._owed:
            self.skipped += 1  # busy for more than a whole interval: one tick is owed already
        else:
            self._owed = True

    async def _sleep_loop(self) -> None:
        while not self._closed:
            remaining = self.due_ns - self.clock.now_ns()
            if remaining > 0:
                await self.clock.sleep(remaining / 1e9)
                continue
            self._fire(self.clock.now_ns())
            await asyncio.sleep(0)


class _Wheel:
    """Every Periodic of one loop and clock, in a heap, behind one loop timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        self.loop = loop
        self.clock = clock
        self._heap: list[tuple[int, int, int, weakref.ref[Periodic]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        self._firing = False

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, p: Periodic) -> None:
        p._seq += 1
        heapq.heappush(self._heap, (p.due_ns, next(self._order), p._seq, p._ref))
        if not self._firing and (self._timer_due is None or p.due_ns < self._timer_due):
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_due = None
        heap = self._heap
        while heap:  # drop stale entries: closed, rescheduled or dropped by their app
            p = heap[0][3]()
            if p is not None and p._seq == heap[0][2]:
                break
            heapq.heappop(heap)
        if not heap:
            return
        due = heap[0][0]
        delay_s = (due - self.clock.now_ns()) / 1e9 / self.clock.speed
        self._timer = self.loop.call_later(max(delay_s, 0.0), self._fire)
        self._timer_due = due

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = None
        heap = self._heap
        now = self.clock.now_ns()
        limit = now + SLACK_NS
        pop, push, order = heapq.heappop, heapq.heappush, self._order
        self._firing = True
        try:
            while heap and heap[0][0] <= limit:
                _, _, seq, ref = pop(heap)
                p = ref()
                if p is None or p._seq != seq:  # dropped, closed or rescheduled since pushed
                    continue
                p._fire(now)
                if p._seq == seq:  # (set_interval from a woken app pushes its own entry)
                    p._seq = seq = seq + 1
                    push(heap, (p.due_ns, next(order), seq, ref))
        finally:
            self._firing = False
            self._arm()  # even if a timer raised: the other apps' ticks must go on


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Wheel]] = (
    weakref.WeakKeyDictionary()
)


def _wheel_for(loop: asyncio.AbstractEventLoop, clock: Clock) -> _Wheel:
    per_clock = _wheels.setdefault(loop, {})
    wheel = per_clock.get(id(clock))
    if wheel is None or wheel.clock is not clock:
        wheel = per_clock[id(clock)] = _Wheel(loop, clock)
    return wheel


def every(clock: Clock, interval_s: float, **kw: Any) -> Periodic:
    return Periodic(clock, interval_s, **kw)
