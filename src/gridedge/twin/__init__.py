"""Grid digital twin (issue 3): grids by name, power flow, faults, protection, switching.

``from gridedge.twin import Twin, Fault``; see docs/grids/README.md.

Names are resolved lazily (PEP 562): importing a light submodule such as ``gridedge.twin.state``
or ``gridedge.twin.client`` must not pull in pandapower and power-grid-model (seconds of start-up
for every CLI command and every meter node that only talks to a remote twin)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Fault": "gridedge.twin.faults",
    "GridState": "gridedge.twin.state",
    "MeasurementPoint": "gridedge.twin.state",
    "LineData": "gridedge.twin.model",
    "LoadData": "gridedge.twin.model",
    "TransformerData": "gridedge.twin.model",
    "Twin": "gridedge.twin.model",
    "TwinEvent": "gridedge.twin.model",
    "LoadflowNotConverged": "gridedge.twin.errors",
    "TwinError": "gridedge.twin.errors",
    "UnknownGridError": "gridedge.twin.errors",
}

__all__ = [
    "Fault",
    "GridState",
    "LineData",
    "LoadData",
    "LoadflowNotConverged",
    "MeasurementPoint",
    "TransformerData",
    "Twin",
    "TwinError",
    "TwinEvent",
    "UnknownGridError",
]

if TYPE_CHECKING:
    from gridedge.twin.errors import LoadflowNotConverged, TwinError, UnknownGridError
    from gridedge.twin.faults import Fault
    from gridedge.twin.model import LineData, LoadData, TransformerData, Twin, TwinEvent
    from gridedge.twin.state import GridState, MeasurementPoint


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridedge.twin' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
