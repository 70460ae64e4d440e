"""Grid portions: the feeder as switched, sources as end points, open branches as boundary."""

from __future__ import annotations

from gridedge.catalog.portion import TopologyIndex
from tests.catalog.helpers import two_feeders


def test_feeder_as_switched() -> None:
    idx = TopologyIndex.build(two_feeders())
    a = idx.portion("A3")
    assert a.nodes == ["A1", "A2", "A3", "A4", "S"]
    assert [b.id for b in a.branches] == ["CB-A", "L-A12", "L-A34", "SW-A", "TIE"]
    assert next(b for b in a.branches if b.id == "TIE").closed is False  # boundary
    assert idx.portion("B2").nodes == ["B1", "B2", "S"]
    # the source itself sees every feeder it supplies
    assert idx.portion("S").nodes == ["A1", "A2", "A3", "A4", "B1", "B2", "S"]


def test_switching_changes_exactly_the_portions_it_touches() -> None:
    before = TopologyIndex.build(two_feeders())
    opened = TopologyIndex.build(two_feeders(sw_a_closed=False).model_copy(update={"version": 2}))
    assert opened.portion("A1").nodes == ["A1", "A2", "S"]
    assert opened.portion("A4").nodes == ["A3", "A4"]  # de-energised island
    assert opened.portion("A1").digest != before.portion("A1").digest
    # feeder B did not change: same digest although the topology version did
    assert opened.portion("B1").digest == before.portion("B1").digest
    assert opened.portion("B1").topology_version == 2
    tied = TopologyIndex.build(two_feeders(sw_a_closed=False, tie_closed=True))
    assert tied.portion("B1").nodes == ["A3", "A4", "B1", "B2", "S"]
    assert tied.portion("A2").digest == opened.portion("A2").digest


def test_each_node_has_its_own_digest_within_a_feeder() -> None:
    idx = TopologyIndex.build(two_feeders())
    assert idx.portion("A1").nodes == idx.portion("A4").nodes
    assert idx.portion("A1").digest != idx.portion("A4").digest
