"""Apps that raise or stall are contained, reported and restarted; the others carry on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gridedge.contracts.topics import Plane, subscription
from tests.node.helpers import Collector, build_signed
from tests.node.test_node import COUNTER, max_gap, publish_package, register

BLOCKING_CODE = """
import time

class App:
    async def run(self, ctx):
        ctx.state["starts"] = ctx.state.get("starts", 0) + 1
        ctx.publish("blocker", b'{"start": %d}' % ctx.state["starts"])
        await ctx.sleep(0.05)
        if ctx.state["starts"] == 1:
            time.sleep(3.0)   # a blocking call: would freeze the node if not on its own thread
        while True:
            await ctx.sleep(0.05)

def factory():
    return App()
"""


async def test_raising_app_is_restarted_while_others_continue(
    catalog_server: Any, make_node: Any
) -> None:
    secret = await register(
        catalog_server,
        "S1",
        [COUNTER, {"name": "crasher", "version": "1.0.0", "params": {"crashes": 2}}],
    )
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "S1")) as col:
        node = await make_node("S1", secret)
        await col.wait_for(lambda: len(col.on("crasher")) >= 3, 10)
        await col.wait_for(lambda: len(col.on("event")) >= 2, 5)
    runner = node.apps.runners["crasher"]
    assert runner.crashes == 2 and runner.restarts == 2
    assert [b["start"] for _, b in col.on("crasher")][:3] == [1, 2, 3]
    events = [b for _, b in col.on("event")]
    assert all(e["kind"] == "app-error" and e["app"] == "crasher" for e in events)
    assert "RuntimeError: boom" in events[0]["detail"]["reason"]
    times = [ts for ts, _ in col.on("counter")]
    assert max_gap(times) < 0.05 + 0.25
    rec = await catalog_server.admin.get_device("S1")
    assert any(s.app == "crasher" and s.state.value == "running" for s in rec.app_states)


async def test_app_on_the_shared_timer_is_supervised(catalog_server: Any, make_node: Any) -> None:
    # ctx.every: a tick that raises ends run() and the app is restarted; waiting in the timer for
    # longer than the 1 s watchdog is not a stall
    secret = await register(
        catalog_server, "S4", [COUNTER, {"name": "tickcrasher", "version": "1.0.0"}]
    )
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "S4")) as col:
        node = await make_node("S4", secret)
        await col.wait_for(lambda: len(col.on("ticker")) >= 4, 15)
        await col.wait_for(lambda: len(col.on("event")) >= 1, 3)
    runner = node.apps.runners["tickcrasher"]
    assert runner.crashes == 1 and runner.stalls == 0 and runner.restarts == 1
    got = [(b["start"], b["tick"]) for _, b in col.on("ticker")]
    assert got[:4] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    ticks = [ts for ts, b in col.on("ticker") if b["start"] == 2]
    assert 1.8 < ticks[1] - ticks[0] < 2.5  # on the 2 s grid
    assert "RuntimeError: tick boom" in col.on("event")[0][1]["detail"]["reason"]
    assert max_gap([ts for ts, _ in col.on("counter")]) < 0.05 + 0.25


async def test_stalled_app_is_detected_and_restarted(catalog_server: Any, make_node: Any) -> None:
    # sample_apps.MANIFEST sets a 1 s watchdog for the test apps
    secret = await register(
        catalog_server, "S2", [COUNTER, {"name": "staller", "version": "1.0.0"}]
    )
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "S2")) as col:
        node = await make_node("S2", secret)
        await col.wait_for(lambda: len(col.on("staller")) >= 2, 8)
        await col.wait_for(lambda: len(col.on("event")) >= 1, 3)
    assert node.apps.runners["staller"].stalls >= 1
    ev = col.on("event")[0][1]
    assert ev["app"] == "staller" and "stalled" in ev["detail"]["reason"]
    assert max_gap([ts for ts, _ in col.on("counter")]) < 0.05 + 0.25


async def test_blocking_app_runs_on_its_own_thread(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    data, sig = build_signed(
        tmp_path,
        signing_key,
        "blocker",
        "1.0.0",
        code=BLOCKING_CODE,
        blocking=True,
        watchdog_s=1.0,
        schema={"type": "object"},
    )
    await publish_package(catalog_server, data, sig)
    secret = await register(
        catalog_server, "S3", [COUNTER, {"name": "blocker", "version": "1.0.0"}]
    )
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "S3")) as col:
        node = await make_node("S3", secret)
        await col.wait_for(lambda: len(col.on("blocker")) >= 2, 10)
        await col.wait_for(lambda: len(col.on("counter")) >= 40, 5)
    runner = node.apps.runners["blocker"]
    assert runner.stalls == 1
    ev = json.loads(json.dumps(col.on("event")[0][1]))
    assert "stalled" in ev["detail"]["reason"]
    # the node's loop never froze: the counter kept its pace during the 3 s blocking call
    assert max_gap([ts for ts, _ in col.on("counter")]) < 0.05 + 0.25


async def test_telemetry_on_the_shared_timer_takes_a_new_interval_at_once(
    catalog_server: Any, make_node: Any
) -> None:
    from gridedge.node.fleet import SyntheticDaq
    from tests.node.test_node import set_apps

    slow = {"name": "telemetry", "version": "1.0.0", "params": {"interval_s": 3.0}}
    secret = await register(catalog_server, "S5", [slow], period=30.0)
    async with Collector(
        catalog_server.brokers.data.url, subscription(Plane.DATA, "S5", "telemetry")
    ) as col:
        node = await make_node("S5", secret, daq=SyntheticDaq("S5", 5))
        await col.wait_for(lambda: len(col.on("telemetry")) >= 1, 10)
        assert node.apps.runners["telemetry"].instance.app._timer is not None  # shared timer
        await set_apps(catalog_server, "S5", [{**slow, "params": {"interval_s": 0.1}}])
        node._poke.set()  # what the management-plane push does
        await col.wait_for(lambda: len(col.on("telemetry")) >= 12, 10)
    runner = node.apps.runners["telemetry"]
    assert runner.restarts == 0 and runner.crashes == 0 and runner.stalls == 0
    seqs = [b["seq"] for _, b in col.on("telemetry")]
    assert seqs == list(range(len(seqs)))
    times = [ts for ts, _ in col.on("telemetry")]
    assert max_gap(times[-8:]) < 0.35  # the new 0.1 s interval, without waiting out the 3 s one
