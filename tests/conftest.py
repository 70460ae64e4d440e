"""Shared fixtures: real servers only (Mosquitto spawned on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridedge.broker.mosquitto import EmbeddedBrokers, MosquittoInstance, free_port

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[EmbeddedBrokers]:
    """Both planes' Mosquitto instances, fresh for each test."""
    with EmbeddedBrokers.create(workdir=tmp_path / "mqtt") as b:
        yield b


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoInstance]:
    """One Mosquitto instance, fresh for each test."""
    with MosquittoInstance("test", free_port(), workdir=tmp_path / "mqtt") as m:
        yield m


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def catalog_server(brokers: EmbeddedBrokers, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real Device Catalog (uvicorn thread, free port, tmp SQLite) on the ``brokers`` fixture.

    Yields a ``gridedge.catalog.testing.RunningCatalog``: ``.url``, ``.admin_token``, ``.admin``
    (CatalogAdmin), ``.brokers``, ``await .add_device(id, kind, **fields)`` → secret,
    ``await .provisioned(id, kind, **fields)`` → (CatalogClient, ProvisionResponse),
    ``.client(id, token)``, ``.restart()``, ``.service`` (in-process service, for assertions)."""
    from gridedge.catalog.testing import start_catalog

    cat = start_catalog(brokers, tmp_path)
    try:
        yield cat
    finally:
        await cat.aclose()
        cat.stop()


@pytest.fixture
def twin_server():  # type: ignore[no-untyped-def]
    """A real twin (turin-2feeder, stepped clock) behind its network interface on a free port.

    Yields a ``gridedge.twin.server.TwinServer``: ``.url`` for ``TwinClient``/``TwinDaq``/
    ``TwinActuators``, ``.service.twin`` (the in-process Twin, for assertions). The clock moves
    only when told: ``POST /v1/clock/advance {"seconds": s}``."""
    from gridedge.twin.server import start_twin_server

    srv = start_twin_server("turin-2feeder")
    try:
        yield srv
    finally:
        srv.stop()
