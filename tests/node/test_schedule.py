"""The shared periodic timer behind ``ctx.every``: one loop timer for many apps, ticks on a grid,
late ticks skipped (never burst), a new interval at once, cancellation and supervision intact."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from gridedge.clock import Clock
from gridedge.node.schedule import Periodic, _wheel_for


async def _collect(timer: Periodic, out: list[int], n: int) -> None:
    async for at in timer:
        out.append(at)
        if len(out) >= n:
            return


async def test_many_timers_share_one_wheel_and_tick_on_a_grid() -> None:
    clock = Clock()
    loop = asyncio.get_running_loop()
    timers = [Periodic(clock, 0.05) for _ in range(40)]
    wheel = _wheel_for(loop, clock)
    assert all(t._wheel is wheel for t in timers) and len(wheel) >= 40
    ticks: list[list[int]] = [[] for _ in timers]
    await asyncio.wait_for(
        asyncio.gather(*(_collect(t, out, 6) for t, out in zip(timers, ticks, strict=True))), 5
    )
    for out in ticks:
        steps = {b - a for a, b in itertools.pairwise(out)}
        assert steps == {50_000_000}  # scheduled times lie exactly on the interval's grid
    for t in timers:
        t.close()
    await asyncio.sleep(0.12)  # a firing or two: closed timers leave the heap
    assert not any(ref() in timers for *_, ref in wheel._heap)


async def test_late_loop_skips_ticks_instead_of_bursting() -> None:
    timer = Periodic(Clock(), 0.1)
    seen: list[float] = []
    async for _ in timer:
        seen.append(time.monotonic())
        if len(seen) == 2:
            time.sleep(0.45)  # the whole event loop stalls for 4+ intervals
        if len(seen) == 4:
            break
    timer.close()
    assert timer.skipped >= 3
    # after the stall: one owed tick at once, then back on the grid (no burst of 4)
    assert seen[3] - seen[2] >= 0.04


async def test_set_interval_takes_effect_at_once() -> None:
    timer = Periodic(Clock(), 5.0)
    t0 = time.monotonic()
    got = 0
    async for _ in timer:
        got += 1
        if got == 1:
            timer.set_interval(0.05)  # the next tick 50 ms after the last, not 5 s
        if got == 3:
            break
    timer.close()
    assert time.monotonic() - t0 < 1.0


async def test_cancelling_the_app_closes_its_timer() -> None:
    timer = Periodic(Clock(), 0.02)
    task = asyncio.create_task(_collect(timer, [], 10**6))
    await asyncio.sleep(0.1)
    assert timer.ticks >= 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert timer.closed
    n = timer.ticks
    await asyncio.sleep(0.1)
    assert timer.ticks == n


async def test_close_ends_a_waiting_loop() -> None:
    timer = Periodic(Clock(), 10.0)
    out: list[int] = []
    task = asyncio.create_task(_collect(timer, out, 10))
    await asyncio.sleep(0.05)
    assert out and timer.waiting
    timer.close()
    await asyncio.wait_for(task, 1)
    assert len(out) == 1


async def test_stepped_clock_ticks_as_it_is_advanced() -> None:
    clock = Clock("stepped", start_ns=1_000_000_000)
    timer = Periodic(clock, 1.0)
    out: list[int] = []
    task = asyncio.create_task(_collect(timer, out, 4))
    for _ in range(3):
        await asyncio.sleep(0.01)
        clock.advance(1.0)
    await asyncio.wait_for(task, 2)
    assert out == [1_000_000_000, 2_000_000_000, 3_000_000_000, 4_000_000_000]
    timer.close()


def test_bad_interval_is_refused() -> None:
    async def make() -> None:
        Periodic(Clock(), 0)

    with pytest.raises(ValueError, match="interval_s"):
        asyncio.run(make())


async def test_same_interval_after_skipped_ticks_does_not_tick_at_once() -> None:
    """Apps re-apply all their parameters (telemetry's on_params): the same interval again must
    not add a tick — after a stall the last tick's time lies whole intervals back."""
    timer = Periodic(Clock(), 0.1)
    seen: list[float] = []
    async for _ in timer:
        seen.append(time.monotonic())
        if len(seen) == 2:
            time.sleep(0.35)  # the loop stalls: ticks are skipped
        if len(seen) == 3:
            timer.set_interval(0.1)  # unchanged
        if len(seen) == 5:
            break
    timer.close()
    assert timer.skipped >= 2
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert min(gaps[2:]) >= 0.04, gaps  # no back-to-back tick after the set_interval


async def test_a_loop_left_early_leaves_the_wheel() -> None:
    """``break`` out of ``async for _ in ctx.every(s)`` drops the iterator: its timer must not
    go on ticking for nobody (an app re-creating its loop would pile them up)."""
    clock = Clock()
    wheel = _wheel_for(asyncio.get_running_loop(), clock)

    async def app() -> None:
        async for _ in Periodic(clock, 0.02):
            break

    live_before = sum(1 for *_, ref in wheel._heap if ref() is not None)
    for _ in range(5):
        await app()
    await asyncio.sleep(0.06)
    live_after = sum(1 for *_, ref in wheel._heap if ref() is not None)
    assert live_after == live_before
