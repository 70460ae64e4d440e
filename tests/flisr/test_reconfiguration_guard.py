"""The reconfiguration service must not start a second FLISR run from its own switching: a report
of the same feeder-head meter during a run, within the hold-off after it, or located in the zone
the run isolated is ignored — with the reason logged, kept and published, never silently. A
report that is none of these still starts a run. (The demo's flaky failure: the reclose read as a
fault on L-A1-A2 ~0.6 s after the restoration, and SW-A1-out / SW-A2-in were opened.)"""

from __future__ import annotations

import asyncio

import pytest

from gridedge.apps.reconfiguration import ReconfigurationApp
from gridedge.clock import Clock
from gridedge.contracts.commands import Command, CommandResult
from gridedge.contracts.flisr import FaultLocation, FlisrRecord
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from tests.apps.context import FakeContext, eventually

T0 = 1_763_700_000_000_000_000
SECTIONS = {  # section: (from node, to node) in turin-2feeder
    "L-A2-A3": ("SS-A2-out", "SS-A3-in"),
    "L-A1-A2": ("SS-A1-out", "SS-A2-in"),
    "L-A4-A5": ("SS-A4-out", "SS-A5-in"),
    "L-B3-B4": ("SS-B3-out", "SS-B4-in"),
}


def _loc(record: str, section: str, inception_ns: int, device: str = "M1") -> bytes:
    a, b = SECTIONS[section]
    return FaultLocation(
        device_id=device,
        grid="turin-2feeder",
        record_id=record,
        section_id=section,
        from_node=a,
        to_node=b,
        distance_m=100.0,
        distance_from_head_m=1000.0,
        section_length_m=200.0,
        r_f_ohm=1.0,
        fault_kind="slg",
        phases="a",
        confidence=0.9,
        inception_ns=inception_ns,
        detected_ns=inception_ns + 20_000_000,
        window_captured_ns=inception_ns + 300_000_000,
        located_ns=inception_ns + 400_000_000,
        compute_s=0.01,
    ).to_json()


async def _answer(app: ReconfigurationApp, ctx: FakeContext, done: set[str]) -> None:
    """The switchgear: confirm every command not yet answered (as the relay app would)."""
    for p in ctx.on("command"):
        cmd = Command.from_json(p.payload)
        if cmd.command_id in done:
            continue
        done.add(cmd.command_id)
        res = CommandResult(
            command_id=cmd.command_id,
            device_id=cmd.device_id,
            target=cmd.target,
            ok=True,
            closed=cmd.action.value == "close",
        )
        await app._on_result("gridedge/v1/data/SWGW/command-result", res.to_json())


async def _run_to_end(app: ReconfigurationApp, ctx: FakeContext, n_records: int) -> None:
    done: set[str] = set()
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while len(ctx.on("record")) < n_records:
        assert loop.time() < end, "the FLISR run did not finish"
        await _answer(app, ctx, done)
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def model():
    from gridedge.twin.model import Twin

    return Twin.from_name("turin-2feeder")


async def _service(model, monkeypatch, **params):  # type: ignore[no-untyped-def]
    """The reconfiguration service on turin-2feeder with its model loaded, without a catalog;
    a stepped clock at T0. Returns (app, ctx)."""
    monkeypatch.delenv("GRIDEDGE_ADMIN_TOKEN", raising=False)
    ctx = FakeContext("FLISR", Clock("stepped", start_ns=T0), params={})
    app = ReconfigurationApp()
    app.params = app._apply({"grid": "turin-2feeder", "switch_device": "SWGW", **params})
    app.model_twin = model
    await asyncio.to_thread(app._load_model)
    return app, ctx


async def test_own_switching_does_not_start_a_second_run(model, monkeypatch) -> None:
    app, ctx = await _service(model, monkeypatch, holdoff_s=5)
    clock = ctx.clock
    handle = app._on_location(ctx)
    t = "gridedge/v1/data/M1/fault-location"

    await handle(t, _loc("r1", "L-A2-A3", T0))
    await eventually(lambda: ctx.on("command"), 30)
    # while the run is under way (commands unanswered) the reclose reads as a fault: ignored
    await handle(t, _loc("r2", "L-A1-A2", T0 + 500_000_000))
    # ... and so does the neighbour feeder's head when the tie closes (after the location)
    tb = "gridedge/v1/data/M-B/fault-location"
    await handle(tb, _loc("b2", "L-B3-B4", T0 + 600_000_000, device="M-B"))
    assert [i["record_id"] for i in app.ignored] == ["r2", "b2"]
    assert all("in progress" in i["reason"] for i in app.ignored)
    await _run_to_end(app, ctx, 1)
    (rec,) = [FlisrRecord.from_json(p.payload) for p in ctx.on("record")]
    assert rec.outcome == "restored" and set(rec.isolated_switches) == {"SW-A2-out", "SW-A3-in"}
    n_cmds = len(ctx.on("command"))

    # 0.6 s after the restoration (the demo's failure): ignored, hold-off named
    clock.advance(0.6)
    await handle(t, _loc("r3", "L-A1-A2", clock.now_ns() - 400_000_000))
    assert app.ignored[-1]["record_id"] == "r3" and "hold-off" in app.ignored[-1]["reason"]
    await handle(tb, _loc("b3", "L-B3-B4", clock.now_ns() - 400_000_000, device="M-B"))
    assert app.ignored[-1]["record_id"] == "b3" and "hold-off" in app.ignored[-1]["reason"]
    # after the hold-off, a report in the isolated zone: ignored, the zone named
    clock.advance(10)
    await handle(t, _loc("r4", "L-A2-A3", clock.now_ns() - 400_000_000))
    assert app.ignored[-1]["record_id"] == "r4" and "isolated" in app.ignored[-1]["reason"]
    await asyncio.sleep(0.2)
    assert len(ctx.on("command")) == n_cmds  # nothing switched for r2, r3, r4
    # every ignored report is published with its reason, none silently
    events = [DeviceEvent.from_json(p.payload) for p in ctx.on("event")]
    assert [e.detail["record_id"] for e in events] == ["r2", "b2", "r3", "b3", "r4"]
    assert all(e.kind is EventKind.ALARM and e.detail["reason"] for e in events)
    assert all(p.topic == "gridedge/v1/data/flisr/event" for p in ctx.on("event"))
    assert ctx.state["ignored"] == 5

    # a genuine later fault elsewhere, after the hold-off, still starts a run
    await handle(t, _loc("r5", "L-A4-A5", clock.now_ns() - 400_000_000))
    await eventually(lambda: len(ctx.on("command")) > n_cmds, 30)
    await _run_to_end(app, ctx, 2)
    assert len(app.ignored) == 5
    assert FlisrRecord.from_json(ctx.on("record")[-1].payload).location.record_id == "r5"


