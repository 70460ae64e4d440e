"""Refused packages: the node keeps what it runs and the refusal is visible in the catalog."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from gridedge.contracts.topics import Plane, subscription
from gridedge.node import packages
from tests.node.helpers import Collector, build_signed
from tests.node.test_node import publish_package, register, set_apps


async def wait_state(
    cat: Any, device_id: str, app: str, version: str, timeout: float = 10.0
) -> Any:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        rec = await cat.admin.get_device(device_id)
        for s in rec.app_states:
            if (
                s.app == app
                and s.version == version
                and s.state.value in ("rejected", "failed", "running")
            ):
                return s
        await asyncio.sleep(0.1)
    raise AssertionError(f"no final state for {app} {version} in the catalog")


def tamper(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename.endswith("__init__.py"):
                body = body.replace(b"n += 1", b"n += 1000")
            dst.writestr(item, body)
    return buf.getvalue()


async def test_bad_tampered_and_older_packages_are_refused(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    cat = catalog_server
    good, sig = build_signed(tmp_path, signing_key, "meterapp", "1.1.0")
    await publish_package(cat, good, sig)
    secret = await register(cat, "R1", [{"name": "meterapp", "version": "1.1.0"}], period=30)
    async with Collector(cat.brokers.data.url, subscription(Plane.DATA, "R1")) as col:
        node = await make_node("R1", secret)
        await col.wait_for(lambda: len(col.on("versioned")) >= 3)

        # 1. signed by a key the node does not trust
        rogue = packages.generate_key(tmp_path / "rogue.pem")[0]
        d, s = build_signed(tmp_path / "rogue", rogue, "meterapp", "1.2.0")
        await publish_package(cat, d, s)
        await set_apps(cat, "R1", [{"name": "meterapp", "version": "1.2.0"}])
        st = await wait_state(cat, "R1", "meterapp", "1.2.0")
        assert st.state.value == "rejected" and "bad signature" in st.reason

        # 2. genuine signature, tampered bytes (a compromised catalog re-hashed them)
        d, s = build_signed(tmp_path / "t", signing_key, "meterapp", "1.3.0")
        await publish_package(cat, tamper(d), s)
        await set_apps(cat, "R1", [{"name": "meterapp", "version": "1.3.0"}])
        st = await wait_state(cat, "R1", "meterapp", "1.3.0")
        assert st.state.value == "rejected" and "bad signature" in st.reason

        # 3. genuine but older than the installed 1.1.0: anti-rollback
        d, s = build_signed(tmp_path / "o", signing_key, "meterapp", "1.0.0")
        await publish_package(cat, d, s)
        await set_apps(cat, "R1", [{"name": "meterapp", "version": "1.0.0"}])
        st = await wait_state(cat, "R1", "meterapp", "1.0.0")
        assert st.state.value == "rejected" and "rollback refused" in st.reason

        # through all of it the installed version kept running
        n = len(col.on("versioned"))
        await col.wait_for(lambda: len(col.on("versioned")) > n + 3)
    assert {b["version"] for _, b in col.on("versioned")} == {"1.1.0"}
    assert node.apps.runners["meterapp"].version == "1.1.0"


async def test_unsigned_package_and_unknown_builtin_are_refused(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    cat = catalog_server
    good, _ = build_signed(tmp_path, signing_key, "meterapp", "1.0.0")
    await publish_package(cat, good, "")
    secret = await register(
        cat,
        "R2",
        [{"name": "meterapp", "version": "1.0.0"}, {"name": "nosuchapp", "version": "1.0.0"}],
    )
    node = await make_node("R2", secret)
    st = await wait_state(cat, "R2", "meterapp", "1.0.0")
    assert st.state.value == "rejected" and "unsigned" in st.reason
    st = await wait_state(cat, "R2", "nosuchapp", "1.0.0")
    assert st.state.value == "failed" and "no built-in app" in st.reason
    assert node.apps.runners == {}


async def test_params_refused_by_schema_and_changed_in_place(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    cat = catalog_server
    good, sig = build_signed(tmp_path, signing_key, "meterapp", "1.0.0")
    await publish_package(cat, good, sig)
    secret = await register(
        cat, "R3", [{"name": "meterapp", "version": "1.0.0", "params": {"interval_s": 0.2}}]
    )
    async with Collector(cat.brokers.data.url, subscription(Plane.DATA, "R3")) as col:
        node = await make_node("R3", secret)
        await col.wait_for(lambda: len(col.on("versioned")) >= 2)
        runner = node.apps.runners["meterapp"]
        # only params change: on_params, same instance, no restart (the counter n keeps growing)
        await set_apps(
            cat, "R3", [{"name": "meterapp", "version": "1.0.0", "params": {"interval_s": 0.02}}]
        )
        await col.wait_for(lambda: len(col.on("versioned")) >= 30)
        assert node.apps.runners["meterapp"] is runner and runner.restarts == 0
        ns = [b["n"] for _, b in col.on("versioned")]
        assert ns == list(range(1, len(ns) + 1))
        # invalid params are refused with the field named; the app keeps its old params
        await set_apps(
            cat, "R3", [{"name": "meterapp", "version": "1.0.0", "params": {"interval_s": -1}}]
        )
        st = None
        for _ in range(100):
            rec = await cat.admin.get_device("R3")
            st = next((s for s in rec.app_states if s.app == "meterapp"), None)
            if st and st.state.value == "failed":
                break
            await __import__("asyncio").sleep(0.1)
        assert st is not None and st.state.value == "failed" and "interval_s" in st.reason
        assert runner.instance is not None and runner.instance.app.interval_s == 0.02


async def test_refusal_reaches_the_catalog_over_rest_while_the_mgmt_broker_is_down(
    catalog_server: Any, make_node: Any, tmp_path: Path, signing_key: Path
) -> None:
    import asyncio

    cat = catalog_server
    good, sig = build_signed(tmp_path, signing_key, "meterapp", "1.0.0")
    await publish_package(cat, good, sig)
    secret = await register(cat, "R4", [{"name": "meterapp", "version": "1.0.0"}], period=1.0)
    node = await make_node("R4", secret)
    await wait_state(cat, "R4", "meterapp", "1.0.0")
    cat.brokers.mgmt.stop()  # no pushes, no MQTT app-state: the periodic check-in and REST remain
    try:
        rogue = packages.generate_key(tmp_path / "rogue.pem")[0]
        d, s = build_signed(tmp_path / "rogue", rogue, "meterapp", "1.1.0")
        await publish_package(cat, d, s)
        await set_apps(cat, "R4", [{"name": "meterapp", "version": "1.1.0"}])
        st = await wait_state(cat, "R4", "meterapp", "1.1.0")
        assert st.state.value == "rejected" and "bad signature" in st.reason
        assert not node.planes[Plane.MGMT].connected
    finally:
        await asyncio.to_thread(cat.brokers.mgmt.start)
