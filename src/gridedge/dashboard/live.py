"""The dashboard's live picture and its fan-out to browsers over Server-Sent Events.

The historian hands every accepted message to :meth:`LiveState.on_message` as it arrives (before
its batch is written), so the page changes within a message's latency, not a flush interval. Each
browser gets a bounded queue: a stalled tab loses updates (counted) instead of growing memory, and
it re-reads the whole state when it reconnects."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from gridedge.dashboard.grid import GridSnapshot
from gridedge.dashboard.latency import LatencyTracker

MAX_EVENTS = 200


class Broadcaster:
    def __init__(self, queue_size: int = 500) -> None:
        self._queues: set[asyncio.Queue[str]] = set()
        self.queue_size = queue_size
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(self.queue_size)
        self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        self._queues.discard(q)

    @property
    def clients(self) -> int:
        return len(self._queues)

    def send(self, kind: str, data: Any) -> None:
        frame = f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        for q in list(self._queues):
            try:
                q.put_nowait(frame)
            except asyncio.QueueFull:
                self.dropped += 1


class LiveState:
    def __init__(self, broadcaster: Broadcaster | None = None) -> None:
        self.bus = broadcaster or Broadcaster()
        self.latest: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, str] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.flisr: dict[str, Any] | None = None
        self.grid = GridSnapshot()
        self.grid_seq = 0
        self.latency = LatencyTracker()
        self._commands: dict[str, int] = {}  # command id -> ts_ns, for round trips

    # -- from the historian -------------------------------------------------------------------
    def on_message(self, kind: str, record: dict[str, Any]) -> None:
        if kind == "telemetry":
            self.latest[record["device_id"]] = record
            self.latency.add(
                "telemetry (meter → platform)", (record["received_ns"] - record["ts_ns"]) / 1e6
            )
            self.bus.send("telemetry", _slim_reading(record))
        elif kind == "status":
            device, status = record.get("device_id"), record.get("status")
            if device and status:
                self.statuses[device] = status
                self.bus.send("status", {"device_id": device, "status": status})
        elif kind == "event":
            ev = _event_view(record)
            if ev["stream"] == "command":
                cid = ev["payload"].get("command_id") if isinstance(ev["payload"], dict) else None
                if cid:
                    self._commands[cid] = record["ts_ns"]
                    if len(self._commands) > 1000:
                        self._commands.pop(next(iter(self._commands)))
            elif ev["stream"] == "command-result" and isinstance(ev["payload"], dict):
                sent = self._commands.pop(str(ev["payload"].get("command_id")), None)
                if sent is not None:
                    self.latency.add("switch command round trip", (record["ts_ns"] - sent) / 1e6)
            if (
                ev["device_id"] == "flisr"
                and ev["stream"] == "record"
                and isinstance(ev["payload"], dict)
            ):
                self.flisr = ev["payload"]
                total = self.flisr.get("total_s")
                if isinstance(total, int | float):  # the steps themselves are on the timeline
                    self.latency.add("FLISR: fault → restored", total * 1000)
                self.bus.send("flisr", self.flisr)
            self.events.appendleft(ev)
            self.bus.send("event", ev)
        elif kind == "rejected":
            ev = {
                "ts_ns": record["received_ns"],
                "device_id": "historian",
                "stream": "rejected",
                "kind": "bad payload",
                "payload": {"topic": record["topic"], "reason": record["reason"]},
            }
            self.events.appendleft(ev)
            self.bus.send("event", ev)

    # -- from the grid ------------------------------------------------------------------------
    def set_grid(self, snap: GridSnapshot) -> bool:
        """Store the grid's state; True (and an SSE push) only when something changed."""
        if snap.as_dict() == self.grid.as_dict():
            return False
        self.grid_seq += 1
        self.grid = snap
        self.bus.send("grid", self.grid_view())
        return True

    def grid_view(self) -> dict[str, Any]:
        """The grid state with a sequence number: a page that already has a newer state (pushed
        over SSE) must not go back to an older one that a slow /api/state answer carried."""
        return {**self.grid.as_dict(), "seq": self.grid_seq}

    def note(self, kind: str, text: str, **detail: Any) -> None:
        """An operator action or a platform remark, shown in the event list."""
        ev = {
            "ts_ns": time.time_ns(),
            "device_id": "dashboard",
            "stream": "operator",
            "kind": kind,
            "payload": {"text": text, **detail},
        }
        self.events.appendleft(ev)
        self.bus.send("event", ev)


def flisr_steps(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Steps of a FLISR record as (name, start offset, duration) in ms, whatever the record calls
    them: a ``steps`` list with ``duration_ms`` or ``duration_s`` (and optional ``start_ms``)."""
    steps = record.get("steps") or record.get("timeline") or []
    out: list[dict[str, Any]] = []
    t = 0.0
    for s in steps if isinstance(steps, list) else []:
        if not isinstance(s, dict):
            continue
        if "duration_ms" in s:
            dur = float(s["duration_ms"])
        elif "duration_s" in s:
            dur = float(s["duration_s"]) * 1000
        else:
            continue
        start = float(s.get("start_ms", s.get("offset_ms", t)))
        name = str(s.get("name") or s.get("step") or s.get("kind") or f"step {len(out) + 1}")
        out.append({"name": name, "start_ms": start, "duration_ms": dur})
        t = start + dur
    return out


def _slim_reading(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("device_id", "ts_ns", "seq", "relay_closed", "frequency_hz", "energy_wh")
    out = {k: r.get(k) for k in keys}
    for q in ("voltage_v", "current_a", "active_power_w"):
        vals = [r.get(f"{q}_{p}") for p in "abc"]
        out[q] = None if all(v is None for v in vals) else vals
    return out


def _event_view(record: dict[str, Any]) -> dict[str, Any]:
    try:
        payload: Any = json.loads(record["payload"])
    except (ValueError, TypeError):
        payload = record.get("payload")
    return {
        "ts_ns": record["ts_ns"],
        "device_id": record["device_id"],
        "stream": record["stream"],
        "kind": record["kind"],
        "payload": payload,
    }
