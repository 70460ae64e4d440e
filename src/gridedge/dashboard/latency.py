"""IEC 61850-5 transfer-time classes (seed 001 Table III) and where a measured latency falls.

The class is the *tightest* one whose limit the latency still meets: 0.4 ms meets TT6 (3 ms),
0.6 s meets only TT1 (1 s), anything above 1 s is TT0 ("> 1000 ms": files, event logs, SCADA)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import median
from typing import Any

# (class, limit in ms, typical services) from the tightest to the loosest
TRANSFER_CLASSES: tuple[tuple[str, float, str], ...] = (
    ("TT6", 3.0, "trips, blockings"),
    ("TT5", 10.0, "releases, status changes"),
    ("TT4", 20.0, "fast automation interactions"),
    ("TT3", 100.0, "slow automation interactions"),
    ("TT2", 500.0, "operator commands"),
    ("TT1", 1000.0, "events, alarms"),
)


def transfer_class(latency_ms: float) -> str:
    if latency_ms < 0:
        raise ValueError("latency_ms must be >= 0")
    for name, limit, _ in TRANSFER_CLASSES:
        if latency_ms <= limit:
            return name
    return "TT0"


@dataclass
class LatencyTracker:
    """Recent latencies per path (e.g. "telemetry", "command round trip", "FLISR restoration"),
    kept bounded so a long demo does not grow memory."""

    window: int = 500

    def __post_init__(self) -> None:
        self._samples: dict[str, deque[float]] = {}

    def add(self, path: str, latency_ms: float) -> None:
        if latency_ms < 0:  # clocks of two machines disagree: not a latency we can classify
            return
        self._samples.setdefault(path, deque(maxlen=self.window)).append(latency_ms)

    def summary(self) -> list[dict[str, Any]]:
        out = []
        for path, samples in sorted(self._samples.items()):
            if not samples:
                continue
            ordered = sorted(samples)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            worst = ordered[-1]
            out.append(
                {
                    "path": path,
                    "count": len(ordered),
                    "median_ms": median(ordered),
                    "p95_ms": p95,
                    "max_ms": worst,
                    "class_median": transfer_class(median(ordered)),
                    "class_max": transfer_class(worst),
                }
            )
        return out
