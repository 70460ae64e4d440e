"""Grids built by name. Each module exposes ``build(seed) -> GridModel``."""

from __future__ import annotations

import importlib

from gridedge.twin.errors import UnknownGridError
from gridedge.twin.grids.base import GridModel

_REGISTRY: dict[str, str] = {
    "turin-2feeder": "gridedge.twin.grids.turin_2feeder",
    "turin-urban": "gridedge.twin.grids.turin_urban",
    "cigre-mv": "gridedge.twin.grids.cigre_mv",
    "simbench-mv-urban": "gridedge.twin.grids.simbench_mv",
    "lv-residential": "gridedge.twin.grids.lv_residential",
}


def grid_names() -> list[str]:
    out = []
    for name, mod in _REGISTRY.items():
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        out.append(name)
    return out


def build(name: str, seed: int | None = None) -> GridModel:
    if name not in _REGISTRY or name not in grid_names():
        raise UnknownGridError("grid", f"{name!r} is not a known grid (known: {grid_names()})")
    return importlib.import_module(_REGISTRY[name]).build(seed=seed)
