"""Placement of meters on MMS servers (REFERENCE §5.5, option "one IedServer per shard, own port").

Meters known at start are packed ``meters_per_shard`` to a server; every later batch of new meters
starts one more server and leaves the running ones alone, so existing associations, enabled
report control blocks and buffered-report buffers survive any number of joins. A removed meter's
LD cannot leave a running server (pitfall 7): it is marked invalid/offline instead, and its server
is stopped once it hosts no live meter.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterable

from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.mms import OperateFn, Reading, Shard
from gridedge.gateways.iec61850.scl import Endpoint

log = logging.getLogger(__name__)


class ShardManager:
    def __init__(
        self,
        operate: OperateFn,
        *,
        ctl_model: m.CtlModel = m.CtlModel.SBO_ENHANCED,
        ip: str = "127.0.0.1",
        base_port: int = 0,
        meters_per_shard: int = 100,
        command_timeout_s: float = 10.0,
    ) -> None:
        if meters_per_shard < 1:
            raise ValueError("meters_per_shard must be at least 1")
        self.operate = operate
        self.ctl_model = ctl_model
        self.ip = ip
        self.base_port = base_port
        self.meters_per_shard = meters_per_shard
        self.command_timeout_s = command_timeout_s
        self.shards: list[Shard] = []
        self._by_device: dict[str, Shard] = {}
        self._retired: set[str] = set()
        self._lock = threading.RLock()
        self._next_port = base_port
        # Model writes leave the event loop: waiting for a shard's model lock must never stall
        # the loop that delivers the CommandResult a control handler is waiting for. One
        # single-thread writer per shard group keeps each meter's updates in order.
        self._writers = [
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"iec61850-writer{i}")
            for i in range(2)
        ]

    def __contains__(self, device_id: str) -> bool:
        return device_id in self._by_device

    def shard_of(self, device_id: str) -> Shard | None:
        return self._by_device.get(device_id)

    def add(self, specs: Iterable[m.MeterSpec]) -> list[Shard]:
        """Start new shard(s) for the meters not served yet; returns the shards started."""
        with self._lock:
            fresh = [s for s in specs if s.device_id not in self._by_device]
            seen: set[str] = set()
            fresh = [s for s in fresh if not (s.device_id in seen or seen.add(s.device_id))]
            if any(s.device_id in self._retired for s in fresh):
                # The LD of a deleted meter still lives in its old server (same MMS domain and
                # control reference): a re-registered meter waits for that server to stop.
                blocked = [s.device_id for s in fresh if s.device_id in self._retired]
                log.warning("meters %s were removed while their server still runs", blocked)
                fresh = [s for s in fresh if s.device_id not in self._retired]
            started: list[Shard] = []
            for i in range(0, len(fresh), self.meters_per_shard):
                chunk = fresh[i : i + self.meters_per_shard]
                shard = Shard(len(self.shards), chunk, self.ctl_model, self.operate, self.ip)
                t0 = time.perf_counter()
                port = shard.start(self._next_port or None)
                if self._next_port:
                    self._next_port = port + 1
                self.shards.append(shard)
                for s in chunk:
                    self._by_device[s.device_id] = shard
                started.append(shard)
                log.info(
                    "MMS shard %d: %d meter(s) on %s:%d (%.1f ms)",
                    shard.index,
                    len(chunk),
                    self.ip,
                    port,
                    (time.perf_counter() - t0) * 1000,
                )
            return started

    def retire(self, device_id: str) -> None:
        """A meter deleted from the platform: values invalid, Health alarm; stop its server when
        no other live meter remains on it."""
        with self._lock:
            shard = self._by_device.pop(device_id, None)
            if shard is None:
                return
            shard.set_online(device_id, False)
            self._retired.add(device_id)
            if not any(d in self._by_device for d in shard.nodes):
                shard.stop()
                self._retired -= set(shard.nodes)
                self.shards = [s for s in self.shards if s is not shard]

    def submit(self, device_id: str, what: str, *args: object) -> concurrent.futures.Future[bool]:
        """Queue ``update``/``set_relay``/``set_online`` for a meter on its shard's writer."""
        shard = self._by_device.get(device_id)
        if shard is None:
            done: concurrent.futures.Future[bool] = concurrent.futures.Future()
            done.set_result(False)
            return done
        method = getattr(self, what)
        return self._writers[shard.index % len(self._writers)].submit(method, device_id, *args)

    def update(self, device_id: str, reading: Reading) -> bool:
        shard = self._by_device.get(device_id)
        if shard is None:
            return False
        shard.update(device_id, reading)
        return True

    def set_relay(self, device_id: str, closed: bool) -> bool:
        shard = self._by_device.get(device_id)
        if shard is not None:
            shard.set_relay(device_id, closed)
        return shard is not None

    def set_online(self, device_id: str, online: bool) -> bool:
        shard = self._by_device.get(device_id)
        if shard is not None:
            shard.set_online(device_id, online)
        return shard is not None

    def endpoints(self) -> dict[str, Endpoint]:
        return {d: s.endpoint for d, s in self._by_device.items()}

    def specs(self) -> list[m.MeterSpec]:
        return [s.nodes[d].spec for d, s in self._by_device.items()]

    def connections(self) -> int:
        return sum(s.connections() for s in self.shards)

    def stop(self) -> None:
        for w in self._writers:
            w.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for shard in self.shards:
                shard.stop()
            self.shards.clear()
            self._by_device.clear()
            self._retired.clear()
