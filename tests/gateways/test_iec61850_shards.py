"""Shard bookkeeping against real pyiec61850 servers: joins never touch running servers, a
deleted meter's server stops once empty, and the process-global control-subscriber registry
(REFERENCE §5.4 pitfall 4) is released on stop and guarded against duplicates."""

from __future__ import annotations

import concurrent.futures

import pytest

from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.mms import Shard, ShardStartError
from gridedge.gateways.iec61850.shards import ShardManager
from tests.gateways.conftest import mms_connect


def _never(*_: object) -> concurrent.futures.Future[bool | None]:
    f: concurrent.futures.Future[bool | None] = concurrent.futures.Future()
    f.set_result(None)
    return f


def test_control_subscribers_are_released_and_duplicates_refused() -> None:
    a = Shard(0, [m.MeterSpec("DUP1")], m.CtlModel.SBO_ENHANCED, _never)
    a.start(None)
    b = Shard(1, [m.MeterSpec("DUP1")], m.CtlModel.SBO_ENHANCED, _never)
    with pytest.raises(ShardStartError, match=r"DUP1MTR/CSWI1\.Pos already registered"):
        b.start(None)
    b.stop()
    a.stop()
    c = Shard(2, [m.MeterSpec("DUP1")], m.CtlModel.SBO_ENHANCED, _never)
    assert c.start(None) > 0  # the same LD can be served again once the old server stopped
    c.stop()


async def test_joins_start_new_servers_and_leave_running_ones_alone() -> None:
    mgr = ShardManager(_never, meters_per_shard=3)
    try:
        first = mgr.add([m.MeterSpec(f"J{i}") for i in range(5)])
        assert [len(s.nodes) for s in first] == [3, 2]
        conn = await mms_connect(f"127.0.0.1:{first[0].port}")
        assert sorted(await conn.get_server_directory()) == ["J0MTR", "J1MTR", "J2MTR"]
        later = mgr.add([m.MeterSpec("J5"), m.MeterSpec("J0")])  # J0 is already served
        assert len(later) == 1 and list(later[0].nodes) == ["J5"]
        assert await conn.get_server_directory()  # the first association is still up
        assert mgr.endpoints()["J5"].port == later[0].port != first[0].port

        mgr.retire("J5")  # its server hosts no live meter any more: stopped
        assert "J5" not in mgr and later[0].server is None
        mgr.retire("J1")  # the others on its server keep running
        assert first[0].server is not None and "J1" not in mgr
        assert mgr.add([m.MeterSpec("J1")]) == []  # its LD still lives in the running server
        assert mgr.add([m.MeterSpec("J5")])  # server gone: it can join again
    finally:
        mgr.stop()
