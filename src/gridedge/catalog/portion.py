"""The part of the grid a device watches (seed 001 §III-A: "the topology of the portion of the grid
that it has to monitor").

A portion is everything reachable from the device's node over *closed* branches without passing
through a ``source`` node: the feeder as currently switched. Sources are included as end points
(the device must know where its supply comes from) but not expanded, otherwise every feeder of a
substation would be one portion. Open branches touching the portion are included as its boundary
(normally-open ties matter to reconfiguration). The digest covers the content but not the topology
version, so storing a new topology only changes the portions it really changes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field

from gridedge.contracts.catalog import GridPortion, TopologyBranch, TopologyDocument


@dataclass
class TopologyIndex:
    """Adjacency of one topology version, built once and reused for every device on the grid."""

    doc: TopologyDocument
    kinds: dict[str, str] = field(default_factory=dict)
    adjacency: dict[str, list[TopologyBranch]] = field(default_factory=dict)
    placements: dict[str, str] = field(default_factory=dict)  # device id -> node id
    _cache: dict[str, GridPortion] = field(default_factory=dict)
    _feeders: dict[str, tuple[list[str], list[TopologyBranch], dict[str, str], str]] = field(
        default_factory=dict
    )

    @classmethod
    def build(cls, doc: TopologyDocument) -> TopologyIndex:
        adjacency: dict[str, list[TopologyBranch]] = defaultdict(list)
        for b in doc.branches:
            adjacency[b.from_node].append(b)
            adjacency[b.to_node].append(b)
        return cls(
            doc=doc,
            kinds={n.id: n.kind for n in doc.nodes},
            adjacency=dict(adjacency),
            placements={p.device_id: p.node_id for p in doc.placements},
        )

    def has_node(self, node_id: str) -> bool:
        return node_id in self.kinds

    def portion(self, node_id: str) -> GridPortion:
        cached = self._cache.get(node_id)
        if cached is None:
            nodes, branches, devices, content = self._feeder(node_id)
            digest = hashlib.sha256(f"{content}|{node_id}".encode()).hexdigest()
            cached = self._cache[node_id] = GridPortion(
                grid=self.doc.grid,
                topology_version=self.doc.version,
                node_id=node_id,
                nodes=nodes,
                branches=branches,
                devices=devices,
                digest=digest,
            )
        return cached

    def _feeder(self, start: str) -> tuple[list[str], list[TopologyBranch], dict[str, str], str]:
        """The reached set of ``start`` and its content digest. Every non-source node of a
        feeder reaches the same set, so one search serves all of them."""
        hit = self._feeders.get(start)
        if hit is not None:
            return hit
        reached = {start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node != start and self.kinds.get(node) == "source":
                continue  # a source ends the feeder
            for b in self.adjacency.get(node, ()):
                if not b.closed:
                    continue
                other = b.to_node if b.from_node == node else b.from_node
                if other not in reached:
                    reached.add(other)
                    queue.append(other)
        seen: set[str] = set()
        branches = []
        for node in reached:
            for b in self.adjacency.get(node, ()):
                if b.id in seen:
                    continue
                if (b.closed and b.from_node in reached and b.to_node in reached) or not b.closed:
                    seen.add(b.id)
                    branches.append(b)
        branches.sort(key=lambda b: b.id)
        nodes = sorted(reached)
        devices = {d: n for d, n in sorted(self.placements.items()) if n in reached}
        content = {
            "grid": self.doc.grid,
            "nodes": nodes,
            "branches": [b.model_dump(mode="json") for b in branches],
            "devices": devices,
        }
        digest = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        result = (nodes, branches, devices, digest)
        if self.kinds.get(start) == "source":
            self._feeders[start] = result
        else:
            for node in reached:
                if self.kinds.get(node) != "source":
                    self._feeders[node] = result
        return result
