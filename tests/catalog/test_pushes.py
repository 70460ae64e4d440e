"""Pushes on the management plane: exactly the affected devices, missed pushes picked up at the
next check-in, and pushes kept while the broker is down."""

from __future__ import annotations

import asyncio

from gridedge.contracts.catalog import SettingsUpdate
from gridedge.contracts.topics import CATALOG_ID, Plane, Stream, subscription, topic
from tests.catalog.helpers import Recorder, two_feeders

DEVICES = {"MA1": "A1", "MA3": "A3", "MA4": "A4", "MB1": "B1", "MB2": "B2"}


def settings_topic(d: str) -> str:
    return topic(Plane.MGMT, d, Stream.SETTINGS)


async def _fleet(cat) -> dict[str, object]:
    await cat.admin.put_topology(two_feeders())
    clients = {}
    for d, node in DEVICES.items():
        clients[d], _ = await cat.provisioned(d, location={"grid": "g2", "node_id": node})
    return clients


async def test_topology_change_pushes_exactly_the_affected_devices(catalog_server) -> None:
    clients = await _fleet(catalog_server)
    rec = await Recorder(catalog_server.brokers.mgmt.url).start(
        subscription(Plane.MGMT, "+", Stream.SETTINGS),
        topic(Plane.MGMT, CATALOG_ID, Stream.TOPOLOGY),
    )
    rec.messages.clear()  # forget the retained provisioning pushes

    # FLISR opens SW-A: feeder A splits, feeder B is untouched
    stored = await catalog_server.admin.put_topology(two_feeders(sw_a_closed=False))
    assert stored.version == 2 and stored.affected_devices == 3
    await rec.wait_for(lambda: len(rec.on(topic(Plane.MGMT, CATALOG_ID, Stream.TOPOLOGY))) == 1)
    await asyncio.sleep(0.3)  # anything else that would come has come
    pushed = {t.split("/")[3] for t, p in rec.messages if t.endswith("/settings")}
    assert pushed == {"MA1", "MA3", "MA4"}
    for d in pushed:
        (msg,) = rec.on(settings_topic(d))
        assert msg["reason"] == "topology" and msg["version"] == 2
    assert rec.on(topic(Plane.MGMT, CATALOG_ID, Stream.TOPOLOGY))[0]["affected_devices"] == 3
    s = await clients["MA3"].check_in()
    assert s is not None and s.grid.nodes == ["A3", "A4"] and s.grid.topology_version == 2
    assert await clients["MB1"].check_in() is None  # unaffected: still 304

    # restoration closes the tie: A3/A4 join feeder B; MA1 is untouched this time
    rec.messages.clear()
    stored = await catalog_server.admin.put_topology(
        two_feeders(sw_a_closed=False, tie_closed=True)
    )
    assert stored.affected_devices == 4
    await rec.wait_for(lambda: len([t for t, _ in rec.messages if t.endswith("/settings")]) == 4)
    await asyncio.sleep(0.3)
    pushed = {t.split("/")[3] for t, p in rec.messages if t.endswith("/settings")}
    assert pushed == {"MA3", "MA4", "MB1", "MB2"}
    s = await clients["MB1"].check_in()
    assert s is not None and "A4" in s.grid.nodes and s.grid.topology_version == 3
    await rec.stop()


async def test_missed_push_is_picked_up_at_next_check_in(catalog_server) -> None:
    clients = await _fleet(catalog_server)
    # nobody listens: the device was offline during the push
    await catalog_server.admin.put_topology(two_feeders(sw_a_closed=False))
    s = await clients["MA1"].check_in()
    assert s is not None and s.version == 2 and "A3" not in s.grid.nodes
    # and the retained push is still there for it when it reconnects to the broker
    rec = await Recorder(catalog_server.brokers.mgmt.url).start(settings_topic("MA1"))
    assert rec.on(settings_topic("MA1"))[-1]["version"] == 2
    await rec.stop()


async def test_operator_change_pushes_only_that_device(catalog_server) -> None:
    await _fleet(catalog_server)
    rec = await Recorder(catalog_server.brokers.mgmt.url).start(
        subscription(Plane.MGMT, "+", Stream.SETTINGS)
    )
    rec.messages.clear()
    await catalog_server.admin.patch_settings("MB2", SettingsUpdate(update_period_s=30))
    await rec.wait_for(lambda: len(rec.messages) >= 1)
    await asyncio.sleep(0.3)
    assert [t for t, _ in rec.messages] == [settings_topic("MB2")]
    assert rec.messages[0][1]["reason"] == "operator"
    await rec.stop()


async def test_pushes_survive_a_management_broker_outage(catalog_server) -> None:
    clients = await _fleet(catalog_server)
    mgmt = catalog_server.brokers.mgmt
    mgmt.stop()
    await asyncio.sleep(0.5)
    # REST keeps working while the broker is down
    upd = await catalog_server.admin.patch_settings("MA4", SettingsUpdate(extra={"k": 1}))
    s = await clients["MA4"].check_in()
    assert s is not None and s.version == upd.version and s.extra == {"k": 1}
    health = await catalog_server.admin.health()
    assert health["mgmt_broker_connected"] is False and health["pending_pushes"] >= 1
    mgmt.start()  # same port, empty (persistence off): the catalog must republish
    rec = await Recorder(mgmt.url).start(settings_topic("MA4"))
    await rec.wait_for(
        lambda: any(p["version"] == upd.version for p in rec.on(settings_topic("MA4"))), 10
    )
    await rec.stop()
