"""Gateway fixtures: a real gateway (uvicorn + pyiec61850 shards) on free ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridedge.gateways.iec61850.gateway import GatewayOptions
from gridedge.gateways.iec61850.server import GatewayRunner
from tests.gateways.relay import RelayResponder

ADMIN = "gw-admin-token-for-tests"
DBPOS_ON, DBPOS_OFF = b"\x80", b"@"  # Dbpos bit strings 10 / 01 as the Rust client returns them


@pytest.fixture
def standalone_gateway(tmp_path: Path) -> Iterator[GatewayRunner]:
    """No broker, no catalog: the thesis' setting (REST + MMS only)."""
    runner = GatewayRunner(GatewayOptions(data_dir=tmp_path / "gw", admin_token=ADMIN)).start()
    try:
        yield runner
    finally:
        runner.stop()


def admin_headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}", **extra}


async def mms_connect(address: str, attempts: int = 20) -> Any:
    """Independent client (Rust ``iec61850``); retries connect + first request on a fresh
    connection just after a server start (REFERENCE §5.4 pitfall 6)."""
    import iec61850

    last: Exception | None = None
    for i in range(attempts):
        try:
            conn = await iec61850.IedConnection.connect(address, timeout_ms=3000)
            await conn.get_server_directory()
            return conn
        except Exception as exc:  # IedConnectionError and friends
            last = exc
            await asyncio.sleep(0.05 * (i + 1))
    raise AssertionError(f"MMS server {address} unreachable: {last}")


def http(runner: GatewayRunner) -> httpx.Client:
    return httpx.Client(base_url=runner.url, timeout=30)


async def until(pred: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or pred}")


@pytest.fixture
async def platform(catalog_server, brokers, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Factory: a gateway wired to the catalog and both brokers, plus a relay responder."""
    runners: list[GatewayRunner] = []
    relay = await RelayResponder(brokers.data.url).start()

    def make(**kw: Any) -> GatewayRunner:
        opts = GatewayOptions(
            data_dir=tmp_path / f"gw{len(runners)}",
            admin_token=ADMIN,
            data_broker=brokers.data.url,
            mgmt_broker=brokers.mgmt.url,
            catalog_url=catalog_server.url,
            catalog_admin_token=catalog_server.admin_token,
            sync_period_s=0.2,
            command_timeout_s=3.0,
            **kw,
        )
        runner = GatewayRunner(opts).start()
        runners.append(runner)
        return runner

    make.relay = relay  # type: ignore[attr-defined]
    make.catalog = catalog_server  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for r in runners:
            r.stop()
        await relay.stop()


async def meter_address(gw: GatewayRunner, device_id: str, timeout_s: float = 5.0) -> str:
    async with httpx.AsyncClient(base_url=gw.url) as c:

        async def mms() -> str | None:
            r = await c.get(f"/SmartMeter/{device_id}", headers=admin_headers())
            return r.json().get("mms") if r.status_code == 200 else None

        return await until(mms, timeout_s, f"{device_id} served over MMS")
