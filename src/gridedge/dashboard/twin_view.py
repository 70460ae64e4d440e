"""The dashboard's view of a simulated grid: topology from the catalog (where the platform keeps
it; the twin's own document when the catalog has none), energised state and switch states from
the twin's network interface, and the operator's actions sent to that interface — the way a SCADA
front end would command remote-controlled switches."""

from __future__ import annotations

from typing import Any

import httpx

from gridedge.contracts.catalog import TopologyDocument
from gridedge.dashboard.grid import GridSnapshot, GridUnavailable


class TwinGridView:
    def __init__(
        self,
        twin_url: str,
        *,
        grid: str,
        catalog_url: str | None = None,
        admin_token: str | None = None,
        topology: TopologyDocument | None = None,
    ) -> None:
        from gridedge.twin.client import TwinClient

        self.name = grid
        self.twin = TwinClient(twin_url, timeout_s=15.0)
        self.catalog_url = catalog_url
        self.admin_token = admin_token
        self._topology = topology

    async def aclose(self) -> None:
        await self.twin.aclose()

    async def topology(self) -> TopologyDocument:
        if self.catalog_url:
            from gridedge.catalog.client import CatalogAdmin, CatalogError

            try:
                async with CatalogAdmin(self.catalog_url, self.admin_token or "") as cat:
                    self._topology = await cat.get_topology(self.name)
            except (CatalogError, httpx.HTTPError):
                if self._topology is None:
                    raise GridUnavailable(
                        f"catalog at {self.catalog_url} has no topology for grid {self.name!r}"
                    ) from None
        if self._topology is None:
            raise GridUnavailable(f"no topology for grid {self.name!r}")
        return self._topology

    async def snapshot(self) -> GridSnapshot:
        from gridedge.twin.client import TwinApiError

        try:
            st = await self.twin.status()
        except (TwinApiError, httpx.HTTPError) as exc:
            raise GridUnavailable(f"twin status: {exc}") from exc
        faults = []
        if st.fault is not None:
            faults.append(st.fault.model_dump())
        return GridSnapshot(
            energised=dict(st.energised),
            switches=dict(st.switches),
            faults=faults,
            radial=st.radial,
        )

    async def operate(self, branch_id: str, closed: bool, origin: str) -> dict[str, Any]:
        from gridedge.twin.client import TwinApiError

        try:
            actual = await self.twin.operate(branch_id, closed)
        except (TwinApiError, httpx.HTTPError) as exc:
            raise GridUnavailable(f"twin refused to operate {branch_id}: {exc}") from exc
        return {"branch_id": branch_id, "closed": actual, "origin": origin}

    async def inject_fault(
        self, branch_id: str, kind: str, position: float, resistance_ohm: float
    ) -> dict[str, Any]:
        from gridedge.twin.client import TwinApiError

        try:
            info = await self.twin.apply_fault(
                branch_id, kind=kind, fraction=position, r_f_ohm=resistance_ohm
            )
        except (TwinApiError, httpx.HTTPError) as exc:
            raise GridUnavailable(f"twin refused the fault: {exc}") from exc
        return info.model_dump()

    async def clear_faults(self) -> dict[str, Any]:
        from gridedge.twin.client import TwinApiError

        try:
            st = await self.twin.clear_fault()
        except (TwinApiError, httpx.HTTPError) as exc:
            raise GridUnavailable(f"twin refused to clear: {exc}") from exc
        return {"faulted": st.faulted}
