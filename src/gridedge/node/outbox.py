"""Store-and-forward: every app publication goes through a bounded queue that survives broker
outages (and, with the SQLite store, node restarts), and is emptied in order once the broker is
back.

A row leaves the queue only when the broker has acknowledged it (PUBACK for QoS 1): gmqtt has no
in-flight window and forgets in-flight messages when a clean session reconnects (REFERENCE.md
§3.2), so the pump keeps its own window (back-pressure) and learns of acknowledgements through a
gmqtt storage hook (:class:`AckTracker`). When the bound is reached the *oldest* rows are dropped
— fresh readings matter more than stale ones — and every drop is counted and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gmqtt.storage import PersistentStorage

from gridedge.broker.client import MqttClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Row:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class OutboxStore(Protocol):
    dropped: int

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> int: ...
    def after(self, last_id: int, limit: int) -> list[Row]: ...
    def delete(self, ids: list[int]) -> None: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


class SqliteOutbox:
    """The node's outbox: one SQLite file, bounded by rows and bytes."""

    def __init__(
        self, path: Path, *, max_messages: int = 100_000, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("outbox bounds max_messages and max_bytes must be >= 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
            " retain INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
        row = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0
        self._count, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)),0) FROM outbox"
        ).fetchone()

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        if len(payload) > self.max_bytes:
            self._count_drop(1)
            return 0
        cur = self._db.execute(
            "INSERT INTO outbox (topic, payload, qos, retain) VALUES (?,?,?,?)",
            (topic, payload, qos, int(retain)),
        )
        self._count += 1
        self._bytes += len(payload)
        if self._count > self.max_messages or self._bytes > self.max_bytes:
            self._trim()
        return int(cur.lastrowid or 0)

    def _trim(self) -> None:
        dropped = 0
        while self._count > self.max_messages or self._bytes > self.max_bytes:
            over = max(self._count - self.max_messages, 1)
            rows = self._db.execute(
                "SELECT id, LENGTH(payload) FROM outbox ORDER BY id LIMIT ?", (over,)
            ).fetchall()
            if not rows:
                break
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
            self._count -= len(rows)
            self._bytes -= sum(r[1] for r in rows)
            dropped += len(rows)
        self._count_drop(dropped)

    def _count_drop(self, n: int) -> None:
        if n:
            self.dropped += n
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (self.dropped,),
            )

    def after(self, last_id: int, limit: int) -> list[Row]:
        return [
            Row(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            )
        ]

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        self._db.execute("BEGIN")
        size = 0
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            size += self._db.execute(
                f"SELECT COALESCE(SUM(LENGTH(payload)),0) FROM outbox WHERE id IN ({marks})", part
            ).fetchone()[0]
            n = self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part).rowcount
            self._count -= n
        self._db.execute("COMMIT")
        self._bytes -= size

    def count(self) -> int:
        return self._count

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


