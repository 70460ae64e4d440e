"""A real catalog for tests of every role: server thread on a free port, tmp database, the given
brokers. Used by the ``catalog_server`` fixture in tests/conftest.py."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridedge.broker.mosquitto import EmbeddedBrokers, free_port
from gridedge.catalog.client import CatalogAdmin, CatalogClient
from gridedge.catalog.server import CatalogServer, endpoint
from gridedge.catalog.service import CatalogOptions, CatalogService
from gridedge.contracts.catalog import (
    BrokerPlanes,
    DeviceKind,
    DeviceRegistration,
    ProvisioningCredentials,
    ProvisionResponse,
)


@dataclass
class RunningCatalog:
    brokers: EmbeddedBrokers
    db_url: str
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = field(default_factory=free_port)
    sweep_interval_s: float = 0.1
    flush_interval_s: float = 0.5
    server: CatalogServer | None = None
    admin: CatalogAdmin = field(init=False)
    _clients: list[CatalogClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.admin = CatalogAdmin(self.url, self.admin_token)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self) -> CatalogService:
        assert self.server is not None and self.server.service is not None
        return self.server.service

    def options(self) -> CatalogOptions:
        return CatalogOptions(
            db_url=self.db_url,
            brokers=BrokerPlanes(
                data=endpoint(self.brokers.data.url), mgmt=endpoint(self.brokers.mgmt.url)
            ),
            public_url=self.url,
            admin_token=self.admin_token,
            sweep_interval_s=self.sweep_interval_s,
            flush_interval_s=self.flush_interval_s,
            freeze_heap=False,
        )

    def start(self) -> RunningCatalog:
        self.server = CatalogServer(self.options(), port=self.port).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> None:
        """Stop and start again on the same port and database (a restart must lose nothing)."""
        self.stop()
        self.start()

    def client(self, device_id: str, token: str | None = None) -> CatalogClient:
        c = CatalogClient(self.url, device_id, token)
        self._clients.append(c)
        return c

    async def add_device(
        self, device_id: str, kind: DeviceKind | str = DeviceKind.METER, **fields: Any
    ) -> ProvisioningCredentials:
        """Register one device (fields as in DeviceRegistration); returns its secret."""
        return await self.admin.register(
            DeviceRegistration.model_validate({"id": device_id, "kind": kind, **fields})
        )

    async def provisioned(
        self, device_id: str, kind: DeviceKind | str = DeviceKind.METER, **fields: Any
    ) -> tuple[CatalogClient, ProvisionResponse]:
        """Register and provision one device; the client holds its token and etag."""
        creds = await self.add_device(device_id, kind, **fields)
        c = self.client(device_id)
        return c, await c.provision(creds.provisioning_secret)

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()
        await self.admin.aclose()


def start_catalog(brokers: EmbeddedBrokers, tmp: Path, db_url: str | None = None) -> RunningCatalog:
    return RunningCatalog(
        brokers=brokers, db_url=db_url or f"sqlite:///{tmp / 'catalog.db'}"
    ).start()