async def test_another_feeders_report_is_not_ignored(model, monkeypatch) -> None:
    """Feeder B's head meter reporting a disturbance that began before feeder A's fault was
    located (a simultaneous fault, not FLISR's switching) queues its own run."""
    app, ctx = await _service(model, monkeypatch)
    handle = app._on_location(ctx)
    await handle("gridedge/v1/data/M1/fault-location", _loc("a1", "L-A2-A3", T0))
    await handle("gridedge/v1/data/M-B/fault-location", _loc("b1", "L-B3-B4", T0, device="M-B"))
    assert app.ignored == [] and set(app.active) == {"a1", "b1"}
    for task in list(app.tasks):
        task.cancel()
    await asyncio.gather(*app.tasks, return_exceptions=True)


def test_holdoff_parameter_is_checked() -> None:
    from gridedge.apps.params import ParamError

    base = {"grid": "turin-2feeder", "switch_device": "SWGW"}
    assert ReconfigurationApp()._apply(base)["holdoff_s"] == 5.0
    assert ReconfigurationApp()._apply({**base, "holdoff_s": 0})["holdoff_s"] == 0
    with pytest.raises(ParamError, match="'holdoff_s'"):
        ReconfigurationApp()._apply({**base, "holdoff_s": -1})


async def test_the_service_model_follows_its_own_switching(model, monkeypatch) -> None:
    """Without the catalog, the model the service plans on is the one its last run left: the
    confirmed switch states, not the grid's normal state (the tripped breaker is found on it,
    inside the plan's timed span, and the record names the topology read apart)."""
    app, ctx = await _service(model, monkeypatch, holdoff_s=0)
    clock = ctx.clock
    handle = app._on_location(ctx)
    await handle("gridedge/v1/data/M1/fault-location", _loc("s1", "L-A2-A3", T0))
    await _run_to_end(app, ctx, 1)
    rec = FlisrRecord.from_json(ctx.on("record")[-1].payload)
    assert set(rec.closed_switches) == {"CB-A", "TIE-AB"}
    names = [s.name for s in rec.steps]
    assert names.index("topology read") + 1 == names.index("reconfiguration compute")
    states = {s.id: s.closed for s in app.restoration.switches}
    assert not states["SW-A2-out"] and not states["SW-A3-in"]
    assert states["CB-A"] and states["TIE-AB"]
    # feeder B now also feeds A3..A6 through the tie: a fault on B's first cables trips CB-B,
    # and the plan starts from the tie closed (it can only pick up what is still healthy)
    clock.advance(10)
    await handle(
        "gridedge/v1/data/M-B/fault-location",
        _loc("s2", "L-B3-B4", clock.now_ns() - 400_000_000, device="M-B"),
    )
    await _run_to_end(app, ctx, 2)
    rec2 = FlisrRecord.from_json(ctx.on("record")[-1].payload)
    assert rec2.location.record_id == "s2"
    assert "CB-B" in rec2.closed_switches
    assert not {"SW-A2-out", "SW-A3-in"} & set(rec2.closed_switches)  # A's fault stays isolated


async def test_a_section_without_a_plan_is_reported(model, monkeypatch) -> None:
    app, ctx = await _service(model, monkeypatch)
    loc = FaultLocation.from_json(_loc("x1", "L-A2-A3", T0)).model_copy(
        update={"section_id": "L-NOWHERE"}
    )
    await app._on_location(ctx)("gridedge/v1/data/M1/fault-location", loc.to_json())
    await eventually(lambda: app.ignored, 30)
    assert app.ignored[0]["record_id"] == "x1"
    assert (
        "L-NOWHERE" in app.ignored[0]["reason"]
        and "no restoration plan" in app.ignored[0]["reason"]
    )
    assert ctx.on("command") == [] and ctx.on("record") == []
    (ev,) = [DeviceEvent.from_json(p.payload) for p in ctx.on("event")]
    assert ev.kind is EventKind.ALARM and "L-NOWHERE" in ev.detail["reason"]
    assert not app.active
