"""FLISR end to end on turin-2feeder with real parts: two Mosquitto brokers, the Device Catalog,
the twin behind its network interface (wall clock, breaker trips 0.25 s after inception), and
six nodes running the built-in apps as the seeds deploy them:

- M1 (feeder-head meter): fault_capture + fault_location;
- M2 (meter at secondary SS-A4, LV side): fault_capture (its sag and pre-fault load);
- FU-A2, FU-A3 (field units at SW-A2-out and SW-A3-in): fault_capture on the switch's current,
  their records the fault passage verdicts the locator keeps its search to;
- SWGW (switchgear gateway): relay, operating the twin's switches;
- FLISR (cloud service host): reconfiguration.

A fault injected in the twin must be located on the right section, isolated by the nearest
switches, and the healthy part of feeder A re-energised in the twin (breaker reclosed, tie
closed); the FLISR record carries the timeline and the catalog a new topology version."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from gridedge.broker.client import MqttClient
from gridedge.broker.mosquitto import free_port
from gridedge.clock import Clock
from gridedge.contracts.catalog import AppAssignment, GridLocation
from gridedge.contracts.flisr import FlisrRecord
from gridedge.contracts.topics import Plane, topic
from gridedge.node.backends import make_backends
from gridedge.node.runtime import Node, NodeOptions
from gridedge.twin.client import TwinClient
from gridedge.twin.model import Twin
from gridedge.twin.server import TwinServer, TwinService, TwinServiceOptions
from gridedge.twin.telemetry import MeterAccuracy
from gridedge.twin.waveforms import DaqSpec

GRID = "turin-2feeder"


def _app(name: str, **params) -> AppAssignment:
    return AppAssignment(name=name, version="1.0.0", params=params)


@pytest.mark.slow
async def test_fault_is_located_isolated_and_healthy_part_restored(
    catalog_server, tmp_path, monkeypatch
) -> None:
    twin = Twin.from_name(GRID, clock=Clock("wall"), trip_delay_s=0.25)
    opts = TwinServiceOptions(
        daq=DaqSpec(adc_bits=12), accuracy=MeterAccuracy(0.0, 0.0), seed=3, tick_s=0.005
    )
    srv = TwinServer(TwinService(twin, opts), port=free_port()).start()
    cat = catalog_server
    monkeypatch.setenv("GRIDEDGE_ADMIN_TOKEN", cat.admin_token)
    nodes: list[Node] = []
    watcher = MqttClient(cat.brokers.data.url, client_id=f"flisr-test-{free_port()}")
    records: list[FlisrRecord] = []
    try:
        await cat.admin.put_topology(twin.topology_document())
        switches = ",".join(twin.switch_ids)
        capture = {"poll_interval_s": 0.02}
        units = {"FU-A2": "SW-A2-out", "FU-A3": "SW-A3-in"}
        devices = {
            "M1": dict(
                kind="meter",
                point="M1",
                node="BB-A",
                branch="CB-A",
                apps=[
                    _app("fault_capture", **capture),
                    _app(
                        "fault_location",
                        grid=GRID,
                        point="M1",
                        meters={"M2": "SS-A4-LV"},
                        switch_units=units,
                        sag_wait_s=0.3,
                    ),
                ],
            ),
            "M2": dict(
                kind="meter",
                point="M2",
                node="SS-A4-LV",
                branch="TR-A4",
                apps=[_app("fault_capture", **capture)],
            ),
            # field units at the two switches around the faulted section: their records are
            # fault passage verdicts (the twin serves every switch id as a point)
            **{
                unit: dict(
                    kind="switch",
                    point=sw,
                    node=f"SS-{unit[3:]}",
                    branch=sw,
                    apps=[_app("fault_capture", **capture)],
                )
                for unit, sw in units.items()
            },
            "SWGW": dict(kind="switch", point=None, node="BB-A", branch=None, apps=[_app("relay")]),
            "FLISR": dict(
                kind="service-host",
                point=None,
                node=None,
                branch=None,
                apps=[
                    _app("reconfiguration", grid=GRID, switch_device="SWGW", catalog_url=cat.url)
                ],
            ),
        }
        for dev, d in devices.items():
            creds = await cat.add_device(
                dev,
                d["kind"],
                location=GridLocation(grid=GRID, node_id=d["node"], branch_id=d["branch"]),
                apps=d["apps"],
            )
            backend = {"url": srv.url}
            if d["point"]:
                backend["point"] = d["point"]
            if dev == "SWGW":
                backend["switches"] = switches
            daq, act = make_backends("twin", backend, device_id=dev)
            node = Node(
                NodeOptions(
                    device_id=dev,
                    catalog_url=cat.url,
                    state_dir=tmp_path / dev,
                    secret=creds.provisioning_secret,
                    daq=daq if d["point"] else None,
                    actuators=act,
                    backoff_base_s=0.1,
                    backoff_max_s=1.0,
                    app_backoff_base_s=0.1,
                    persist_outbox=False,
                )
            )
            nodes.append(node)
            await node.start()

        await watcher.connect()

        async def on_record(t: str, payload: bytes) -> None:
            records.append(FlisrRecord.from_json(payload))

        watcher.subscribe(topic(Plane.DATA, "flisr", "record"), on_record, qos=1)

        # every app running before the fault
        async def running() -> bool:
            for n, d in zip(nodes, devices.values(), strict=True):
                want = {a.name for a in d["apps"]}
                got = {k for k, r in n.app_states.items() if r.state.value == "running"}
                if not want <= got:
                    return False
            return True

        deadline = time.monotonic() + 60
        while not await running():
            assert time.monotonic() < deadline, [
                {k: (r.state.value, r.reason) for k, r in n.app_states.items()} for n in nodes
            ]
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # fault_capture's references settle on healthy readings

        async with TwinClient(srv.url) as operator:  # inject the fault as an operator would
            await operator.apply_fault(
                "L-A2-A3", fraction=0.5, kind="1ph", phases="a", r_f_ohm=0.001
            )
        deadline = time.monotonic() + 60
        while not records:
            assert time.monotonic() < deadline, "no FLISR record within 60 s"
            await asyncio.sleep(0.1)
        rec = records[-1]
        # located on the right section, close to the middle
        assert rec.location.section_id == "L-A2-A3"
        assert abs(rec.location.distance_m - 110.0) < 30.0
        # the field units' verdicts: the fault current went through SW-A2-out, not SW-A3-in
        assert rec.location.fault_passage == {"SW-A2-out": True, "SW-A3-in": False}
        # ... and their busbar voltages are sag readings beside the meter's
        assert {"M2", "FU-A2", "FU-A3"} <= set(rec.location.meters_used)
        # isolated by the nearest switches, breaker reclosed, tie closed, all confirmed
        assert sorted(rec.isolated_switches) == ["SW-A2-out", "SW-A3-in"]
        assert set(rec.closed_switches) == {"CB-A", "TIE-AB"}
        assert rec.outcome == "restored", rec.problems
        assert all(op.ok and op.confirmed_ns for op in rec.operations)
        # the twin: faulted section dead, the healthy part of feeder A back in supply
        async with TwinClient(srv.url) as operator:  # the crew repairs; energised = FLISR's work
            await operator.clear_fault()
        st = twin.state
        for n in ("SS-A1", "SS-A2", "SS-A3", "SS-A4", "SS-A5", "SS-A6", "SS-A4-LV"):
            assert st.is_energised(n), n
        sw = twin.switch_states()
        assert not sw["SW-A2-out"] and not sw["SW-A3-in"]
        assert sw["CB-A"] and sw["TIE-AB"]
        assert twin.is_radial()
        # the catalog holds the new topology; the timeline names every step
        topo = await cat.admin.get_topology(GRID)
        assert rec.topology_version == topo.version
        tie = next(b for b in topo.branches if b.id == "TIE-AB")
        assert tie.closed
        names = [s.name for s in rec.steps]
        for expected in (
            "detection",
            "window capture",
            "location compute",
            "messaging",
            "reconfiguration compute",
            "actuation confirmed",
        ):
            assert expected in names
        assert rec.restored_customers == 6 and rec.restored_load_w > 0
        # the records go out once the protection has cleared the fault (0.25 s) and the
        # averaged sag is complete, not a fixed post_s after the trigger
        cap = next(s for s in rec.steps if s.name == "window capture")
        # (before: ~520 ms, the trigger plus post_s = 0.5 s)
        assert 250 < cap.start_ms + cap.duration_ms < 480
        assert 0 < rec.total_s < 30
    finally:
        with contextlib.suppress(Exception):
            await watcher.disconnect()
        for n in nodes:
            with contextlib.suppress(Exception):
                await n.stop()
        srv.stop()
