"""Async clients of the catalog's REST API (httpx): one for devices, one for operators.

Both keep one HTTP connection pool open (``async with`` or ``await aclose()``). Every answer
>= 400 raises :class:`CatalogError` carrying the status and the server's ``Problem`` body, so a
caller can show which field was refused and why.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gridedge.contracts.catalog import (
    AppPackageInfo,
    AppStateReport,
    AppUpdateState,
    DeviceKind,
    DeviceList,
    DeviceRecord,
    DeviceRegistration,
    DeviceRegistrationBatch,
    DeviceSettings,
    DeviceStatus,
    ProvisioningCredentials,
    ProvisioningCredentialsBatch,
    ProvisionRequest,
    ProvisionResponse,
    SettingsUpdate,
    TopologyDocument,
    TopologyStored,
)
from gridedge.contracts.common import Problem

M = TypeVar("M", bound=BaseModel)


class CatalogError(Exception):
    """The catalog refused a request (or was unreachable: status 0)."""

    def __init__(self, status: int, problem: Problem) -> None:
        fields = "; ".join(f"{e.field}: {e.reason}" for e in problem.errors)
        super().__init__(
            f"{status} {problem.title}"
            + (f": {problem.detail}" if problem.detail else "")
            + (f" [{fields}]" if fields else "")
        )
        self.status = status
        self.problem = problem

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.problem.errors]


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        problem = Problem.model_validate_json(resp.content)
    except ValidationError:
        problem = Problem(
            title=resp.reason_phrase or "error", status=resp.status_code, detail=resp.text[:500]
        )
    raise CatalogError(resp.status_code, problem)


class _Base:
    def __init__(
        self, base_url: str, token: str | None, timeout_s: float, client: httpx.AsyncClient | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own = client is None
        self._http = client or httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if extra:
            h.update(extra)
        return h

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        hdrs = self._headers(headers)
        if body is not None:
            content = body.model_dump_json(
                by_alias=True, exclude_unset=isinstance(body, SettingsUpdate)
            ).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            try:
                resp = await self._http.request(
                    method, self.base_url + path, content=content, params=params, headers=hdrs
                )
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # a kept-alive connection the server closed just as we reused it: a GET is
                # safe to send once more on a fresh connection
                if method != "GET":
                    raise
                resp = await self._http.request(
                    method, self.base_url + path, content=content, params=params, headers=hdrs
                )
        except httpx.TransportError as exc:
            raise CatalogError(
                0,
                Problem(title="Catalog unreachable", status=0, detail=f"{self.base_url}: {exc!r}"),
            ) from exc
        _raise_for(resp)
        return resp

    async def _get_model(
        self, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> M:
        return model.model_validate_json((await self._request("GET", path, params=params)).content)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class CatalogClient(_Base):
    """What a device (node) uses: self-configuration, auto-update, reports, package downloads."""

    def __init__(
        self,
        base_url: str,
        device_id: str,
        token: str | None = None,
        *,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, token, timeout_s, client)
        self.device_id = device_id
        self.etag: str | None = None
        self.settings: DeviceSettings | None = None

    async def provision(
        self, secret: str, hardware: str | None = None, firmware: str | None = None
    ) -> ProvisionResponse:
        """Self-configuration (seed 001 Fig. 4): keeps the new token and the settings' etag."""
        req = ProvisionRequest(provisioning_secret=secret, hardware=hardware, firmware=firmware)
        resp = await self._request("POST", f"/v1/devices/{self.device_id}/provision", body=req)
        out = ProvisionResponse.model_validate_json(resp.content)
        self.token = out.token
        self.settings = out.settings
        self.etag = f'"{out.settings.etag}"'
        return out

    async def check_in(self) -> DeviceSettings | None:
        """Auto-update: the new settings, or None when unchanged (304)."""
        headers = {"If-None-Match": self.etag} if self.etag else None
        resp = await self._request("GET", f"/v1/devices/{self.device_id}/settings", headers=headers)
        if resp.status_code == 304:
            return None
        settings = DeviceSettings.model_validate_json(resp.content)
        self.settings = settings
        self.etag = resp.headers.get("etag") or f'"{settings.etag}"'
        return settings

    async def report_app_state(
        self, app: str, version: str, state: AppUpdateState | str, reason: str = ""
    ) -> None:
        report = AppStateReport(
            device_id=self.device_id,
            app=app,
            version=version,
            state=AppUpdateState(state),
            reason=reason,
        )
        await self._request("POST", f"/v1/devices/{self.device_id}/app-states", body=report)

    async def download_package(self, name: str, version: str) -> bytes:
        return (await self._request("GET", f"/v1/apps/{name}/{version}/package")).content

    async def list_devices(self, **filters: Any) -> DeviceList:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return await self._get_model("/v1/devices", DeviceList, params)

    async def get_topology(self, grid: str) -> TopologyDocument:
        return await self._get_model(f"/v1/topology/{grid}", TopologyDocument)


