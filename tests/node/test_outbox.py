"""The outbox stores: bounds, drop accounting, order, persistence across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridedge.node.outbox import MemoryOutbox, SqliteOutbox


def fill(store, n: int) -> None:  # type: ignore[no-untyped-def]
    for k in range(n):
        store.put("t", f"{k}".encode(), 1, False)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_bound_drops_oldest_and_counts(tmp_path: Path, kind: str) -> None:
    store = (
        SqliteOutbox(tmp_path / "o.sqlite", max_messages=10)
        if kind == "sqlite"
        else MemoryOutbox(max_messages=10)
    )
    fill(store, 25)
    assert store.count() == 10 and store.dropped == 15
    rows = store.after(0, 100)
    assert [r.payload for r in rows] == [f"{k}".encode() for k in range(15, 25)]
    # paging from a cursor keeps order
    assert [r.payload for r in store.after(rows[4].id, 3)] == [b"20", b"21", b"22"]
    store.delete([rows[0].id, rows[2].id])
    assert store.count() == 8
    assert rows[0].id not in [r.id for r in store.after(0, 100)]


def test_byte_bound(tmp_path: Path) -> None:
    store = SqliteOutbox(tmp_path / "o.sqlite", max_messages=1000, max_bytes=100)
    for _ in range(10):
        store.put("t", b"x" * 30, 1, False)
    assert store.count() == 3 and store.dropped == 7
    store.put("t", b"y" * 500, 1, False)  # larger than the whole bound: refused and counted
    assert store.dropped == 8 and store.count() == 3


def test_sqlite_outbox_survives_restart(tmp_path: Path) -> None:
    store = SqliteOutbox(tmp_path / "o.sqlite", max_messages=5)
    fill(store, 8)
    store.close()
    again = SqliteOutbox(tmp_path / "o.sqlite", max_messages=5)
    assert again.count() == 5 and again.dropped == 3
    assert [r.payload for r in again.after(0, 10)] == [b"3", b"4", b"5", b"6", b"7"]
    again.put("t", b"8", 1, False)
    assert [r.payload for r in again.after(0, 10)][-1] == b"8" and again.dropped == 4


def test_bad_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        SqliteOutbox(tmp_path / "o.sqlite", max_messages=0)
