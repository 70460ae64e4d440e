"""Self-configuration and auto-update against a real catalog server and real Mosquitto."""

from __future__ import annotations

import asyncio

from sqlalchemy import create_engine, text

from gridedge.catalog.client import CatalogClient
from gridedge.contracts.catalog import (
    AppAssignment,
    DeviceStatus,
    GridLocation,
    SettingsUpdate,
)
from gridedge.contracts.topics import Plane, Stream, topic
from tests.catalog.helpers import two_feeders


async def test_provisioning_returns_the_full_settings_document(catalog_server) -> None:
    await catalog_server.admin.put_topology(two_feeders())
    creds = await catalog_server.add_device(
        "SM-a1",
        location={"grid": "g2", "node_id": "A2", "area": "feeder-A"},
        apps=[{"name": "telemetry", "version": "1.0.0", "params": {"period_s": 1}}],
        update_period_s=5,
        capabilities={"daq_channels": ["va", "vb", "vc"], "relay": True},
    )
    client = catalog_server.client("SM-a1")
    resp = await client.provision(creds.provisioning_secret, firmware="fw-2")
    s = resp.settings
    assert len(resp.token) >= 43  # 256-bit url-safe token
    assert s.device_id == "SM-a1" and s.version == 1
    assert s.brokers.data.url == catalog_server.brokers.data.url
    assert s.brokers.mgmt.url == catalog_server.brokers.mgmt.url
    pub = {t.topic: t for t in s.topics.publish}
    sub = {t.topic: t for t in s.topics.subscribe}
    assert pub[topic(Plane.DATA, "SM-a1", Stream.TELEMETRY)].qos == 1
    assert topic(Plane.MGMT, "SM-a1", Stream.HEARTBEAT) in pub
    assert topic(Plane.MGMT, "SM-a1", Stream.APP_STATE) in pub
    assert sub[topic(Plane.MGMT, "SM-a1", Stream.SETTINGS)].retain is True
    assert topic(Plane.DATA, "SM-a1", Stream.COMMAND) in sub
    assert [a.name for a in s.apps] == ["telemetry"] and s.apps[0].params == {"period_s": 1}
    assert s.apps[0].package_url is None  # no package uploaded yet
    assert s.update_period_s == 5 and s.liveness_timeout_s == 15 and s.heartbeat_period_s == 5
    # grid portion: feeder A as switched, the source as end point, the open tie as boundary
    assert s.grid is not None and s.grid.node_id == "A2"
    assert s.grid.nodes == ["A1", "A2", "A3", "A4", "S"]
    assert {b.id for b in s.grid.branches} == {"CB-A", "L-A12", "SW-A", "L-A34", "TIE"}
    rec = await catalog_server.admin.get_device("SM-a1")
    assert rec.status == DeviceStatus.CONNECTED and rec.firmware == "fw-2"
    assert rec.provisioned_at is not None and rec.last_seen is not None


async def test_unchanged_settings_answer_304_and_changes_arrive(catalog_server) -> None:
    client, first = await catalog_server.provisioned("M1", update_period_s=10)
    assert await client.check_in() is None
    assert await client.check_in() is None
    upd = await catalog_server.admin.patch_settings(
        "M1", SettingsUpdate(apps=[AppAssignment(name="outage", version="0.1.0")])
    )
    assert upd.version == first.settings.version + 1
    new = await client.check_in()
    assert new is not None and new.version == upd.version and new.apps[0].name == "outage"
    assert await client.check_in() is None
    # a patch that changes nothing does not bump the version
    same = await catalog_server.admin.patch_settings(
        "M1", SettingsUpdate(apps=[AppAssignment(name="outage", version="0.1.0")])
    )
    assert same.version == upd.version
    assert await client.check_in() is None


async def test_a_fresh_client_without_etag_gets_the_document(catalog_server) -> None:
    client, first = await catalog_server.provisioned("M2")
    other = CatalogClient(catalog_server.url, "M2", token=client.token)
    try:
        s = await other.check_in()
        assert s is not None and s.etag == first.settings.etag
        assert await other.check_in() is None
    finally:
        await other.aclose()


async def test_check_in_refreshes_last_seen_and_stores_it(catalog_server) -> None:
    client, _ = await catalog_server.provisioned("M3", update_period_s=10)
    before = (await catalog_server.admin.get_device("M3")).last_seen
    await asyncio.sleep(0.05)
    await client.check_in()
    after = (await catalog_server.admin.get_device("M3")).last_seen
    assert before is not None and after is not None and after > before
    # the time-stamp reaches the database in the next batch (flush every 0.5 s in tests)
    engine = create_engine(catalog_server.db_url)
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            with engine.connect() as c:
                stored = c.execute(text("select last_seen from devices where id='M3'")).scalar()
            if stored is not None and abs(stored - after.timestamp()) < 1e-3:
                break
            assert asyncio.get_running_loop().time() < deadline, "last-seen never stored"
            await asyncio.sleep(0.1)
    finally:
        engine.dispose()


async def test_discovery_filters(catalog_server) -> None:
    await catalog_server.admin.put_topology(two_feeders())
    await catalog_server.provisioned(
        "MA1", location=GridLocation(node_id="A1", area="A").model_dump()
    )
    await catalog_server.provisioned("MB1", location={"grid": "g2", "node_id": "B1", "area": "B"})
    await catalog_server.add_device(
        "SW1",
        kind="switch",
        location={"grid": "g2", "node_id": "A2", "area": "A"},
        endpoints={"modbus": "tcp://127.0.0.1:5020"},
    )
    await catalog_server.add_device("X1", kind="service-host", location={"area": "cloud"})
    adm = catalog_server.admin
    assert [d.id for d in (await adm.list_devices(kind="meter")).devices] == ["MA1", "MB1"]
    assert [d.id for d in (await adm.list_devices(area="A")).devices] == ["MA1", "SW1"]
    assert [d.id for d in (await adm.list_devices(grid="g2")).devices] == ["MA1", "MB1", "SW1"]
    assert [d.id for d in (await adm.list_devices(status="registered")).devices] == ["SW1", "X1"]
    assert [d.id for d in (await adm.list_devices(status="connected", area="B")).devices] == ["MB1"]
    sw = (await adm.list_devices(kind="switch")).devices[0]
    assert sw.endpoints == {"modbus": "tcp://127.0.0.1:5020"}
    # a device may discover its peers with its own token
    client = catalog_server.client("MA1")
    client.token = (await catalog_server.provisioned("MA2", location={"node_id": "A1"}))[0].token
    client.device_id = "MA2"
    assert (await client.list_devices(node="A1")).total == 2
