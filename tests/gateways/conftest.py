"""Gateway fixtures: a real gateway (uvicorn + pyiec61850 shards) on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridedge.gateways.iec61850.gateway import GatewayOptions
from gridedge.gateways.iec61850.server import GatewayRunner

ADMIN = "gw-admin-token-for-tests"


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
