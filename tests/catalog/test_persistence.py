"""A restart loses nothing — on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from gridedge.catalog.client import CatalogClient
from gridedge.catalog.testing import start_catalog
from gridedge.contracts.catalog import AppUpdateState, DeviceStatus, SettingsUpdate
from tests.catalog.helpers import two_feeders


async def test_restart_keeps_devices_tokens_settings_topology_and_states(
    brokers, tmp_path: Path, db_url: str
) -> None:
    cat = start_catalog(brokers, tmp_path, db_url)
    try:
        await cat.admin.put_topology(two_feeders())
        await cat.admin.put_topology(two_feeders(sw_a_closed=False))
        c1, _ = await cat.provisioned(
            "M1",
            location={"grid": "g2", "node_id": "A3", "area": "A"},
            metadata={"serial": "x-1"},
            update_period_s=7,
        )
        creds2 = await cat.add_device("M2", kind="switch")
        upd = await cat.admin.patch_settings("M1", SettingsUpdate(extra={"gain": 2.5}))
        assert await c1.check_in() is not None
        await c1.report_app_state("telemetry", "1.0.0", AppUpdateState.RUNNING)
        before = await cat.admin.get_device("M1")
        topo = await cat.admin.get_topology("g2")

        cat.restart()  # same port and database, new process state

        after = await cat.admin.get_device("M1")
        assert after.model_dump(exclude={"last_seen", "status_since"}) == before.model_dump(
            exclude={"last_seen", "status_since"}
        )
        assert after.last_seen is not None and after.status == DeviceStatus.CONNECTED
        assert after.app_states[0].state == AppUpdateState.RUNNING
        assert after.metadata == {"serial": "x-1"} and after.settings_version == upd.version
        assert await cat.admin.get_topology("g2") == topo and topo.version == 2
        # the device's token still works and its etag is still current: 304
        fresh = CatalogClient(cat.url, "M1", token=c1.token)
        fresh.etag = c1.etag
        assert await fresh.check_in() is None
        await fresh.aclose()
        # the provisioning secret of the never-provisioned device still works
        c2 = cat.client("M2")
        assert (await c2.provision(creds2.provisioning_secret)).settings.kind == "switch"
        # a new topology version continues the numbering
        assert (await cat.admin.put_topology(two_feeders())).version == 3
    finally:
        await cat.aclose()
        cat.stop()
