"""Running the catalog: uvicorn around the FastAPI app, the embedded brokers when no broker URL is
configured, and a thread runner for tests and benchmarks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from gridedge.broker.mosquitto import EmbeddedBrokers
from gridedge.broker.urls import parse_broker_url
from gridedge.catalog.api import create_asgi
from gridedge.catalog.service import CatalogOptions, CatalogService
from gridedge.config import Config
from gridedge.contracts.catalog import BrokerEndpoint, BrokerPlanes
from gridedge.webthread import UvicornThread

log = logging.getLogger(__name__)

# Devices re-check every few seconds to minutes: keeping their connection open saves a TCP
# handshake per check-in (uvicorn's default closes idle connections after 5 s).
KEEP_ALIVE_S = 75


def quiet_libraries() -> None:
    """gmqtt logs every SUBACK and alembic every plugin at INFO: keep the catalog's log readable."""
    for name in ("gmqtt", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def endpoint(url: str, ca_file: str | None = None) -> BrokerEndpoint:
    """A broker URL as the endpoint handed to devices (credentials from the URL kept)."""
    addr = parse_broker_url(url, ca_file=ca_file)
    return BrokerEndpoint(
        url=addr.url, username=addr.username, password=addr.password, ca_file=ca_file
    )


@dataclass
class CatalogServer:
    """A catalog listening on host:port, run in a background thread (tests, benchmarks, demo)."""

    options: CatalogOptions
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "warning"
    _runner: UvicornThread | None = None
    service: CatalogService | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _config(self) -> uvicorn.Config:
        self.service = CatalogService(self.options)
        return uvicorn.Config(
            create_asgi(self.service),
            host=self.host,
            port=self.port,
            log_level=self.log_level,
            access_log=False,
            http="httptools",
            loop="uvloop",
            lifespan="on",
            backlog=4096,
            timeout_keep_alive=KEEP_ALIVE_S,
        )

    def start(self, timeout_s: float = 30.0) -> CatalogServer:
        quiet_libraries()
        self._runner = UvicornThread(self._config(), "catalog server").start(timeout_s)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._runner is not None:
            self._runner.stop(timeout_s)
        self._runner = None

    def __enter__(self) -> CatalogServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    db: str | None = None,
    data_broker: str | None = None,
    mgmt_broker: str | None = None,
    public_url: str | None = None,
    config: Config | None = None,
) -> None:
    """Blocking: run the catalog until SIGINT/SIGTERM; spawn Mosquitto when no broker is given."""
    quiet_libraries()
    cfg = config or Config()
    data_url = data_broker or cfg.data_broker
    mgmt_url = mgmt_broker or cfg.mgmt_broker
    embedded: EmbeddedBrokers | None = None
    if not data_url or not mgmt_url:
        embedded = EmbeddedBrokers.create(workdir=Path(cfg.ensure_data_dir()) / "mqtt").start()
        data_url = data_url or embedded.data.url
        mgmt_url = mgmt_url or embedded.mgmt.url
        log.info("embedded brokers: data %s, mgmt %s", embedded.data.url, embedded.mgmt.url)
    try:
        options = CatalogOptions(
            db_url=db or cfg.catalog_db_url(),
            brokers=BrokerPlanes(
                data=endpoint(data_url, cfg.broker_ca), mgmt=endpoint(mgmt_url, cfg.broker_ca)
            ),
            public_url=public_url
            or (cfg.catalog_url if host in ("0.0.0.0", "::") else f"http://{host}:{port}"),
            admin_token=cfg.admin_token_value(),
        )
        service = CatalogService(options)
        uvicorn.run(
            create_asgi(service),
            host=host,
            port=port,
            http="httptools",
            loop="uvloop",
            access_log=False,
            log_level="info",
            backlog=4096,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    finally:
        if embedded is not None:
            embedded.stop()
