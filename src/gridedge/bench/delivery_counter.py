"""The measuring end of ``gridedge bench fleet``: counts every telemetry reading that arrives,
per meter and by sequence number, and times it (receive time − the reading's ``ts``).

WHY Eclipse Mosquitto's own C client: the bench must not eat the machine it measures. A Python
MQTT subscriber (gmqtt on uvloop, a ``json.loads`` and a ``datetime`` per message) cost ≈ 68 µs of
CPU per reading — a third of what 10,000 readings/s leave on two cores. ``mosquitto_sub``
(Debian package ``mosquitto-clients``) does the MQTT work in C — QoS 1, a PUBACK per message —
and prints one line per message, ``-F '%U %t %p'``: its receive time, the topic and the raw
payload. Two properties make the latency honest (checked in mosquitto 2.0's
``client/sub_client_output.c``): ``%U`` is ``clock_gettime(CLOCK_REALTIME)`` read in the message
callback, when the PUBLISH has just been decoded, and every line is ``fflush``-ed at once. So
when Python reads the pipe (in large chunks, every few tens of ms) does not change what is
measured. A bonus: the counting end is an MQTT implementation independent of the fleet's gmqtt.

``DeliveryCounter`` does the bookkeeping for both ends (``mosquitto_sub`` lines, or
``add(...)`` from the gmqtt fallback used when ``mosquitto_sub`` is not installed). It reads only
the fields it needs — ``"seq"`` and ``"ts"`` found by a regular expression, the device id from
the topic — instead of decoding the whole reading.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gridedge.broker.urls import BrokerAddress, parse_broker_url
from gridedge.contracts.topics import Plane, Stream, subscription, topic

LINE_FORMAT = "%U %t %p"
"""receive time (Unix s with ns), topic, raw payload — one line per message (``-F``)."""

_SEQ = re.compile(rb'"seq"\s*:\s*(\d+)')
_TS = re.compile(rb'"ts"\s*:\s*"([^"]+)"')
# The pipe from mosquitto_sub: if it fills, mosquitto_sub blocks, stops reading its socket and
# stamps later receive times — the measuring end would add latency. 16 MiB (needs root; else
# the unprivileged maximum, usually 1 MiB) holds ≈ 3.5 s of 10,000 readings/s (≈ 0.2 s at 1 MiB)
# against a read every 20 ms; a poll that finds the pipe full is counted (``pipe_full``).
_PIPE_SIZES = (16 << 20, 4 << 20, 1 << 20)
_READ_BYTES = 1 << 20
_READ_PERIOD_S = 0.02


class CounterError(RuntimeError):
    """The subscriber could not start; the message says why."""


def find_client(name: str = "mosquitto_sub") -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)),
        None,
    )
    if not found:
        raise CounterError(
            f"{name} not found: install Debian package mosquitto-clients "
            "(`apt-get install mosquitto-clients`; ./dev installs it)"
        )
    return found


def client_args(address: BrokerAddress, options_dir: Path) -> list[str]:
    """Connection options shared by ``mosquitto_sub`` and ``mosquitto_pub``. A password goes into
    an options file (mode 0600, read via ``XDG_CONFIG_HOME``), never onto the command line where
    ``ps`` shows it to every user."""
    args = ["-h", address.host, "-p", str(address.port)]
    if address.tls:
        if address.ca_file:
            args += ["--cafile", address.ca_file]
        else:
            args += ["--tls-use-os-certs"]
    if address.username:
        args += ["-u", address.username]
    if address.password:
        options_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for tool in ("mosquitto_sub", "mosquitto_pub"):
            f = options_dir / tool
            f.write_text(f"-P {address.password}\n")
            f.chmod(0o600)
    return args


def client_env(options_dir: Path) -> dict[str, str]:
    # TZ set: glibc's localtime() (called by mosquitto_sub for every %U) then skips its stat() of
    # /etc/localtime per message; %U is Unix time, independent of the zone.
    return {**os.environ, "XDG_CONFIG_HOME": str(options_dir), "TZ": "UTC"}


def _parse_ts(raw: bytes) -> float:
    return datetime.fromisoformat(raw.decode()).timestamp()


@dataclass
class DeliveryCounter:
    """Per-meter sequence numbers seen, duplicates, unparsable messages, and for every first
    delivery its receive time and the reading's ``ts`` (float arrays, 16 bytes a reading)."""

    ignore_device: bytes = b""
    seen: dict[bytes, set[int]] = field(default_factory=dict)
    recv: array.array[float] = field(default_factory=lambda: array.array("d"))
    created: array.array[float] = field(default_factory=lambda: array.array("d"))
    dup: int = 0
    bad: int = 0
    probe_seen: bool = False
    pipe_full: int = 0  # reads that found mosquitto_sub's pipe full (it may have waited)
    client_exit: int | None = None  # mosquitto_sub's exit code if it ended before being stopped
    client_stderr: str = ""
    _tail: bytes = b""

    def feed(self, chunk: bytes) -> None:
        """Lines of ``mosquitto_sub -F '%U %t %p'``, in chunks cut anywhere. (The per-line work
        is written out here rather than calling ``add``: a Python call per reading is a tenth of
        this loop's cost.)"""
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        seen, recv_, created_ = self.seen, self.recv.append, self.created.append
        seq_re, ts_re, ignore = _SEQ.search, _TS.search, self.ignore_device
        for line in lines:
            parts = line.split(b" ", 2)
            t = parts[1].split(b"/") if len(parts) == 3 else ()
            if len(t) != 5:
                self.bad += bool(line)
                continue
            dev = t[3]
            if dev == ignore:
                self.probe_seen = True
                continue
            payload = parts[2]
            m, c = seq_re(payload), ts_re(payload)
            try:
                recv = float(parts[0])
                created = _parse_ts(c[1])  # type: ignore[index]
                seq = int(m[1])  # type: ignore[index]
            except (TypeError, ValueError):  # no match (None[1]), or not a number / a time
                self.bad += 1
                continue
            s = seen.get(dev)
            if s is None:
                s = seen[dev] = set()
            if seq in s:
                self.dup += 1
                continue
            s.add(seq)
            recv_(recv)
            created_(created)

    def add(self, recv: float, topic_: bytes, payload: bytes) -> None:
        """One message: ``topic_`` is ``gridedge/v1/data/<device>/telemetry``."""
        t = topic_.split(b"/")
        if len(t) != 5:
            self.bad += 1
            return
        dev = t[3]
        if dev == self.ignore_device:
            self.probe_seen = True
            return
        m, c = _SEQ.search(payload), _TS.search(payload)
        if m is None or c is None:
            self.bad += 1
            return
        try:
            created = _parse_ts(c[1])
        except ValueError:
            self.bad += 1
            return
        seq = int(m[1])
        s = self.seen.get(dev)
        if s is None:
            s = self.seen[dev] = set()
        if seq in s:
            self.dup += 1
            return
        s.add(seq)
        self.recv.append(recv)
        self.created.append(created)

    def summary(self) -> dict[str, Any]:
        """Counts; ``gaps``: sequence numbers missing between 0 and each meter's highest one
        (sequence numbers start at 0), i.e. readings lost before the last one that arrived."""
        per_max = {d.decode(): max(s) for d, s in self.seen.items() if s}
        missing = {d.decode(): max(s) + 1 - len(s) for d, s in self.seen.items() if s}
        return {
            "devices": len(self.seen),
            "unique": sum(len(s) for s in self.seen.values()),
            "dup": self.dup,
            "bad": self.bad,
            "gaps": sum(missing.values()),
            "devices_with_gaps": sum(1 for v in missing.values() if v),
            "per_device_max": per_max,
            "pipe_full": self.pipe_full,
            "client_exit": self.client_exit,
            "client_stderr": self.client_stderr.strip(),
        }

    def latencies_ms(self, t0: float = float("-inf"), t1: float = float("inf")) -> list[float]:
        """Receive time − ``ts`` of the readings created in [t0, t1)."""
        return [
            1000 * (r - c) for r, c in zip(self.recv, self.created, strict=True) if t0 <= c < t1
        ]

    def save(self, out: Path) -> None:
        out.write_bytes(self.recv.tobytes())
        out.with_suffix(".created").write_bytes(self.created.tobytes())
        out.with_suffix(".json").write_text(json.dumps(self.summary()))


