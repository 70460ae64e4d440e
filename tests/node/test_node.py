"""The node runtime against a real catalog and real Mosquitto brokers."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from gridedge.contracts.catalog import AppAssignment, AppPackageInfo, SettingsUpdate
from gridedge.contracts.topics import Plane, subscription
from gridedge.node import packages
from tests.node.helpers import Collector, build_signed

COUNTER = {"name": "counter", "version": "1.0.0", "params": {"interval_s": 0.05}}


async def register(cat: Any, device_id: str, apps: list[dict], period: float = 1.0) -> str:
    creds = await cat.add_device(device_id, apps=apps, update_period_s=period)
    return creds.provisioning_secret


async def publish_package(cat: Any, data: bytes, sig: str) -> None:
    info = packages.inspect_package(data)
    await cat.admin.upload_app_package(
        AppPackageInfo(
            name=info.manifest.name,
            version=info.manifest.version,
            sha256=info.sha256,
            size=info.size,
            signature=sig,
            targets=info.manifest.targets,
            manifest=info.manifest_raw,
        ),
        data,
    )


async def set_apps(cat: Any, device_id: str, apps: list[dict]) -> None:
    await cat.admin.patch_settings(
        device_id, SettingsUpdate(apps=[AppAssignment.model_validate(a) for a in apps])
    )


async def test_node_boots_self_configures_and_publishes(
    catalog_server: Any, make_node: Any
) -> None:
    secret = await register(catalog_server, "M1", [COUNTER])
    async with Collector(catalog_server.brokers.data.url, subscription(Plane.DATA, "M1")) as col:
        node = await make_node("M1", secret)
        await col.wait_for(lambda: len(col.on("counter")) >= 5)
    assert node.settings.device_id == "M1"
    assert (node.state.root / "token").stat().st_mode & 0o777 == 0o600
    seqs = [b["seq"] for _, b in col.on("counter")]
    assert seqs == sorted(seqs) and seqs[0] == 1
    rec = await catalog_server.admin.get_device("M1")
    assert rec.status.value == "connected"
    assert any(s.app == "counter" and s.state.value == "running" for s in rec.app_states)


def max_gap(times: list[float]) -> float:
    return max(b - a for a, b in itertools.pairwise(times))


async def _swap_scenario(
    cat: Any, make_node: Any, tmp_path: Path, key: Path, *, push: bool
) -> float:
    """Assign v1.0.0, then v1.1.0; returns seconds from the PATCH to the first v1.1.0 message."""
    d1, s1 = build_signed(tmp_path, key, "meterapp", "1.0.0")
    d2, s2 = build_signed(tmp_path, key, "meterapp", "1.1.0")
    await publish_package(cat, d1, s1)
    await publish_package(cat, d2, s2)
    app_v1 = {"name": "meterapp", "version": "1.0.0", "params": {"interval_s": 0.05}}
    period = 30.0 if push else 1.0
    secret = await register(cat, "SW1", [COUNTER, app_v1], period=period)
    loop = asyncio.get_running_loop()
    async with Collector(cat.brokers.data.url, subscription(Plane.DATA, "SW1")) as col:
        node = await make_node("SW1", secret, listen_for_pushes=push)
        await col.wait_for(lambda: any(b["version"] == "1.0.0" for _, b in col.on("versioned")))
        await asyncio.sleep(0.3)
        t0 = loop.time()
        await set_apps(cat, "SW1", [COUNTER, {**app_v1, "version": "1.1.0"}])
        await col.wait_for(lambda: any(b["version"] == "1.1.0" for _, b in col.on("versioned")), 10)
        swap_s = loop.time() - t0
        await asyncio.sleep(0.5)
    # the other app never paused: no gap in its output beyond its interval plus a margin
    counter_times = [ts for ts, _ in col.on("counter")]
    assert len(counter_times) > 15
    assert max_gap(counter_times) < 0.05 + 0.25, max_gap(counter_times)
    # the old version stopped once the new one ran (no interleaving afterwards)
    versions = [b["version"] for _, b in col.on("versioned")]
    first_new = versions.index("1.1.0")
    assert set(versions[first_new:]) == {"1.1.0"}
    assert node.apps.runners["meterapp"].version == "1.1.0"
    rec = await cat.admin.get_device("SW1")
    states = {(s.app, s.version): s.state.value for s in rec.app_states}
    assert states.get(("meterapp", "1.1.0")) == "running"
    print(f"swap {swap_s:.3f} s, max counter gap {max_gap(counter_times):.3f} s")
    return swap_s


async def test_version_change_swaps_within_one_update_period(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    swap_s = await _swap_scenario(catalog_server, make_node, tmp_path, signing_key, push=False)
    assert swap_s < 1.0 + 0.8  # one update period (1 s) plus download/verify/start


async def test_version_change_swaps_at_once_on_push(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    swap_s = await _swap_scenario(catalog_server, make_node, tmp_path, signing_key, push=True)
    assert swap_s < 1.5  # the update period is 30 s: only the push explains this


async def test_presence_will_and_heartbeats(catalog_server: Any, make_node: Any) -> None:
    secret = await register(catalog_server, "P1", [COUNTER], period=1.0)
    mgmt_url = catalog_server.brokers.mgmt.url
    async with Collector(mgmt_url, subscription(Plane.MGMT, "P1")) as col:
        node = await make_node("P1", secret)
        await col.wait_for(lambda: len(col.on("heartbeat")) >= 2, 5)
        await col.wait_for(lambda: [b["online"] for _, b in col.on("presence")] == [True], 5)
        # an unclean drop of the management connection: the broker publishes the will...
        node.planes[Plane.MGMT].client._client._connection._transport.abort()
        await col.wait_for(lambda: [b["online"] for _, b in col.on("presence")][-1:] == [False], 5)
        # ...and the node, reconnected by itself, announces itself again
        await col.wait_for(
            lambda: [b["online"] for _, b in col.on("presence")] == [True, False, True], 10
        )
    hb = col.on("heartbeat")[-1][1]
    assert hb["device_id"] == "P1" and hb["settings_version"] == node.settings.version
