"""The historian service: subscribes to both planes, turns each message into a row, and writes
rows in batches — a flush when ``batch_size`` rows are waiting or ``flush_interval_s`` has passed,
whichever comes first (REFERENCE.md §3.3: batching decides throughput).

Nothing is silently lost: a payload that does not parse or does not match its contract is counted
by reason and kept in the ``rejected`` table with the topic and the first bytes; a message that
arrives while the buffer is full is counted as dropped. Both counts are in :attr:`Historian.stats`.

Listeners (the dashboard) get every accepted message as it arrives, so live views do not wait for
the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gridedge.broker.client import MqttClient
from gridedge.contracts.catalog import DeviceStatusChanged
from gridedge.contracts.commands import Command, CommandResult
from gridedge.contracts.telemetry import DeviceEvent, Telemetry
from gridedge.contracts.topics import Plane, Stream, TopicError, parse_topic, subscription
from gridedge.historian.schema import PHASE_QUANTITIES, PHASES, SCALAR_QUANTITIES
from gridedge.historian.store import HistorianStore

log = logging.getLogger(__name__)

PAYLOAD_HEAD = 200

Listener = Callable[[str, dict[str, Any]], None]


@dataclass
class HistorianStats:
    received: int = 0
    readings_stored: int = 0
    events_stored: int = 0
    rejected: int = 0
    dropped: int = 0
    flushes: int = 0
    write_errors: int = 0
    last_flush_rows: int = 0
    last_flush_s: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    recent_problems: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "readings_stored": self.readings_stored,
            "events_stored": self.events_stored,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "flushes": self.flushes,
            "write_errors": self.write_errors,
            "last_flush_rows": self.last_flush_rows,
            "last_flush_s": self.last_flush_s,
            "reasons": dict(self.reasons),
            "recent_problems": list(self.recent_problems),
        }


class Rejected(ValueError):
    """A message the historian refuses; the text says which field and why."""


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "payload"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def _ns(dt: Any) -> int:
    return int(dt.timestamp() * 1_000_000_000)


def reading_row(msg: Telemetry, received_ns: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device_id": msg.device_id,
        "ts_ns": _ns(msg.ts),
        "received_ns": received_ns,
        "seq": msg.seq,
        "relay_closed": msg.relay_closed,
    }
    for q in PHASE_QUANTITIES:
        values = getattr(msg, q)
        for i, p in enumerate(PHASES):
            if values is None:
                row[f"{q}_{p}"] = None
            elif len(values) == 1:
                # single-phase meter: its value belongs to its phase (a when unknown)
                row[f"{q}_{p}"] = values[0] if p == (msg.phase or "a") else None
            else:
                row[f"{q}_{p}"] = values[i]
    for q in SCALAR_QUANTITIES:
        row[q] = getattr(msg, q)
    return row


class Historian:
    def __init__(
        self,
        store: HistorianStore,
        data_broker: Any,
        mgmt_broker: Any | None = None,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_buffer: int = 200_000,
        client_id: str = "gridedge-historian",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be > 0")
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.stats = HistorianStats()
        self._data = MqttClient(data_broker, f"{client_id}-data")
        self._mgmt = MqttClient(mgmt_broker, f"{client_id}-mgmt") if mgmt_broker else None
        self._readings: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._statuses: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._flush_lock = asyncio.Lock()

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> Historian:
        self._data.subscribe(subscription(Plane.DATA, "+", "#"), self._on_data, qos=1)
        await self._data.connect()
        if self._mgmt is not None:
            self._mgmt.subscribe(subscription(Plane.MGMT, "+", Stream.STATUS), self._on_mgmt, qos=1)
            await self._mgmt.connect()
        self._task = asyncio.create_task(self._flush_loop(), name="historian-flush")
        return self

    async def stop(self) -> None:
        await self._data.disconnect()
        if self._mgmt is not None:
            await self._mgmt.disconnect()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def pending(self) -> int:
        return len(self._readings) + len(self._events) + len(self._statuses) + len(self._rejected)

    # -- intake -------------------------------------------------------------------------------
    def _on_data(self, topic: str, payload: bytes) -> None:
        self._intake(topic, payload)

    def _on_mgmt(self, topic: str, payload: bytes) -> None:
        self._intake(topic, payload)

    def _intake(self, topic: str, payload: bytes) -> None:
        received_ns = time.time_ns()
        self.stats.received += 1
        if self.pending >= self.max_buffer:
            self.stats.dropped += 1
            self.stats.reasons["buffer full"] += 1
            return
        try:
            kind, record = self.classify(topic, payload, received_ns)
        except Rejected as exc:
            self._reject(topic, payload, str(exc), received_ns)
            return
        self._notify(kind, record)
        if len(self._readings) + len(self._events) >= self.batch_size:
            self._full.set()

    def classify(self, topic: str, payload: bytes, received_ns: int) -> tuple[str, dict[str, Any]]:
        """Validate one message against its contract and queue its row; raises Rejected."""
        try:
            parts = parse_topic(topic)
        except TopicError as exc:
            raise Rejected(str(exc)) from exc
        stream = parts.stream
        try:
            if parts.plane is Plane.MGMT:
                if stream != Stream.STATUS:
                    raise Rejected(f"stream {stream!r} on the management plane is not stored")
                st = DeviceStatusChanged.model_validate_json(payload)
                self._check_id(parts.device_id, st.device_id)
                ts = _ns(st.ts)
                self._statuses.append(
                    {
                        "device_id": st.device_id,
                        "status": st.status.value,
                        "since_ns": ts,
                        "last_seen_ns": _ns(st.last_seen) if st.last_seen else None,
                    }
                )
                self._event(
                    ts, received_ns, st.device_id, "mgmt", "status", st.status.value, payload
                )
                return "status", json.loads(payload)
            if stream == Stream.TELEMETRY:
                msg = Telemetry.model_validate_json(payload)
                self._check_id(parts.device_id, msg.device_id)
                row = reading_row(msg, received_ns)
                self._readings.append(row)
                return "telemetry", row
            if stream == Stream.EVENT:
                ev = DeviceEvent.model_validate_json(payload)
                self._check_id(parts.device_id, ev.device_id)
                kind = ev.kind.value
                ts = _ns(ev.occurred_at)
            elif stream == Stream.COMMAND:
                cmd = Command.model_validate_json(payload)
                kind, ts = cmd.action.value, _ns(cmd.ts)
            elif stream == Stream.COMMAND_RESULT:
                res = CommandResult.model_validate_json(payload)
                kind, ts = ("ok" if res.ok else "failed"), _ns(res.ts)
            else:
                # fault reports, FLISR records, SE results…: any JSON object with a timestamp
                try:
                    obj = json.loads(payload)
                except ValueError as exc:
                    raise Rejected(f"payload is not JSON: {exc}") from exc
                if not isinstance(obj, dict):
                    raise Rejected("payload must be a JSON object")
                kind = str(obj.get("kind") or obj.get("schema") or "")[:64]
                ts = _ts_of(obj, received_ns)
        except ValidationError as exc:
            raise Rejected(_validation_reason(exc)) from exc
        except ValueError as exc:
            if isinstance(exc, Rejected):
                raise
            raise Rejected(f"payload is not valid: {exc}") from exc
        rec = self._event(ts, received_ns, parts.device_id, "data", stream, kind, payload)
        return "event", rec

    @staticmethod
    def _check_id(topic_id: str, payload_id: str) -> None:
        if topic_id != payload_id:
            raise Rejected(
                f"device_id {payload_id!r} does not match the topic's device {topic_id!r}"
            )

    def _event(
        self,
        ts: int,
        received_ns: int,
        device: str,
        plane: str,
        stream: str,
        kind: str,
        payload: bytes,
    ) -> dict[str, Any]:
        rec = {
            "ts_ns": ts,
            "received_ns": received_ns,
            "device_id": device,
            "plane": plane,
            "stream": stream,
            "kind": kind,
            "payload": payload.decode("utf-8", errors="replace"),
        }
        self._events.append(rec)
        return rec

    def _reject(self, topic: str, payload: bytes, reason: str, received_ns: int) -> None:
        self.stats.rejected += 1
        key = reason.split(":")[0][:80]
        self.stats.reasons[key] += 1
        head = payload[:PAYLOAD_HEAD].decode("utf-8", errors="replace")
        problem = {
            "received_ns": received_ns,
            "topic": topic[:512],
            "reason": reason,
            "payload_head": head,
        }
        self.stats.recent_problems.append(problem)
        self._rejected.append(problem)
        if self.stats.rejected == 1 or self.stats.rejected % 1000 == 0:
            log.warning(
                "historian rejected %d message(s); latest on %s: %s",
                self.stats.rejected,
                topic,
                reason,
            )
        self._notify("rejected", problem)

    def _notify(self, kind: str, record: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(kind, record)
            except Exception:  # a broken view must not stop storage
                log.exception("historian listener failed")

    # -- flushing -----------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.flush_interval_s)
            self._full.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write everything pending in one transaction (in a worker thread, so intake goes on)."""
        async with self._flush_lock:
            readings, self._readings = self._readings, []
            evs, self._events = self._events, []
            statuses, self._statuses = self._statuses, []
            rejected, self._rejected = self._rejected, []
            total = len(readings) + len(evs) + len(statuses) + len(rejected)
            if not total:
                return 0
            t0 = time.perf_counter()
            try:
                await asyncio.to_thread(self.store.write_batch, readings, evs, statuses, rejected)
            except Exception as exc:
                self.stats.write_errors += 1
                lost = len(readings) + len(evs)
                self.stats.dropped += lost
                self.stats.reasons[f"write failed: {type(exc).__name__}"] += lost
                log.exception("historian: a batch of %d rows could not be written", total)
                return 0
            self.stats.flushes += 1
            self.stats.readings_stored += len(readings)
            self.stats.events_stored += len(evs)
            self.stats.last_flush_rows = total
            self.stats.last_flush_s = time.perf_counter() - t0
            return total


def _ts_of(obj: dict[str, Any], default_ns: int) -> int:
    from datetime import datetime

    value = obj.get("ts") or obj.get("occurred_at")
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise Rejected(f"ts: {value!r} is not an ISO 8601 timestamp") from exc
        if dt.tzinfo is None:
            raise Rejected("ts: timestamp must carry a UTC offset")
        return _ns(dt)
    return default_ns
