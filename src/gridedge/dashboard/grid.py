"""What the dashboard needs from the grid: its topology, which nodes are energised, the switch
states, and the operations an operator may perform (operate a switch; for the demo, inject and
clear a fault). Implementations sit in front of the twin's network interface, or — against a real
grid — in front of the catalog and the data plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gridedge.contracts.catalog import TopologyDocument


class GridUnavailable(RuntimeError):
    """The grid's interface could not be reached or refused; the text says which and why."""


@dataclass
class GridSnapshot:
    energised: dict[str, bool] = field(default_factory=dict)  # node id -> energised
    switches: dict[str, bool] = field(default_factory=dict)  # branch id -> closed
    faults: list[dict[str, Any]] = field(default_factory=list)  # active faults (branch, kind, …)
    radial: bool | None = None
    version: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "energised": self.energised,
            "switches": self.switches,
            "faults": self.faults,
            "radial": self.radial,
            "version": self.version,
        }


class GridView(Protocol):
    name: str

    async def topology(self) -> TopologyDocument: ...

    async def snapshot(self) -> GridSnapshot: ...

    async def operate(self, branch_id: str, closed: bool, origin: str) -> dict[str, Any]: ...

    async def inject_fault(
        self, branch_id: str, kind: str, position: float, resistance_ohm: float
    ) -> dict[str, Any]: ...

    async def clear_faults(self) -> dict[str, Any]: ...
