"""Single-line picture of a grid from the twin's own model (nodes, branches, switch states)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import networkx as nx

from gridedge.twin.model import Twin

_KIND_STYLE = {
    "source": ("s", "#c0392b", 60),
    "busbar": ("s", "#e67e22", 40),
    "substation": ("o", "#2c3e50", 14),
    "load": ("v", "#27ae60", 10),
    "junction": (".", "#7f8c8d", 4),
    "bus": ("o", "#7f8c8d", 8),
}
_BRANCH_STYLE = {
    "cable": ("-", "#34495e", 0.9),
    "line": ("-", "#34495e", 0.9),
    "transformer": ("-", "#27ae60", 1.4),
    "breaker": ("-", "#c0392b", 2.5),
    "sectionalizer": ("-", "#2980b9", 2.0),
    "tie": (":", "#8e44ad", 2.0),
    "switch": ("-", "#2980b9", 1.5),
    "link": ("-", "#7f8c8d", 1.0),
}


def plot_grid(twin: Twin, out: str | Path, *, title: str | None = None) -> Path:
    doc = twin.topology_document()
    g = nx.Graph()
    for n in doc.nodes:
        g.add_node(n.id)
    for b in doc.branches:
        g.add_edge(b.from_node, b.to_node)
    pos = {n.id: (n.x, n.y) for n in doc.nodes if n.x is not None and n.y is not None}
    if len(pos) < len(doc.nodes):
        pos = nx.kamada_kawai_layout(g) if len(doc.nodes) < 400 else nx.spring_layout(g, seed=1)
    big = len(doc.nodes) > 200
    fig, ax = plt.subplots(figsize=(14, 12) if big else (12, 7))
    for b in doc.branches:
        ls, col, lw = _BRANCH_STYLE.get(b.kind, ("-", "k", 1))
        if not b.closed:
            ls, col = ":", "#8e44ad"
        (x0, y0), (x1, y1) = pos[b.from_node], pos[b.to_node]
        ax.plot([x0, x1], [y0, y1], ls, color=col, lw=lw * (0.6 if big else 1.0), zorder=1)
        if b.kind in ("breaker", "sectionalizer", "tie") and not big:
            ax.plot(
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                "s",
                mfc="white" if not b.closed else col,
                mec=col,
                ms=6,
                zorder=3,
            )
    for n in doc.nodes:
        m, col, s = _KIND_STYLE.get(n.kind, ("o", "k", 8))
        x, y = pos[n.id]
        ax.scatter([x], [y], marker=m, c=col, s=s * (0.5 if big else 1.0), zorder=2)
        if not big and n.kind in ("source", "substation", "busbar"):
            ax.annotate(n.id, (x, y), fontsize=7, xytext=(3, 4), textcoords="offset points")
    for p in doc.placements:
        if p.node_id in pos and not p.device_id.startswith("C"):
            x, y = pos[p.node_id]
            ax.annotate(
                p.device_id,
                (x, y),
                fontsize=8,
                color="#d35400",
                weight="bold",
                xytext=(-10, -14),
                textcoords="offset points",
            )
    s = twin.summary()
    ax.set_title(
        title
        or f"{twin.name}: {s['buses']} buses, {s['lines']} lines, "
        f"{s['switches']} switches, {s['feeders']} feeders (dotted = open)"
    )
    ax.set_aspect("equal", adjustable="datalim")
    ax.axis("off")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