class MemoryOutbox:
    """Same contract in RAM (fleet mode: 10,000 SQLite files would cost more than the meters).
    Rows live in an insertion-ordered dict; ``after`` starts from a remembered position instead
    of scanning from the oldest row."""

    def __init__(self, *, max_messages: int = 10_000) -> None:
        self.max_messages = max_messages
        self.dropped = 0
        self._rows: dict[int, Row] = {}
        self._next = 1

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        rid = self._next
        self._next += 1
        self._rows[rid] = Row(rid, topic, payload, qos, retain)
        if len(self._rows) > self.max_messages:
            oldest = next(iter(self._rows))
            del self._rows[oldest]
            self.dropped += 1
        return rid

    def after(self, last_id: int, limit: int) -> list[Row]:
        out: list[Row] = []
        rows = self._rows
        # ids are consecutive integers: probe forward from last_id + 1 (deleted ids are skipped)
        rid = last_id + 1
        if rows and rid < next(iter(rows)):
            rid = next(iter(rows))
        while rid < self._next and len(out) < limit:
            row = rows.get(rid)
            if row is not None:
                out.append(row)
            rid += 1
        return out

    def delete(self, ids: list[int]) -> None:
        for rid in ids:
            self._rows.pop(rid, None)

    def count(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        self._rows.clear()


class AckTracker(PersistentStorage):
    """gmqtt's in-flight store, extended to tell the outbox which message a PUBACK acknowledged
    and which in-flight messages a clean-session reconnect threw away."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_tag: int | None = None
        self._tags: dict[int, int] = {}
        self.on_ack: Callable[[int], None] = lambda tag: None
        self.on_lost: Callable[[list[int]], None] = lambda tags: None
        # the client's packet-id allocator: gmqtt forgets a clean session's in-flight messages
        # without giving their ids back, so every broker outage would leak up to a window of
        # ids until publishing fails with OverflowError (65,535 ids)
        self.free_id: Callable[[int], None] = lambda mid: None

    def push_message(self, mid, raw_package):  # type: ignore[no-untyped-def]
        super().push_message(mid, raw_package)
        if self.pending_tag is not None:
            self._tags[mid] = self.pending_tag
            self.pending_tag = None

    def remove_message_by_mid(self, mid):  # type: ignore[no-untyped-def]
        super().remove_message_by_mid(mid)
        tag = self._tags.pop(mid, None)
        if tag is not None:
            self.on_ack(tag)

    def clear(self) -> None:
        for mid in list(self._messages):
            self.free_id(mid)
        super().clear()
        lost, self._tags = list(self._tags.values()), {}
        if lost:
            self.on_lost(lost)


def track_acks(client: MqttClient) -> AckTracker:
    """Install an AckTracker in a (not yet connected) MqttClient's gmqtt client."""
    tracker = AckTracker()
    client._client._persistent_storage = tracker  # gmqtt takes it only at construction
    tracker.free_id = client._client._package_handler.id_generator.free_id
    return tracker


class Outbox:
    """The queue plus its pump towards one MQTT client."""

    def __init__(
        self,
        store: OutboxStore,
        *,
        window: int = 256,
        on_drop: Callable[[int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.window = window
        self.on_drop = on_drop
        self.delivered = 0
        self._client: MqttClient | None = None
        self._tracker: AckTracker | None = None
        self._cursor = 0
        # id of the newest row put: while the cursor has reached it there is nothing to send, and
        # a PUBACK need not wake the pump (a task switch per reading in a fleet). Unknown until
        # the first put (a persisted backlog), so "always wake" until then.
        self._last_put = 1 << 62
        self._inflight: dict[int, None] = {}
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reported_drops = store.dropped

    # -- producer side ------------------------------------------------------------------------
    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        before = self.store.dropped
        qos = min(qos, 1)
        rid = self.store.put(topic, payload, qos, retain)
        if rid:
            self._last_put = rid
        if self.store.dropped != before and self.on_drop:
            self.on_drop(self.store.dropped - before, self.store.dropped)
        client = self._client
        if (
            rid == self._cursor + 1
            and client is not None
            and client.is_connected
            and len(self._inflight) < self.window
        ):
            # fast path: nothing queued before it, the broker is there and the window has room:
            # send now instead of waking the pump (saves a task switch per reading)
            self._send(client, Row(rid, topic, payload, qos, retain))
            return
        self._wake.set()

    def _send(self, client: MqttClient, row: Row) -> bool:
        tracker = self._tracker
        assert tracker is not None
        if row.qos > 0:
            tracker.pending_tag = row.id
            self._inflight[row.id] = None
        try:
            client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
        except Exception as exc:  # transport closed under us: retry after reconnect
            tracker.pending_tag = None
            self._inflight.pop(row.id, None)
            log.debug("outbox publish failed (%s); will retry", exc)
            return False
        tracker.pending_tag = None
        self._cursor = row.id
        if row.qos == 0:
            self._acked.append(row.id)
            self.delivered += 1
        return True

    @property
    def dropped(self) -> int:
        return self.store.dropped

    def pending(self) -> int:
        return self.store.count()

    # -- pump ---------------------------------------------------------------------------------
    def attach(self, client: MqttClient, tracker: AckTracker) -> None:
        """Send through ``client`` from now on (resending whatever it never acknowledged)."""
        self._client = client
        self._tracker = tracker
        tracker.on_ack = self._ack
        tracker.on_lost = self._lost
        self._lost(list(self._inflight))
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name="outbox-pump")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._flush_acks()

    def _ack(self, rid: int) -> None:
        if self._inflight.pop(rid, 0) is None:
            self._acked.append(rid)
            self.delivered += 1
            if len(self._acked) >= 200 or not self._inflight:
                self._flush_acks()
            if self._last_put > self._cursor and (
                len(self._inflight) < self.window // 2 or not self._inflight
            ):
                self._wake.set()

    def _lost(self, rids: list[int]) -> None:
        """In-flight messages the client dropped: rewind so they go out again, in order."""
        if not rids:
            return
        for rid in rids:
            self._inflight.pop(rid, None)
        self._cursor = min(min(rids) - 1, self._cursor)
        if self._inflight:
            self._cursor = min(self._cursor, min(self._inflight) - 1)
            # everything after the rewind point is re-sent; forget older in-flight marks
            self._inflight.clear()
        self._wake.set()

    def _flush_acks(self) -> None:
        if self._acked:
            ids, self._acked = self._acked, []
            self.store.delete(ids)

    async def _pump(self) -> None:
        # Event-driven: an idle pump costs nothing (a fleet process runs 20,000 of them); it
        # wakes on put, on PUBACK, and polls only while its client is disconnected.
        while True:
            self._wake.clear()
            client = self._client
            if client is None or not client.is_connected:
                self._flush_acks()
                await self._wait(0.2)
                continue
            room = self.window - len(self._inflight)
            if room <= 0:
                await self._wait(1.0)
                continue
            rows = self.store.after(self._cursor, room)
            if not rows:
                self._flush_acks()
                await self._wait(None)
                continue
            for row in rows:
                if not client.is_connected or not self._send(client, row):
                    break
            await asyncio.sleep(0)

    async def _wait(self, timeout: float | None) -> None:
        if timeout is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued has been acknowledged (tests, orderly shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            self._flush_acks()
            if self.store.count() == 0:
                return True
            await asyncio.sleep(0.05)
        return False
