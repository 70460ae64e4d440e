"""The fleet's check-in over aiohttp answers exactly as the httpx CatalogClient does: settings
and ETag, 304 while unchanged, new settings after a change, refusals and outages sorted alike."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gridedge.broker.mosquitto import free_port
from gridedge.node.catalog_link import CatalogLink, CatalogRefused, CatalogUnavailable
from tests.node.test_node import COUNTER, register, set_apps


async def test_aiohttp_check_in_matches_the_httpx_one(catalog_server: Any) -> None:
    secret = await register(catalog_server, "C1", [COUNTER], period=30.0)
    plain = CatalogLink(catalog_server.url, "C1")
    token = (await plain.provision(secret)).token
    async with aiohttp.ClientSession() as session:
        fast = CatalogLink(catalog_server.url, "C1", token=token, check_in_session=session)
        a = await fast.check_in()  # no ETag yet: the settings, as provisioning gave them
        assert a is not None and a == plain.client.settings and fast.etag == plain.etag
        assert await plain.check_in() is None
        assert await fast.check_in() is None  # 304 on the ETag of the last answer
        await set_apps(catalog_server, "C1", [{**COUNTER, "params": {"interval_s": 0.2}}])
        new = await fast.check_in()
        assert new is not None and new.apps[0].params == {"interval_s": 0.2}
        assert new.version > a.version and fast.etag != plain.etag
        assert await fast.check_in() is None
        assert await plain.check_in() == new and fast.etag == plain.etag

        wrong = CatalogLink(catalog_server.url, "C1", token="not-it", check_in_session=session)
        with pytest.raises(CatalogRefused) as refused:
            await wrong.check_in()
        assert refused.value.status == 401
        with pytest.raises(CatalogRefused) as plain_refused:
            await CatalogLink(catalog_server.url, "C1", token="not-it").check_in()
        assert str(refused.value) == str(plain_refused.value)  # the catalog's Problem, alike

        gone = CatalogLink(
            f"http://127.0.0.1:{free_port()}", "C1", token=token, check_in_session=session
        )
        with pytest.raises(CatalogUnavailable):
            await gone.check_in()
    await plain.close()


async def test_fleet_meters_check_in_over_aiohttp(catalog_server: Any, tmp_path: Any) -> None:
    from gridedge.node.fleet import Fleet, FleetOptions

    fleet = Fleet(
        FleetOptions(
            catalog_url=catalog_server.url,
            admin_token=catalog_server.admin_token,
            grid="cgrid",
            meters=3,
            interval_s=0.5,
            state_root=tmp_path / "fleet",
            update_period_s=1.0,
        )
    )
    await fleet.start()
    try:
        node = next(iter(fleet.nodes.values()))
        assert node.link._session is fleet._check_ins is not None
        before = sum(n.checkins for n in fleet.nodes.values())
        import asyncio

        await asyncio.sleep(2.5)
        assert sum(n.checkins for n in fleet.nodes.values()) >= before + 3
        assert all(n.catalog_ok for n in fleet.nodes.values())
    finally:
        await fleet.stop()
    assert fleet._check_ins is not None and fleet._check_ins.closed
