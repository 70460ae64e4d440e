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
MAX_NAP_S = 5.0  # sleep in naps: the runtime's watchdog sees an app alive only between sleeps


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


class Ticker:
    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Cut the current wait short (called from ``on_params``)."""
        self._wake.set()

    async def wait_until(self, ctx: Any, due_ns: int) -> bool:
        """Sleep on ``ctx.sleep`` until ``due_ns`` (clock UTC ns; integer, because float seconds
        since the epoch lose sub-microsecond steps). Returns False if poked."""
        while True:
            remaining_ns = due_ns - ctx.clock.now_ns()
            if self._wake.is_set():
                self._wake.clear()
                return False
            if remaining_ns <= SLACK_NS:
                return True
            sleeper = asyncio.ensure_future(ctx.sleep(min(remaining_ns / 1e9, MAX_NAP_S)))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    if not task.done():
                        task.cancel()
            if waker in done:
                self._wake.clear()
                return False
            if sleeper in done:
                sleeper.result()  # re-raise a failure of the sleep itself
                # loop: the deadline may be further than one nap away


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
