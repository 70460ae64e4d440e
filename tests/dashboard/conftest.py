"""A real grid behind the dashboard: the twin's network interface (turin-2feeder), the catalog
with the grid's meters provisioned, the embedded brokers, and the dashboard with its historian."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridedge.broker.mosquitto import free_port
from gridedge.dashboard.service import DashboardOptions, DashboardService
from gridedge.dashboard.twin_view import TwinGridView
from gridedge.historian.store import sqlite_url

GRID = "turin-2feeder"


@pytest.fixture
async def grid_stack(catalog_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    from gridedge.twin.model import Twin
    from gridedge.twin.server import TwinServer, TwinService, make_clock

    twin = Twin.from_name(GRID, clock=make_clock("wall"))  # protection trips in real time
    doc = twin.topology_document()
    await catalog_server.admin.put_topology(doc)
    for p in doc.placements:  # the grid's meters, provisioned (so the catalog has heard from them)
        await catalog_server.provisioned(
            p.device_id,
            "meter",
            location={"grid": GRID, "node_id": p.node_id, "branch_id": p.branch_id},
            update_period_s=600,
        )
    twin_server = TwinServer(TwinService(twin), port=free_port()).start()
    opts = DashboardOptions(
        data_broker=catalog_server.brokers.data.url,
        mgmt_broker=catalog_server.brokers.mgmt.url,
        db_url=sqlite_url(tmp_path / "historian.db"),
        admin_token=catalog_server.admin_token,
        port=free_port(),
        catalog_url=catalog_server.url,
        grid=GRID,
        twin_url=twin_server.url,
        flush_interval_s=0.2,
    )
    svc = await DashboardService(
        opts,
        TwinGridView(
            twin_server.url,
            grid=GRID,
            catalog_url=catalog_server.url,
            admin_token=catalog_server.admin_token,
        ),
    ).start()
    try:
        yield svc, twin_server, doc
    finally:
        await svc.stop()
        twin_server.stop()