class CatalogAdmin(_Base):
    """What an operator (or a service holding the admin token) uses."""

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        *,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, admin_token, timeout_s, client)

    async def health(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/health")).json()

    async def register(self, reg: DeviceRegistration) -> ProvisioningCredentials:
        resp = await self._request("POST", "/v1/devices", body=reg)
        return ProvisioningCredentials.model_validate_json(resp.content)

    async def register_batch(self, regs: list[DeviceRegistration]) -> list[ProvisioningCredentials]:
        resp = await self._request(
            "POST", "/v1/devices/batch", body=DeviceRegistrationBatch(devices=regs)
        )
        return ProvisioningCredentialsBatch.model_validate_json(resp.content).devices

    async def get_device(self, device_id: str) -> DeviceRecord:
        return await self._get_model(f"/v1/devices/{device_id}", DeviceRecord)

    async def list_devices(
        self,
        kind: DeviceKind | str | None = None,
        area: str | None = None,
        grid: str | None = None,
        status: DeviceStatus | str | None = None,
        node: str | None = None,
    ) -> DeviceList:
        params = {
            k: str(v)
            for k, v in {
                "kind": kind,
                "area": area,
                "grid": grid,
                "status": status,
                "node": node,
            }.items()
            if v is not None
        }
        return await self._get_model("/v1/devices", DeviceList, params)

    async def patch_settings(self, device_id: str, update: SettingsUpdate) -> DeviceSettings:
        resp = await self._request("PATCH", f"/v1/devices/{device_id}/settings", body=update)
        return DeviceSettings.model_validate_json(resp.content)

    async def get_settings(self, device_id: str) -> DeviceSettings:
        return await self._get_model(f"/v1/devices/{device_id}/settings", DeviceSettings)

    async def delete_device(self, device_id: str) -> None:
        await self._request("DELETE", f"/v1/devices/{device_id}")

    async def put_topology(self, doc: TopologyDocument) -> TopologyStored:
        resp = await self._request("PUT", f"/v1/topology/{doc.grid}", body=doc)
        return TopologyStored.model_validate_json(resp.content)

    async def get_topology(self, grid: str) -> TopologyDocument:
        return await self._get_model(f"/v1/topology/{grid}", TopologyDocument)

    async def put_app(self, info: AppPackageInfo) -> AppPackageInfo:
        resp = await self._request("POST", "/v1/apps", body=info)
        return AppPackageInfo.model_validate_json(resp.content)

    async def upload_app_package(self, info: AppPackageInfo, data: bytes) -> AppPackageInfo:
        """Announce the version and upload its bytes (the catalog checks size and sha256)."""
        await self.put_app(info)
        resp = await self._request(
            "PUT",
            f"/v1/apps/{info.name}/{info.version}/package",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return AppPackageInfo.model_validate_json(resp.content)

    async def list_apps(self) -> list[AppPackageInfo]:
        resp = await self._request("GET", "/v1/apps")
        return [AppPackageInfo.model_validate(x) for x in resp.json()]
