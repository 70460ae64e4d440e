"""Errors the twin raises. Each names the field (or component) that is wrong and why, so a CLI,
a REST handler or a meter node can turn it into a clear 4xx answer instead of a traceback."""

from __future__ import annotations


class TwinError(ValueError):
    """Bad input to the twin. ``field`` is the argument or attribute at fault."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UnknownGridError(TwinError):
    pass


class LoadflowNotConverged(RuntimeError):
    """The power flow did not converge (overload, voltage collapse, islanded load without source).

    Raised instead of power-grid-model's own iteration error so callers need not import it."""

    def __init__(self, grid: str, detail: str) -> None:
        self.grid = grid
        self.detail = detail
        super().__init__(f"power flow on grid {grid!r} did not converge: {detail}")
