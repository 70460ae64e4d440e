"""What a solved grid looks like to everyone outside the solver: phasors per phase at every node
and at both ends of every branch, and which nodes are energised.

This is the hand-over between the grid computation (power flow, faults) and the measurement side
(telemetry, sampled windows, the twin's network interface): neither needs to know the other."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GridState:
    """Phasors in SI: node voltages line-to-ground (V), branch currents (A) flowing from the
    branch's from-node into the branch (``i_from``) and from its to-node into the branch (``i_to``).
    Arrays are complex, shaped (n, 3) in phase order a, b, c."""

    node_ids: tuple[str, ...]
    u: np.ndarray
    branch_ids: tuple[str, ...]
    i_from: np.ndarray
    i_to: np.ndarray
    energised: np.ndarray  # (n_nodes,) bool
    frequency_hz: float = 50.0
    time_ns: int = 0
    faulted: bool = False
    # During a fault: current into the fault per phase (A) and the voltage at the fault point
    # (V line-to-ground), complex (3,). Ground truth for fault-location accuracy figures.
    fault_current: np.ndarray | None = None
    fault_voltage: np.ndarray | None = None
    _node_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _branch_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A producer may pass shared, already-filled index maps (the twin does: thousands of
        # states per second in a fault batch); they are only read.
        if self._node_index and self._branch_index:
            return
        self._node_index.update({n: i for i, n in enumerate(self.node_ids)})
        self._branch_index.update({b: i for i, b in enumerate(self.branch_ids)})

    def node_voltage(self, node_id: str) -> np.ndarray:
        return self.u[self._node_index[node_id]]

    def branch_current(self, branch_id: str, end: str = "from") -> np.ndarray:
        i = self._branch_index[branch_id]
        return self.i_from[i] if end == "from" else self.i_to[i]

    def is_energised(self, node_id: str) -> bool:
        return bool(self.energised[self._node_index[node_id]])


@dataclass(frozen=True)
class MeasurementPoint:
    """Where a meter sits: the node whose voltages it sees and the branch end whose currents it
    sees, with its instrument transformers (ratio 1 for a direct-connected LV meter)."""

    id: str
    node_id: str
    branch_id: str | None = None
    end: str = "from"  # which end of branch_id the meter is at
    vt_ratio: float = 1.0
    ct_ratio: float = 1.0
    phases: tuple[str, ...] = ("a", "b", "c")
    description: str = ""
