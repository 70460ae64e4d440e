"""App packages: announced, uploaded with a checked sha256, pushed to the devices assigned to them,
downloaded by the devices."""

from __future__ import annotations

import hashlib

import pytest

from gridedge.catalog.client import CatalogError
from gridedge.contracts.catalog import AppPackageInfo, AppUpdateState
from gridedge.contracts.topics import Plane, Stream, topic
from tests.catalog.helpers import Recorder


def _info(data: bytes, version: str = "1.2.0") -> AppPackageInfo:
    return AppPackageInfo(
        name="telemetry",
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        signature="c2lnbmF0dXJl",
        manifest={"entry": "app:main"},
    )


async def test_release_fills_package_url_and_pushes_to_assigned_devices(catalog_server) -> None:
    app = [{"name": "telemetry", "version": "1.2.0"}]
    m1, first = await catalog_server.provisioned("M1", apps=app)
    m2, _ = await catalog_server.provisioned("M2")  # runs nothing
    assert first.settings.apps[0].package_url is None
    rec = await Recorder(catalog_server.brokers.mgmt.url).start(
        topic(Plane.MGMT, "M1", Stream.SETTINGS), topic(Plane.MGMT, "M2", Stream.SETTINGS)
    )
    rec.messages.clear()
    data = b"PK\x03\x04 pretend this is a wheel" * 100
    await catalog_server.admin.upload_app_package(_info(data), data)
    await rec.wait_for(lambda: len(rec.messages) >= 1)
    assert [t for t, _ in rec.messages] == [topic(Plane.MGMT, "M1", Stream.SETTINGS)]
    assert rec.messages[0][1]["reason"] == "app-release"
    s = await m1.check_in()
    a = s.apps[0]
    assert a.package_url == f"{catalog_server.url}/v1/apps/telemetry/1.2.0/package"
    assert a.sha256 == hashlib.sha256(data).hexdigest() and a.signature == "c2lnbmF0dXJl"
    assert await m2.check_in() is None
    got = await m1.download_package("telemetry", "1.2.0")
    assert got == data
    await m1.report_app_state("telemetry", "1.2.0", AppUpdateState.RUNNING)
    rec2 = await catalog_server.admin.get_device("M1")
    assert [(x.app, x.state) for x in rec2.app_states] == [("telemetry", AppUpdateState.RUNNING)]
    assert [i.version for i in await catalog_server.admin.list_apps()] == ["1.2.0"]
    await rec.stop()


async def test_package_that_does_not_match_is_refused(catalog_server) -> None:
    data = b"real bytes"
    await catalog_server.admin.put_app(_info(data))
    with pytest.raises(CatalogError) as e:
        await catalog_server.admin.upload_app_package(_info(data), b"tampered!!")
    assert e.value.status == 422 and e.value.fields == ["body"]
    m1, _ = await catalog_server.provisioned("M1")
    with pytest.raises(CatalogError) as e:
        await m1.download_package("telemetry", "1.2.0")
    assert e.value.status == 404
    with pytest.raises(CatalogError) as e:
        await catalog_server.admin.upload_app_package(
            _info(data, "9.9.9").model_copy(update={"size": 3}), data
        )
    assert e.value.status == 422
