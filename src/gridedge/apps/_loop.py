"""A periodic loop on the node's clock that a parameter change can interrupt.

Every polling app has the same shape (Home Assistant's update coordinator, DESIGN.md §3): poll
on an interval, log a failure once and the recovery once, and pick up a new interval at once
rather than after the old one (an operator who shortens a 60 s interval to 1 s should not wait a
minute for it to take effect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

SLACK_NS = 1_000  # a deadline within 1 µs counts as reached (float rounding in sleep())
MAX_NAP_S = 5.0
POKE = "gridedge: parameters changed"  # sleep in naps: the runtime's watchdog sees an app alive only between sleeps


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


class Ticker:
    """Deadline sleeping that ``poke()`` can cut short.

    Cheap on purpose: the fleet runs 10,000 telemetry apps on one event loop, and a helper task
    plus ``asyncio.wait`` per tick cost more than the reading itself. The app's own task sleeps;
    ``poke()`` interrupts it with a tagged cancellation that :meth:`wait_until` takes back
    (``Task.uncancel``), while a cancellation from the runtime still propagates."""

    def __init__(self) -> None:
        self._poked = False
        self._sleeping: asyncio.Task[Any] | None = None

    def poke(self) -> None:
        """Cut the current wait short (called from ``on_params``, on any thread)."""
        self._poked = True
        task = self._sleeping
        if task is not None:
            task.get_loop().call_soon_threadsafe(self._interrupt, task)

    def _interrupt(self, task: asyncio.Task[Any]) -> None:
        if self._sleeping is task and self._poked:
            task.cancel(POKE)

    async def wait_until(self, ctx: Any, due_ns: int) -> bool:
        """Sleep on ``ctx.sleep`` until ``due_ns`` (clock UTC ns; integer, because float seconds
        since the epoch lose sub-microsecond steps). Returns False if poked."""
        task = asyncio.current_task()
        while True:
            if self._poked:
                self._poked = False
                return False
            remaining_ns = due_ns - ctx.clock.now_ns()
            if remaining_ns <= SLACK_NS:
                return True
            self._sleeping = task
            try:
                await ctx.sleep(min(remaining_ns / 1e9, MAX_NAP_S))
            except asyncio.CancelledError:
                # ours alone (a poke): swallow it; the runtime's (too): let it through
                if task is None or not self._poked or task.cancelling() > 1:
                    raise
                task.uncancel()
                self._poked = False
                return False
            finally:
                self._sleeping = None


class FailureLog:
    """Logs the first failure of a streak and the recovery, not every retry."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.failing = False
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if not self.failing:
            self.failing = True
            self.log.warning("%s failed: %s", self.what, exc)

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self.log.info("%s works again", self.what)
