"""Fleet mode: many meters in one process, each with its own registration and MQTT identity."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gridedge.contracts.topics import Plane, Stream, subscription
from gridedge.node.fleet import Fleet, FleetOptions
from tests.node.helpers import Collector


async def test_fleet_of_meters_publishes_from_every_meter(
    catalog_server: Any, tmp_path: Path
) -> None:
    cat = catalog_server
    fleet = Fleet(
        FleetOptions(
            catalog_url=cat.url,
            admin_token=cat.admin_token,
            grid="testgrid",
            meters=60,
            interval_s=0.2,
            state_root=tmp_path / "fleet",
            update_period_s=5,
        )
    )
    async with Collector(
        cat.brokers.data.url, subscription(Plane.DATA, "+", Stream.TELEMETRY)
    ) as col:
        await fleet.start()
        try:
            assert fleet.stats()["meters"] == 60 and not fleet.failed
            await asyncio.sleep(1.5)
            await fleet.stop_apps()
            assert await fleet.drain(10)
            await asyncio.sleep(0.3)
            published = fleet.published()
            # each meter is its own catalog device with its own token and its own MQTT client ids
            tokens = {n.link.token for n in fleet.nodes.values()}
            client_ids = {
                p.client.client_id for n in fleet.nodes.values() for p in n.planes.values()
            }
        finally:
            await fleet.stop()
    assert len(tokens) == 60 and len(client_ids) == 120
    senders = {b["device_id"] for _, _, b in col.items}
    assert senders == set(fleet.ids)
    assert len(col.items) == published  # none lost
    per_meter: dict[str, list[int]] = {}
    for _, _, b in col.items:
        per_meter.setdefault(b["device_id"], []).append(b["seq"])
    assert all(seqs == list(range(len(seqs))) for seqs in per_meter.values())
    devices = await cat.admin.list_devices()
    assert sum(1 for d in devices.devices if d.location.grid == "testgrid") == 60


async def test_fleet_cli_runs_and_reports(catalog_server: Any, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from gridedge.node import fleet_cli

    stats = tmp_path / "stats.json"
    args = [
        "run",
        "--grid",
        "cligrid",
        "--meters",
        "8",
        "--interval",
        "0.2",
        "--duration",
        "1.5",
        "--catalog",
        catalog_server.url,
        "--admin-token",
        catalog_server.admin_token,
        "--state-dir",
        str(tmp_path / "fleet"),
        "--stats-json",
        str(stats),
    ]
    result = await asyncio.to_thread(CliRunner().invoke, fleet_cli.app, args)
    assert result.exit_code == 0, result.output
    s = json.loads(stats.read_text())
    assert s["meters"] == 8 and s["failed"] == 0 and s["dropped"] == 0
    assert s["published"] >= 8 * 4  # 1.5 s at 0.2 s per reading, per meter, minus start-up