class MosquittoSubCounter:
    """``mosquitto_sub`` in a child process, its output parsed here. ``start()`` returns once
    the subscription is live (a probe message published with ``mosquitto_pub`` came back)."""

    def __init__(
        self, url: str | BrokerAddress, client_id: str | None = None, qos: int = 1
    ) -> None:
        self.qos = qos  # 1: the broker keeps what the counter has not acknowledged yet
        self.address = url if isinstance(url, BrokerAddress) else parse_broker_url(url)
        self.client_id = client_id or f"bench-sub-{os.getpid()}"
        self.counter = DeliveryCounter(ignore_device=self.client_id.encode())
        self._options = Path(tempfile.mkdtemp(prefix="gridedge-sub-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._probe_topic = topic(Plane.DATA, self.client_id, "bench-probe")
        self.pipe_bytes = 0
        self._stderr_path = self._options / "mosquitto_sub.stderr"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 20.0) -> MosquittoSubCounter:
        sub, pub = find_client("mosquitto_sub"), find_client("mosquitto_pub")
        conn = client_args(self.address, self._options)
        env = client_env(self._options)
        err = self._stderr_path.open("wb")
        self._proc = subprocess.Popen(
            [
                sub,
                *conn,
                "-i",
                self.client_id,
                "-q",
                str(self.qos),
                "-k",
                "60",
                "-F",
                LINE_FORMAT,
                "-t",
                subscription(Plane.DATA, "+", Stream.TELEMETRY),
                "-t",
                self._probe_topic,
            ],
            stdout=subprocess.PIPE,
            # a file, not a pipe: a client that keeps complaining must never block on stderr
            stderr=err,
            env=env,
            start_new_session=True,
        )
        err.close()
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        for size in _PIPE_SIZES:
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
                break
        self.pipe_bytes = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        os.set_blocking(fd, False)
        deadline = time.monotonic() + timeout_s
        while not self.counter.probe_seen:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise CounterError(f"mosquitto_sub exited ({code}): {self.counter.client_stderr}")
            if time.monotonic() > deadline:
                self.stop()
                raise CounterError(f"mosquitto_sub: no subscription within {timeout_s} s")
            subprocess.run(
                [pub, *conn, "-q", "1", "-t", self._probe_topic, "-m", "probe"],
                env=env,
                capture_output=True,
                timeout=10,
                check=False,
            )
            time.sleep(0.1)
            self.poll()
        return self

    def poll(self) -> int:
        """Read and count whatever is in the pipe now; returns the bytes read."""
        if self._proc is None or self._proc.stdout is None:
            return 0
        fd, total = self._proc.stdout.fileno(), 0
        while True:
            try:
                chunk = os.read(fd, _READ_BYTES)
            except BlockingIOError:
                if total >= self.pipe_bytes:
                    self.counter.pipe_full += 1
                return total
            if not chunk:
                return total
            total += len(chunk)
            self.counter.feed(chunk)

    def run_until(self, stop: Any) -> None:
        """Poll every ``_READ_PERIOD_S`` until ``stop()`` is true."""
        while not stop():
            time.sleep(_READ_PERIOD_S)
            self.poll()

    def stop(self) -> None:
        """Stop ``mosquitto_sub`` and count what it already printed (each line was flushed when
        its message arrived, so nothing sits in its stdio buffer)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        else:  # it ended on its own: every reading after that is missing, say why
            self.counter.client_exit = proc.returncode
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), True)
        rest = proc.stdout.read()
        if rest:
            self.counter.feed(rest)
        proc.stdout.close()
        with contextlib.suppress(OSError):
            self.counter.client_stderr = self._stderr_path.read_text(errors="replace")[-2000:]
        shutil.rmtree(self._options, ignore_errors=True)

    def __enter__(self) -> MosquittoSubCounter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _gmqtt_count(url: str, ready: Path, out: Path) -> None:
    """The fallback measuring end (``--client gmqtt``): the fleet's own MQTT library, QoS 1,
    the same bookkeeping. Costs ≈ 3× the CPU of ``mosquitto_sub`` per reading."""
    import asyncio

    from gridedge.broker.client import MqttClient

    counter = DeliveryCounter()
    now = time.time
    add = counter.add
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = MqttClient(url, client_id=f"bench-sub-{os.getpid()}")
    await client.connect()
    client.subscribe(
        subscription(Plane.DATA, "+", Stream.TELEMETRY),
        lambda t, payload: add(now(), t.encode(), payload),
        qos=1,
    )
    await asyncio.sleep(0.5)  # SUBACK: gmqtt gives no hook, the bench waits before it publishes
    ready.write_text(json.dumps({"client": "gmqtt", "child_pids": []}))
    await stop.wait()
    await client.disconnect()
    counter.save(out)


def main(argv: list[str] | None = None) -> None:
    """Subscriber process of the bench:
    ``python -m gridedge.bench.delivery_counter URL OUT READY [mosquitto_sub|gmqtt]`` — writes
    READY once subscribed (with the pid of ``mosquitto_sub``, whose CPU the bench adds to this
    process's), counts until SIGTERM, then writes OUT (receive times), OUT.created (the
    readings' ``ts``) and OUT.json (counts)."""
    args = sys.argv[1:] if argv is None else argv
    url, out, ready = args[0], Path(args[1]), Path(args[2])
    client = args[3] if len(args) > 3 else "mosquitto_sub"
    if client == "gmqtt":
        from gridedge.node.fleet_cli import run_loop

        run_loop(_gmqtt_count(url, ready, out))
        return
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sub = MosquittoSubCounter(url).start()
    ready.write_text(json.dumps({"client": "mosquitto_sub", "child_pids": [sub.pid]}))
    sub.run_until(lambda: stopping)
    sub.stop()
    sub.counter.save(out)


if __name__ == "__main__":
    main()
