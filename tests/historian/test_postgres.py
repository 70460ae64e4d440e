"""The same store on PostgreSQL (Debian's server, started by the catalog's fixture)."""

from __future__ import annotations

import json

import pytest

from gridedge.historian.store import HistorianStore
from tests.catalog.conftest import postgres_url  # noqa: F401  (session fixture: one server)

pytestmark = pytest.mark.postgres


def test_batches_upserts_and_queries_on_postgresql(postgres_url: str) -> None:  # noqa: F811
    import psycopg

    # a fresh database of its own on the shared server
    admin = postgres_url.replace("+psycopg", "") + "/catalog_base"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS historian_test")
        conn.execute("CREATE DATABASE historian_test")
    store = HistorianStore(f"{postgres_url}/historian_test")
    try:
        base = 1_800_000_000_000_000_000
        rows = []
        for i in range(600):
            row = {c: None for c in ("voltage_v_a", "voltage_v_b", "voltage_v_c")}
            row.update(
                {
                    "device_id": "PG1",
                    "ts_ns": base + i * 10**9,
                    "received_ns": base,
                    "seq": i,
                    "relay_closed": None,
                    "voltage_v_a": float(i),
                }
            )
            rows.append(row)
        ev = {
            "ts_ns": base,
            "received_ns": base,
            "device_id": "flisr",
            "plane": "data",
            "stream": "record",
            "kind": "x",
            "payload": json.dumps({"outcome": "restored"}),
        }
        st1 = {"device_id": "PG1", "status": "disconnected", "since_ns": base, "last_seen_ns": None}
        st2 = {
            "device_id": "PG1",
            "status": "connected",
            "since_ns": base + 1,
            "last_seen_ns": base + 1,
        }
        store.write_batch(rows, [ev], [st1])
        store.write_batch([], [], [st2])  # a later status replaces the earlier one
        assert store.latest_readings()["PG1"]["seq"] == 599
        down = store.series("PG1", "voltage_v_a", max_points=60)
        assert down["downsampled"] and 50 <= len(down["points"]) <= 60
        assert down["points"][0][1] == pytest.approx(4.5, abs=1.5)
        assert store.last_flisr_record() == {"outcome": "restored"}
        assert store.device_statuses()["PG1"]["status"] == "connected"
    finally:
        store.close()
