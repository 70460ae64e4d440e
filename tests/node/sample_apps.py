"""Small apps for the runtime's tests (started as built-ins through ``builtin_apps``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

MANIFEST = {"watchdog_s": 1.0}


class Counter:
    """Publishes ``{"seq", "t"}`` on stream ``counter`` every ``interval_s``."""

    def __init__(self) -> None:
        self.interval_s = 0.05

    def on_params(self, params: dict[str, Any]) -> None:
        self.interval_s = float(params.get("interval_s", self.interval_s))

    async def run(self, ctx: Any) -> None:
        self.on_params(ctx.params)
        ctx.state.setdefault("seq", 0)
        while True:
            ctx.state["seq"] += 1
            body = {"seq": ctx.state["seq"], "t": time.time(), "interval_s": self.interval_s}
            ctx.publish(ctx.params.get("stream", "counter"), json.dumps(body).encode())
            await ctx.sleep(self.interval_s)


def counter() -> Counter:
    return Counter()


class Crasher:
    """Raises on its first ``crashes`` runs (counted in ctx.state), then publishes ``ok``."""

    async def run(self, ctx: Any) -> None:
        ctx.state["starts"] = ctx.state.get("starts", 0) + 1
        ctx.publish("crasher", json.dumps({"start": ctx.state["starts"]}).encode())
        await ctx.sleep(0.05)
        if ctx.state["starts"] <= int(ctx.params.get("crashes", 1)):
            raise RuntimeError("boom")
        while True:
            await ctx.sleep(0.1)


def crasher() -> Crasher:
    return Crasher()


class Staller:
    """Awaits forever without telling the watchdog (a lost future)."""

    async def run(self, ctx: Any) -> None:
        ctx.state["starts"] = ctx.state.get("starts", 0) + 1
        ctx.publish("staller", json.dumps({"start": ctx.state["starts"]}).encode())
        await asyncio.get_running_loop().create_future()


def staller() -> Staller:
    return Staller()


class TickCrasher:
    """Ticks on ``ctx.every`` (interval 2 s: longer than the 1 s watchdog, so only the timer keeps
    it alive), publishes each tick, and raises on its second tick of its first run."""

    async def run(self, ctx: Any) -> None:
        ctx.state["starts"] = ctx.state.get("starts", 0) + 1
        ticks = 0
        timer = ctx.every(float(ctx.params.get("interval_s", 2.0)))
        async for _ in timer:
            ticks += 1
            ctx.publish(
                "ticker", json.dumps({"start": ctx.state["starts"], "tick": ticks}).encode()
            )
            if ctx.state["starts"] == 1 and ticks == 2:
                raise RuntimeError("tick boom")

    def on_params(self, params: dict[str, Any]) -> None:
        pass


def tick_crasher() -> TickCrasher:
    return TickCrasher()
