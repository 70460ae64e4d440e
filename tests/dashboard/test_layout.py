"""Single-line diagram positions."""

from __future__ import annotations

from gridedge.contracts.catalog import TopologyBranch, TopologyDocument, TopologyNode
from gridedge.dashboard.layout import layout


def _doc(with_xy: bool) -> TopologyDocument:
    xy = {"S1": (0, 0), "A": (1, 0), "B": (2, 0), "S2": (0, -2), "C": (1, -2), "D": (2, -2)}
    nodes = [
        TopologyNode(
            id=n,
            kind="source" if n.startswith("S") else "bus",
            x=xy[n][0] if with_xy else None,
            y=xy[n][1] if with_xy else None,
        )
        for n in xy
    ]
    branches = [
        TopologyBranch(id="L1", from_node="S1", to_node="A", kind="cable"),
        TopologyBranch(id="L2", from_node="A", to_node="B", kind="cable"),
        TopologyBranch(id="L3", from_node="S2", to_node="C", kind="cable"),
        TopologyBranch(id="L4", from_node="C", to_node="D", kind="cable"),
        TopologyBranch(
            id="TIE",
            from_node="B",
            to_node="D",
            kind="tie",
            closed=False,
            normally_open=True,
            switchable=True,
        ),
    ]
    return TopologyDocument(grid="t", nodes=nodes, branches=branches)


def test_given_coordinates_are_kept() -> None:
    pos = layout(_doc(True))
    assert pos["B"] == (2.0, 0.0) and pos["D"] == (2.0, -2.0)


def test_each_source_roots_its_own_row_and_the_tie_does_not_merge_them() -> None:
    pos = layout(_doc(False))
    assert [pos[n][0] for n in ("S1", "A", "B")] == [0.0, 1.0, 2.0]  # depth from the source
    assert pos["S1"][1] == pos["A"][1] == pos["B"][1]  # the feeder runs straight
    assert pos["S2"][1] == pos["C"][1] == pos["D"][1] != pos["S1"][1]  # second feeder, own row
