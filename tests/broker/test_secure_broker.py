"""Configured brokers with TLS and username/password (issue 2, item 3): the client, and the
catalog handing such brokers to devices and pushing over them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridedge.broker.client import BrokerUnavailable, MqttClient
from gridedge.broker.mosquitto import MosquittoInstance, free_port, write_password_file
from gridedge.broker.urls import BrokerAddress
from gridedge.catalog.client import CatalogAdmin, CatalogClient
from gridedge.catalog.server import CatalogServer, endpoint
from gridedge.catalog.service import CatalogOptions
from gridedge.contracts import Plane, Stream, topic
from gridedge.contracts.catalog import (
    BrokerPlanes,
    DeviceKind,
    DeviceRegistration,
    SettingsChanged,
    SettingsUpdate,
)
from tests.broker.certs import make_tls_files

USER, PASSWORD = "meter-fleet", "s3cret-pass"


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    tls = make_tls_files(tmp_path / "pki")
    pw = write_password_file(tmp_path / "passwd", {USER: PASSWORD, "catalog": "cat-pass"})
    with MosquittoInstance(
        "secure", free_port(), workdir=tmp_path / "mqtt", password_file=pw, tls=tls
    ) as m:
        yield m


def _addr(
    broker: MosquittoInstance, user: str | None, password: str | None, ca: str | None
) -> BrokerAddress:
    return BrokerAddress(
        host="127.0.0.1", port=broker.port, tls=True, username=user, password=password, ca_file=ca
    )


async def _until(pred, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_tls_with_credentials_carries_messages(secure_broker: MosquittoInstance) -> None:
    assert secure_broker.url.startswith("mqtts://")
    ca = str(secure_broker.tls.ca_file)
    got: list[bytes] = []
    sub = await MqttClient(_addr(secure_broker, USER, PASSWORD, ca)).connect()
    sub.subscribe("gridedge/#", lambda t, p: got.append(p), qos=1)
    await asyncio.sleep(0.1)
    pub = await MqttClient(_addr(secure_broker, USER, PASSWORD, ca)).connect()
    pub.publish("gridedge/v1/data/M1/telemetry", b"over-tls", qos=1)
    await _until(lambda: got == [b"over-tls"])
    await pub.disconnect()
    await sub.disconnect()


@pytest.mark.parametrize(
    ("user", "password", "trusted"),
    [(USER, "wrong", True), (None, None, True), (USER, PASSWORD, False)],
    ids=["wrong-password", "anonymous", "untrusted-ca"],
)
async def test_refused_connections_are_clear_errors(
    secure_broker: MosquittoInstance,
    tmp_path: Path,
    user: str | None,
    password: str | None,
    trusted: bool,
) -> None:
    ca = (
        str(secure_broker.tls.ca_file)
        if trusted
        else str(make_tls_files(tmp_path / "other").ca_file)
    )
    client = MqttClient(_addr(secure_broker, user, password, ca))
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{secure_broker.port}"):
        await client.connect(timeout_s=3)


async def test_catalog_hands_out_and_pushes_over_a_secure_broker(
    secure_broker: MosquittoInstance, tmp_path: Path
) -> None:
    ca = str(secure_broker.tls.ca_file)
    url = f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{secure_broker.port}"
    admin_token = secrets.token_urlsafe(32)
    port = free_port()
    options = CatalogOptions(
        db_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        brokers=BrokerPlanes(data=endpoint(url, ca), mgmt=endpoint(url, ca)),
        public_url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        sweep_interval_s=0.1,
        flush_interval_s=0.5,
        freeze_heap=False,
    )
    with CatalogServer(options, port=port):
        admin = CatalogAdmin(f"http://127.0.0.1:{port}", admin_token)
        creds = await admin.register(
            DeviceRegistration(id="M1", kind=DeviceKind.METER, update_period_s=5)
        )
        device = CatalogClient(f"http://127.0.0.1:{port}", "M1")
        settings = (await device.provision(creds.provisioning_secret)).settings
        mgmt = settings.brokers.mgmt
        assert mgmt.url == f"mqtts://127.0.0.1:{secure_broker.port}"
        assert (mgmt.username, mgmt.password, mgmt.ca_file) == (USER, PASSWORD, ca)

        pushes: list[SettingsChanged] = []
        listener = await MqttClient(mgmt).connect()
        listener.subscribe(
            topic(Plane.MGMT, "M1", Stream.SETTINGS),
            lambda t, p: pushes.append(SettingsChanged.from_json(p)),
            qos=1,
        )
        await asyncio.sleep(0.2)
        await admin.patch_settings("M1", SettingsUpdate(update_period_s=7))
        await _until(lambda: any(p.version > settings.version for p in pushes))
        await listener.disconnect()
        await device.aclose()
        await admin.aclose()
