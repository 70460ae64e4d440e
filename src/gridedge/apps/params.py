"""Parameter checking shared by the built-in apps.

Parameters come from the catalog (an operator typed them); a wrong one must be refused with a
sentence naming the parameter and the reason, not turn into a TypeError three calls later. A
bad ``on_params`` keeps the app on its previous, valid parameters.
"""

from __future__ import annotations

import math
from typing import Any


class ParamError(ValueError):
    """A parameter is missing or out of range; the message names it."""


def number(
    params: dict[str, Any],
    name: str,
    default: float | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    app: str = "",
) -> float | None:
    where = f"{app} parameter {name!r}" if app else f"parameter {name!r}"
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"{where} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ParamError(f"{where} must be finite, got {value!r}")
    if gt is not None and not v > gt:
        raise ParamError(f"{where} must be > {gt:g}, got {v:g}")
    if ge is not None and not v >= ge:
        raise ParamError(f"{where} must be >= {ge:g}, got {v:g}")
    if le is not None and not v <= le:
        raise ParamError(f"{where} must be <= {le:g}, got {v:g}")
    return v


def integer(params: dict[str, Any], name: str, default: int, *, ge: int = 0, app: str = "") -> int:
    where = f"{app} parameter {name!r}" if app else f"parameter {name!r}"
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ParamError(f"{where} must be an integer, got {value!r}")
    if value < ge:
        raise ParamError(f"{where} must be >= {ge}, got {value}")
    return int(value)


def unknown(params: dict[str, Any], known: set[str], app: str) -> None:
    extra = sorted(set(params) - known)
    if extra:
        raise ParamError(f"{app}: unknown parameter(s) {extra}; known: {sorted(known)}")
