"""Fault description and the fault-resistance convention of the twin.

Convention (fixed once, REFERENCE §1.5 item 4): ``r_f_ohm``/``x_f_ohm`` is power-grid-model's
fault impedance Z_f, i.e.

- ``1ph``   : phase -> ground through Z_f;
- ``2ph``   : between the two phases through Z_f, counted ONCE (pandapower would put Z_f in each
  phase, a loop of 2 Z_f);
- ``2ph-g`` : the two phases joined solidly, the joint to ground through Z_f (tested against
  OpenDSS built that way; NOT OpenDSS's ``phases=2`` fault, which puts Z_f in each phase);
- ``3ph``   : each phase -> common star point through Z_f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from power_grid_model import FaultPhase, FaultType

from gridedge.twin.errors import TwinError

FaultKind = Literal["1ph", "2ph", "2ph-g", "3ph"]

FAULT_TYPE: dict[str, FaultType] = {
    "1ph": FaultType.single_phase_to_ground,
    "2ph": FaultType.two_phase,
    "2ph-g": FaultType.two_phase_to_ground,
    "3ph": FaultType.three_phase,
}
DEFAULT_PHASES = {"1ph": "a", "2ph": "bc", "2ph-g": "bc", "3ph": "abc"}
ALLOWED_PHASES = {
    "1ph": ("a", "b", "c"),
    "2ph": ("ab", "bc", "ac"),
    "2ph-g": ("ab", "bc", "ac"),
    "3ph": ("abc",),
}
_PHASE_ALIASES = {"ba": "ab", "cb": "bc", "ca": "ac"}


@dataclass(frozen=True)
class Fault:
    """A fault ``fraction`` of the way along ``branch_id`` (0 = its from-node, 1 = its to-node).

    Transformers and switches can only be faulted at their terminals (fraction 0 or 1)."""

    branch_id: str
    fraction: float = 0.5
    kind: FaultKind = "1ph"
    phases: str | None = None
    r_f_ohm: float = 0.0
    x_f_ohm: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.branch_id, str) or not self.branch_id:
            raise TwinError("branch_id", "must be a non-empty branch id")
        if self.kind not in FAULT_TYPE:
            raise TwinError("kind", f"{self.kind!r} is not one of {sorted(FAULT_TYPE)}")
        try:
            frac = float(self.fraction)
        except (TypeError, ValueError):
            raise TwinError("fraction", f"{self.fraction!r} is not a number") from None
        if not math.isfinite(frac) or not 0.0 <= frac <= 1.0:
            raise TwinError("fraction", f"{self.fraction!r} is outside 0..1")
        for name in ("r_f_ohm", "x_f_ohm"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise TwinError(name, f"{v!r} is not a finite number")
        if self.r_f_ohm < 0:
            raise TwinError("r_f_ohm", f"fault resistance {self.r_f_ohm} is negative")
        ph = self.phases if self.phases is not None else DEFAULT_PHASES[self.kind]
        ph = _PHASE_ALIASES.get(str(ph).lower(), str(ph).lower())
        if ph not in ALLOWED_PHASES[self.kind]:
            raise TwinError(
                "phases",
                f"{self.phases!r} is not valid for a {self.kind} fault "
                f"(use one of {ALLOWED_PHASES[self.kind]})",
            )
        object.__setattr__(self, "phases", ph)
        object.__setattr__(self, "fraction", frac)

    @property
    def fault_type(self) -> FaultType:
        return FAULT_TYPE[self.kind]

    @property
    def fault_phase(self) -> FaultPhase:
        return FaultPhase[self.phases]  # type: ignore[index]

    @property
    def phase_index(self) -> list[int]:
        return ["abc".index(p) for p in str(self.phases)]
