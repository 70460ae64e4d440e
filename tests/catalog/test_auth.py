"""Security and input errors: 401/403/404/409/422 with Problem bodies that name the field, token
rotation on re-provisioning, and a flood of bad requests that must not stall good check-ins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gridedge.catalog.client import CatalogClient, CatalogError
from gridedge.contracts.catalog import DeviceRegistration, SettingsUpdate


async def _raw(cat, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    async with httpx.AsyncClient(base_url=cat.url) as h:
        return await h.request(method, path, headers=headers, **kw)


async def test_missing_or_wrong_token_is_401(catalog_server) -> None:
    await catalog_server.provisioned("M1")
    for token in (None, "not-a-token"):
        r = await _raw(catalog_server, "GET", "/v1/devices/M1/settings", token)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = await _raw(catalog_server, "GET", "/v1/devices", "wrong")
    assert r.status_code == 401
    r = await _raw(catalog_server, "GET", "/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_a_device_may_only_act_on_itself_403(catalog_server) -> None:
    m1, _ = await catalog_server.provisioned("M1")
    await catalog_server.provisioned("M2")
    r = await _raw(catalog_server, "GET", "/v1/devices/M2/settings", m1.token)
    assert r.status_code == 403 and "M2" in r.json()["detail"]
    r = await _raw(
        catalog_server,
        "POST",
        "/v1/devices/M2/app-states",
        m1.token,
        json={"device_id": "M2", "app": "a", "version": "1.0.0", "state": "running"},
    )
    assert r.status_code == 403
    # operator endpoints refuse device tokens
    r = await _raw(catalog_server, "PATCH", "/v1/devices/M1/settings", m1.token, json={"extra": {}})
    assert r.status_code == 403
    r = await _raw(
        catalog_server, "POST", "/v1/devices", m1.token, json={"id": "X", "kind": "meter"}
    )
    assert r.status_code == 403


async def test_unknown_device_404_and_duplicate_409(catalog_server) -> None:
    with pytest.raises(CatalogError) as e:
        await catalog_server.admin.get_device("nope")
    assert e.value.status == 404
    c = catalog_server.client("nope")
    with pytest.raises(CatalogError) as e:
        await c.provision("whatever-secret")
    assert e.value.status == 404
    await catalog_server.add_device("D1")
    with pytest.raises(CatalogError) as e:
        await catalog_server.add_device("D1")
    assert e.value.status == 409 and e.value.fields == ["devices.0.id"]
    with pytest.raises(CatalogError) as e:
        await catalog_server.admin.register_batch(
            [DeviceRegistration(id="D2", kind="meter"), DeviceRegistration(id="D1", kind="meter")]
        )
    assert e.value.status == 409 and e.value.fields == ["devices.1.id"]
    # all or nothing: D2 was not registered either
    with pytest.raises(CatalogError):
        await catalog_server.admin.get_device("D2")


async def test_malformed_bodies_are_422_naming_each_field(catalog_server) -> None:
    tok = catalog_server.admin_token
    r = await _raw(
        catalog_server,
        "POST",
        "/v1/devices",
        tok,
        json={
            "id": "bad id/+",
            "kind": "toaster",
            "update_period_s": -1,
            "location": {"phase": "d"},
            "surprise": 1,
        },
    )
    assert r.status_code == 422
    fields = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert set(fields) == {"id", "kind", "update_period_s", "location.phase", "surprise"}
    assert "greater than 0" in fields["update_period_s"]
    r = await _raw(
        catalog_server,
        "POST",
        "/v1/devices/batch",
        tok,
        json={"devices": [{"id": "ok", "kind": "meter"}, {"id": "x"}]},
    )
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["devices.1.kind"]
    r = await _raw(
        catalog_server,
        "POST",
        "/v1/devices",
        tok,
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"]
    r = await _raw(catalog_server, "GET", "/v1/devices?kind=toaster", tok)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    # topology referring to a missing node
    r = await _raw(
        catalog_server,
        "PUT",
        "/v1/topology/g",
        tok,
        json={
            "grid": "g",
            "nodes": [{"id": "a"}],
            "branches": [{"id": "b", "from_node": "a", "to_node": "zz", "kind": "line"}],
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "branches.0.to_node"
    # and a provisioning secret that is too short
    await catalog_server.add_device("P1")
    r = await _raw(
        catalog_server, "POST", "/v1/devices/P1/provision", json={"provisioning_secret": "x"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "provisioning_secret"


async def test_wrong_secret_401_and_reprovisioning_revokes_the_old_token(catalog_server) -> None:
    creds = await catalog_server.add_device("M1")
    c = catalog_server.client("M1")
    with pytest.raises(CatalogError) as e:
        await c.provision("wrong-secret-123")
    assert e.value.status == 401
    first = await c.provision(creds.provisioning_secret)
    old = CatalogClient(catalog_server.url, "M1", token=first.token)
    second = await c.provision(creds.provisioning_secret)
    assert second.token != first.token
    assert await c.check_in() is None  # the new token works
    with pytest.raises(CatalogError) as e:
        await old.check_in()
    assert e.value.status == 401
    await old.aclose()
    # deleting the device revokes its token too
    await catalog_server.admin.delete_device("M1")
    with pytest.raises(CatalogError) as e:
        await c.check_in()
    assert e.value.status == 401


async def test_tokens_and_secrets_are_stored_hashed(catalog_server) -> None:
    creds = await catalog_server.add_device("M1")
    c = catalog_server.client("M1")
    resp = await c.provision(creds.provisioning_secret)
    path = Path(catalog_server.db_url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    db = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert resp.token.encode() not in db
    assert creds.provisioning_secret.encode() not in db


async def test_bad_request_flood_does_not_stall_good_check_ins(catalog_server) -> None:
    good = [(await catalog_server.provisioned(f"G{i}"))[0] for i in range(10)]
    stop = asyncio.Event()
    bad_count = 0

    async def flood(kind: int) -> None:
        nonlocal bad_count
        async with httpx.AsyncClient(base_url=catalog_server.url) as h:
            while not stop.is_set():
                if kind == 0:
                    r = await h.get(
                        "/v1/devices/G1/settings", headers={"Authorization": "Bearer forged"}
                    )
                    assert r.status_code == 401
                elif kind == 1:
                    r = await h.post(
                        "/v1/devices/G2/provision",
                        content=b"\x00garbage" * 50,
                        headers={"content-type": "application/json"},
                    )
                    assert r.status_code == 422
                else:
                    r = await h.post(
                        "/v1/devices",
                        json={"id": ["x"] * 100, "kind": 5},
                        headers={"Authorization": f"Bearer {good[0].token}"},
                    )
                    assert r.status_code in (403, 422)
                bad_count += 1

    flooders = [asyncio.create_task(flood(i % 3)) for i in range(12)]
    await asyncio.sleep(0.3)
    ok = 0
    for _ in range(20):
        results = await asyncio.wait_for(asyncio.gather(*(c.check_in() for c in good)), 5)
        ok += sum(1 for r in results if r is None)
    stop.set()
    await asyncio.gather(*flooders)
    assert ok == 200  # every good check-in answered (304) while the flood ran
    assert bad_count > 200
    await catalog_server.admin.patch_settings("G3", SettingsUpdate(extra={"after": "flood"}))
    assert (await good[3].check_in()).extra == {"after": "flood"}


async def test_an_internal_failure_is_a_problem_body_not_a_traceback(catalog_server) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk on fire")

    catalog_server.service.list_devices = boom  # type: ignore[method-assign]
    r = await _raw(catalog_server, "GET", "/v1/devices", catalog_server.admin_token)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Internal error" and "Traceback" not in r.text
    # the server stays up
    assert (await _raw(catalog_server, "GET", "/v1/health")).status_code == 200
