"""Fault passage at the feeder's switches: which side of each switch the fault is on.

The first link of the FLISR chain (REFERENCE §2.3): the faulted zone lies between the last
switch that carried fault current and the first that did not. The field unit of a remotely
controlled switch measures the current through it (in Italian secondary substations the
RGDAT beside the switch does exactly this); its fault record says whether the fault current
went through. The locator then searches the sections the switches agree on (and, at a cost, those
one failed indicator away), which settles the cases the sag depths leave open — a high-resistance fault a few metres either side of a
substation, where both sides fit the meters within their noise.

Why the head's own current change is the yardstick: a switch between the head and the fault
carries the fault current, so its change from before to during the fault is about the head's;
a switch beyond the fault only sees its downstream loads react to the sag. Half the head's
change separates the two for any fault resistance the head can see at all, with no setting to
tune per feeder.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PASSED_FRACTION = 0.5


def current_change(i_pre: np.ndarray, i_during: np.ndarray) -> float:
    """The largest per-phase change of a current from before to during the fault (A): of the
    phasors when both are phasors (one window, one clock: the change is a vector), of the RMS
    magnitudes otherwise (an RMS-only unit)."""
    i_pre, i_during = np.asarray(i_pre), np.asarray(i_during)
    if i_pre.shape != (3,) or i_during.shape != (3,):
        raise ValueError(f"currents must have three phases, got {i_pre.shape} and {i_during.shape}")
    return float(np.max(np.abs(i_during - i_pre)))


def fault_passed(
    switch_change_a: float, head_change_a: float, fraction: float = PASSED_FRACTION
) -> bool:
    """Whether the fault current went through a switch whose current changed by
    ``switch_change_a`` while the feeder head's changed by ``head_change_a``."""
    if head_change_a <= 0:
        raise ValueError(f"head_change_a: the head saw no current change ({head_change_a} A)")
    return switch_change_a > fraction * head_change_a


# what one disagreeing verdict costs a section, in the fit's units (χ², i.e. −2 ln of a
# likelihood ratio): an indicator that fails one fault in a hundred, −2 ln(0.01/0.99)
MISS_PENALTY = 9.2


def section_penalties(
    switches_on_path: Mapping[str, frozenset[str]],
    passed: Mapping[str, bool],
    miss_penalty: float = MISS_PENALTY,
) -> dict[str, float]:
    """The sections worth searching and what the verdicts add to each one's cost: a fault on a
    section drives its current through exactly the switches between it and the head. The
    sections the verdicts agree with best are kept at no cost, those with one disagreement more
    at ``miss_penalty`` (an indicator may have failed: with one switch per substation a single
    wrong verdict moves the best agreement a whole zone away, and the meters' sags must be able
    to pull it back); the rest are not searched. Verdicts of switches on no section's path (the
    model does not know them, or they stand beyond the last cable) are ignored."""
    known = {w: p for w, p in passed.items() if any(w in s for s in switches_on_path.values())}
    if not known:
        return {sid: 0.0 for sid in switches_on_path}
    misses = {
        sid: sum(p != (w in path) for w, p in known.items())
        for sid, path in switches_on_path.items()
    }
    fewest = min(misses.values(), default=0)
    return {sid: miss_penalty * (m - fewest) for sid, m in misses.items() if m <= fewest + 1}


__all__ = [
    "MISS_PENALTY",
    "PASSED_FRACTION",
    "current_change",
    "fault_passed",
    "section_penalties",
]
