"""One clock for the twin, the nodes and the apps (DESIGN.md §3 "Time").

Three modes: ``wall`` (real time), ``accelerated`` (simulated time runs ``speed`` times faster than
wall time, so a benchmark can play an hour in a minute) and ``stepped`` (time moves only when the
owner calls :meth:`Clock.advance`, so tests are deterministic). Everything that needs "now" or
"sleep" takes a Clock instead of calling ``time`` directly.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from enum import StrEnum


class ClockMode(StrEnum):
    WALL = "wall"
    ACCELERATED = "accelerated"
    STEPPED = "stepped"


class Clock:
    """Simulated UTC time in nanoseconds since the Unix epoch."""

    def __init__(
        self,
        mode: ClockMode | str = ClockMode.WALL,
        *,
        speed: float = 1.0,
        start_ns: int | None = None,
    ) -> None:
        self.mode = ClockMode(mode)
        if self.mode is ClockMode.ACCELERATED and speed <= 0:
            raise ValueError("speed must be > 0 for an accelerated clock")
        self.speed = speed if self.mode is ClockMode.ACCELERATED else 1.0
        self._wall0 = time.monotonic_ns()
        self._sim0 = start_ns if start_ns is not None else time.time_ns()
        self._stepped_ns = self._sim0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- reading ------------------------------------------------------------------------------
    def now_ns(self) -> int:
        if self.mode is ClockMode.STEPPED:
            return self._stepped_ns
        elapsed = time.monotonic_ns() - self._wall0
        return self._sim0 + int(elapsed * self.speed)

    def now(self) -> float:
        """Seconds since the epoch (simulated)."""
        return self.now_ns() / 1e9

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now_ns() / 1e9, tz=UTC)

    # -- waiting ------------------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.mode is not ClockMode.STEPPED:
            await asyncio.sleep(seconds / self.speed)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._stepped_ns + int(seconds * 1e9), fut))
        await fut

    # -- stepping -----------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move a stepped clock forward and wake every sleeper whose deadline has passed."""
        if self.mode is not ClockMode.STEPPED:
            raise RuntimeError("advance() is only meaningful on a stepped clock")
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._stepped_ns += int(seconds * 1e9)
        due = [w for w in self._waiters if w[0] <= self._stepped_ns]
        self._waiters = [w for w in self._waiters if w[0] > self._stepped_ns]
        for _, fut in sorted(due, key=lambda w: w[0]):
            if not fut.done():
                fut.set_result(None)


_default = Clock()


def default_clock() -> Clock:
    return _default
