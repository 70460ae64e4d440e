"""Grid digital twin (issue 3): grids by name, power flow, faults, protection, switching.

``from gridedge.twin import Twin, Fault``; see docs/grids/README.md."""

from gridedge.twin.errors import LoadflowNotConverged, TwinError, UnknownGridError
from gridedge.twin.faults import Fault
from gridedge.twin.model import LineData, LoadData, TransformerData, Twin, TwinEvent
from gridedge.twin.state import GridState, MeasurementPoint

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
