import asyncio
import time

import pytest

from gridedge.clock import Clock, ClockMode


async def test_stepped_clock_wakes_sleepers_in_order() -> None:
    clock = Clock(ClockMode.STEPPED, start_ns=0)
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 2.0)), asyncio.create_task(sleeper("early", 1.0))]
    await asyncio.sleep(0)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.now_ns() == 2_500_000_000


async def test_accelerated_clock_runs_faster() -> None:
    clock = Clock(ClockMode.ACCELERATED, speed=100.0)
    t0, w0 = clock.now(), time.monotonic()
    await clock.sleep(5.0)  # 50 ms of wall time
    assert time.monotonic() - w0 < 1.0
    assert clock.now() - t0 >= 4.9


def test_clock_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Clock(ClockMode.ACCELERATED, speed=0)
    with pytest.raises(RuntimeError):
        Clock(ClockMode.WALL).advance(1)
    with pytest.raises(ValueError):
        Clock(ClockMode.STEPPED).advance(-1)
