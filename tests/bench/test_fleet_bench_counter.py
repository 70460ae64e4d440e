"""The fleet bench's measuring end against a real Mosquitto: it must count what arrived, find
the readings that did not (sequence gaps), and time each one from its own ``ts`` — the figures of
docs/benchmarks.md (lost, p99) rest on it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridedge.bench.delivery_counter import (
    CounterError,
    DeliveryCounter,
    MosquittoSubCounter,
    find_client,
)
from gridedge.broker.client import MqttClient
from gridedge.broker.mosquitto import MosquittoInstance, free_port, write_password_file
from gridedge.broker.urls import BrokerAddress
from gridedge.contracts.topics import Plane, Stream, topic
from tests.broker.certs import make_tls_files


def _reading(device: str, seq: int, ts: float) -> bytes:
    stamp = datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"schema": "gridedge.telemetry/1", "ts": stamp, "device_id": device, "seq": seq,
         "voltage_v": [230.1, 229.8, 230.4], "current_a": [1.0, 1.1, 0.9]}
    ).encode()  # fmt: skip


async def _publish(url: str | BrokerAddress, messages: list[tuple[str, bytes]]) -> None:
    pub = await MqttClient(url, client_id="bench-test-pub").connect()
    for t, payload in messages:
        pub.publish(t, payload, qos=1)
    await asyncio.sleep(0.3)  # PUBACKs
    await pub.disconnect()


def _tel(device: str) -> str:
    return topic(Plane.DATA, device, Stream.TELEMETRY)


def _known_messages(now: float) -> list[tuple[str, bytes]]:
    """m1: seq 0 1 2 4 5 (3 never sent), ts 0.2 s old; m2: seq 0 1 1 (a duplicate), ts 3 s old;
    one payload that is not a reading."""
    msgs = [(_tel("m1"), _reading("m1", s, now - 0.2)) for s in (0, 1, 2, 4, 5)]
    msgs += [(_tel("m2"), _reading("m2", s, now - 3.0)) for s in (0, 1, 1)]
    msgs.append((_tel("m3"), b"not a reading"))
    return msgs


def _check_counts(summary: dict[str, object]) -> None:
    assert summary["devices"] == 2
    assert summary["unique"] == 7
    assert summary["dup"] == 1
    assert summary["bad"] == 1
    assert summary["gaps"] == 1 and summary["devices_with_gaps"] == 1
    assert summary["per_device_max"] == {"m1": 5, "m2": 1}


async def test_counts_gaps_duplicates_and_latency(mosquitto: MosquittoInstance) -> None:
    with MosquittoSubCounter(mosquitto.url) as sub:
        now = time.time()
        await _publish(mosquitto.url, _known_messages(now))
        await asyncio.sleep(0.2)
    _check_counts(sub.counter.summary())
    lat = sub.counter.latencies_ms()
    assert len(lat) == 7
    by_age = sorted(lat)
    # each reading's latency is measured from its own ts: 0.2 s and 3 s old when published
    assert all(200 <= v < 200 + 700 for v in by_age[:5]), by_age
    assert all(3000 <= v < 3000 + 700 for v in by_age[5:]), by_age


async def test_receive_time_is_taken_on_arrival_not_when_read(
    mosquitto: MosquittoInstance,
) -> None:
    with MosquittoSubCounter(mosquitto.url) as sub:
        await _publish(mosquitto.url, [(_tel("m1"), _reading("m1", 0, time.time()))])
        time.sleep(1.5)  # the pipe is read late; the line carries mosquitto_sub's own time
        sub.poll()
    (lat,) = sub.counter.latencies_ms()
    assert 0 <= lat < 700


def test_chunks_cut_anywhere_parse_the_same() -> None:
    now = time.time()
    data = b"".join(
        f"{now + 0.01 * k:.9f} {t} ".encode() + p + b"\n"
        for k, (t, p) in enumerate(_known_messages(now))
    )
    whole, bytewise = DeliveryCounter(), DeliveryCounter()
    whole.feed(data)
    for k in range(len(data)):
        bytewise.feed(data[k : k + 1])
    _check_counts(whole.summary())
    assert bytewise.summary() == whole.summary()
    assert list(bytewise.recv) == list(whole.recv) and list(bytewise.created) == list(whole.created)


async def test_tls_and_password_broker(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "pki")
    password = "counter-s3cret"
    pw = write_password_file(tmp_path / "passwd", {"bench": password})
    with MosquittoInstance(
        "secure", free_port(), workdir=tmp_path / "mqtt", password_file=pw, tls=tls
    ) as broker:
        addr = BrokerAddress(
            host="127.0.0.1", port=broker.port, tls=True, username="bench",
            password=password, ca_file=str(tls.ca_file),
        )  # fmt: skip
        with MosquittoSubCounter(addr) as sub:
            cmdline = Path(f"/proc/{sub.pid}/cmdline").read_bytes()
            assert password.encode() not in cmdline  # in a 0600 options file, not in `ps`
            await _publish(addr, [(_tel("m1"), _reading("m1", 0, time.time()))])
            await asyncio.sleep(0.2)
    assert sub.counter.summary()["unique"] == 1


def test_missing_client_names_the_package() -> None:
    with pytest.raises(CounterError, match="mosquitto-clients"):
        find_client("mosquitto_sub_not_installed")


@pytest.mark.parametrize("client", ["mosquitto_sub", "gmqtt"])
def test_subscriber_process_as_the_bench_runs_it(
    mosquitto: MosquittoInstance, tmp_path: Path, client: str
) -> None:
    out, ready = tmp_path / "sub.bin", tmp_path / "sub.ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridedge.bench.delivery_counter", mosquitto.url, str(out),
         str(ready), client]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["client"] == client
        assert len(info["child_pids"]) == (1 if client == "mosquitto_sub" else 0)
        asyncio.run(_publish(mosquitto.url, _known_messages(time.time())))
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    _check_counts(json.loads(out.with_suffix(".json").read_text()))
    assert len(out.read_bytes()) == len(out.with_suffix(".created").read_bytes()) == 7 * 8


@pytest.mark.slow
def test_bench_fleet_tiny_fleet_end_to_end(tmp_path: Path) -> None:
    """The whole bench on 20 meters (figures not asserted beyond what must hold at any speed)."""
    out = tmp_path / "fleet.json"
    proc = subprocess.run(
        [sys.executable, "-c", "from gridedge.bench.cli import app; app()", "fleet",
         "--meters", "20", "--interval", "0.5", "--duration", "5", "--swaps", "1",
         "--json", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["subscriber"] == "mosquitto_sub"
    assert r["booted_meters"] == 20 and r["boot_failures"] == 0
    assert r["published_total"] > 0 and r["lost"] == 0
    assert r["sequence_gaps"] == 0 and r["duplicates"] == 0 and r["unparsable"] == 0
    assert 0 < r["latency_ms_p50"] <= r["latency_ms_p99"] <= r["latency_ms_max"]
    # CPU is read in 10 ms clock ticks: a few hundred readings may cost less than one tick
    per = r["cpu_us_per_reading"]
    assert per["subscriber"] >= per["subscriber_mosquitto_sub"] >= 0
    assert per["fleet"] > 0 and per["mosquitto-data"] >= 0
    # both window snapshots answered: the in-window skip count is a number within the total
    assert r["skipped_ticks_in_window"] is not None
    assert 0 <= r["skipped_ticks_in_window"] <= r["skipped_ticks"]


async def test_a_late_reader_loses_nothing_and_is_reported(mosquitto: MosquittoInstance) -> None:
    """More than the pipe holds arrives while nobody reads: mosquitto_sub waits (the broker
    queues), every reading is still counted once, and the stall is reported."""
    with MosquittoSubCounter(mosquitto.url) as sub:
        now = time.time()
        count = sub.pipe_bytes // 150 + 500  # lines are ≈ 200 bytes: more than the pipe holds
        await _publish(mosquitto.url, [(_tel("m1"), _reading("m1", s, now)) for s in range(count)])
        await asyncio.sleep(0.5)
        deadline = time.monotonic() + 20
        while sub.counter.summary()["unique"] < count and time.monotonic() < deadline:
            sub.poll()
            await asyncio.sleep(0.02)
    summary = sub.counter.summary()
    assert summary["unique"] == count and summary["gaps"] == 0 and summary["dup"] == 0
    assert summary["pipe_full"] >= 1


def test_refused_subscriber_is_a_clear_error(tmp_path: Path) -> None:
    pw = write_password_file(tmp_path / "passwd", {"bench": "right"})
    with MosquittoInstance("pw", free_port(), workdir=tmp_path / "mqtt", password_file=pw) as b:
        addr = BrokerAddress(host="127.0.0.1", port=b.port, username="bench", password="wrong")
        with pytest.raises(CounterError, match=r"mosquitto_sub exited .*(not authori|refused)"):
            MosquittoSubCounter(addr).start(timeout_s=10)
