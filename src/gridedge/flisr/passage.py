"""Fault passage at the feeder's switches: which side of each switch the fault is on.

The first link of the FLISR chain (REFERENCE §2.3): the faulted zone lies between the last
switch that carried fault current and the first that did not. The field unit of a remotely
controlled switch measures the current through it (in Italian secondary substations the
RGDAT beside the switch does exactly this); its fault record says whether the fault current
went through. The locator then searches only the sections the switches agree on, which settles
the cases the sag depths leave open — a high-resistance fault a few metres either side of a
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


def consistent_sections(
    switches_on_path: Mapping[str, frozenset[str]], passed: Mapping[str, bool]
) -> set[str]:
    """The sections the switches' verdicts agree with best: a fault on a section drives its
    current through exactly the switches between it and the head. The sections with the
    fewest disagreements are kept, so one indicator that failed (or a switch the model does
    not know) widens the search instead of emptying it."""
    known = {w: p for w, p in passed.items() if any(w in s for s in switches_on_path.values())}
    if not known:
        return set(switches_on_path)
    misses = {
        sid: sum(p != (w in path) for w, p in known.items())
        for sid, path in switches_on_path.items()
    }
    fewest = min(misses.values(), default=0)
    return {sid for sid, m in misses.items() if m == fewest}


__all__ = ["PASSED_FRACTION", "consistent_sections", "current_change", "fault_passed"]
