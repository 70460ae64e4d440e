"""One BLAS thread for FLISR's small dense matrices.

The feeder model inverts a few 100×100 matrices and multiplies thousands of 3×3 blocks. With a
multi-threaded OpenBLAS on a loaded 2-core machine each such call pays thread wake-ups and
contention: measured 170 ms for one 108×108 inverse against 1.8 ms single-threaded. The limit
is scoped (a context manager), so the rest of the process keeps its BLAS threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():  # type: ignore[no-untyped-def]
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - declared dependency
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    ctl = _controller()
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


def warm_up() -> None:
    """Find the process's BLAS libraries now (threadpoolctl scans every loaded shared library:
    25–140 ms in a process that has loaded pandapower and power-grid-model), so that the first
    fault after a node starts does not pay it. Callers: the fault-location app at topology time,
    and the benchmark before its timed runs, as the app would have done."""
    _controller()
