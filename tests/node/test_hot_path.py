"""The fleet's per-reading shortcuts give exactly what the plain pydantic path gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from gridedge.apps.telemetry import payload_json
from gridedge.contracts.telemetry import Telemetry
from gridedge.node.fleet import SyntheticDaq


def _now(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine that never suspends (the synthetic DAQ) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("coroutine suspended")


@pytest.mark.parametrize(
    "update",
    [
        {"device_id": "SM-1", "seq": 0, "energy_wh": None, "relay_closed": None},
        {"device_id": "SM-1", "seq": 123456, "energy_wh": 1234.567891, "relay_closed": True},
        {"device_id": "SM-1", "seq": 7, "energy_wh": 0.0, "relay_closed": False},
    ],
)
def test_payload_is_byte_identical_to_the_models_json(update: dict) -> None:
    daq = SyntheticDaq("SM-1", seed=3)
    for _ in range(5):
        reading = _now(daq.read_rms())
        fast = payload_json(reading, **update)
        assert fast == reading.model_copy(update=update).to_json()
        back = Telemetry.from_json(fast)  # the contract validates it
        assert back.seq == update["seq"] and back.energy_wh == update["energy_wh"]
        assert back.voltage_v == reading.voltage_v and back.ts == reading.ts


def test_payload_of_a_validated_reading_with_angles_and_phase() -> None:
    reading = Telemetry(
        device_id="M7",
        ts=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        voltage_v=[230.1],
        current_a=[1e-7],
        voltage_angle_deg=[-120.5],
        current_angle_deg=[1e16],
        frequency_hz=49.95,
        phase="b",
    )
    update = {"seq": 3, "device_id": "M7", "energy_wh": 5.5, "relay_closed": None}
    fast = payload_json(reading, **update)
    assert fast == reading.model_copy(update=update).to_json()
    assert Telemetry.from_json(fast).phase == "b"


def test_non_finite_values_come_out_as_the_model_writes_them() -> None:
    reading = Telemetry.model_construct(
        **{**Telemetry(device_id="M1", voltage_v=[1.0], current_a=[1.0]).__dict__}
    )
    reading.__dict__["current_a"] = [math.nan]
    update = {"seq": 1, "device_id": "M1", "energy_wh": math.inf, "relay_closed": None}
    assert payload_json(reading, **update) == reading.model_copy(update=update).to_json()


def test_unusual_readings_take_the_models_path() -> None:
    class Special(Telemetry):
        note: str = "x"

    reading = Special(device_id="M1", voltage_v=[230.0], current_a=[1.0])
    update = {"seq": 2, "device_id": "M1", "energy_wh": None, "relay_closed": None}
    out = payload_json(reading, **update)
    assert out == reading.model_copy(update=update).to_json() and b'"note":"x"' in out


def test_synthetic_readings_are_short_plausible_and_validate() -> None:
    daq = SyntheticDaq("SM-2", seed=11)
    for _ in range(50):
        r = _now(daq.read_rms())
        again = Telemetry.model_validate(r.model_dump(by_alias=True))
        assert again.voltage_v == r.voltage_v
        assert all(220 < v < 240 and v == round(v, 2) for v in r.voltage_v)
        assert all(c >= 0 and c == round(c, 3) for c in r.current_a)
        assert r.power_factor == [0.95, 0.95, 0.95]
        assert r.active_power_w is not None and all(
            abs(p - round(v * c * 0.95, 1)) < 0.11
            for p, v, c in zip(r.active_power_w, r.voltage_v, r.current_a, strict=True)
        )
        assert 49.9 < (r.frequency_hz or 0) < 50.1 and r.device_id == "SM-2"
    # readings are fresh objects: the template is never handed out
    a, b = _now(daq.read_rms()), _now(daq.read_rms())
    assert a is not b and a.voltage_v is not b.voltage_v


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_client_parses_received_packets_without_gmqtts_read_loop(
    mosquitto, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import uvloop

    from gridedge.broker.client import MqttClient, _DirectReadProtocol

    # gmqtt's own path feeds every received chunk to a StreamReader: count those
    fed: list[int] = []
    feed = asyncio.StreamReader.feed_data

    def counting_feed(self, data):  # type: ignore[no-untyped-def]
        fed.append(len(data))
        return feed(self, data)

    monkeypatch.setattr(asyncio.StreamReader, "feed_data", counting_feed)

    async def scenario() -> None:
        got: list[tuple[str, bytes]] = []
        sub = MqttClient(mosquitto.url, client_id="hp-sub")
        pub = MqttClient(mosquitto.url, client_id="hp-pub")
        await sub.connect()
        await pub.connect()
        try:
            for c in (sub, pub):
                assert type(c._client._connection._protocol) is _DirectReadProtocol
            sub.subscribe("hp/#", lambda t, p: got.append((t, p)), qos=1)
            await asyncio.sleep(0.2)
            big = bytes(range(256)) * 800  # 200 KB: arrives in many chunks, split mid-packet
            payloads = [f"{k}".encode() * (1 + k % 50) for k in range(300)] + [big]
            for k, p in enumerate(payloads):
                pub.publish(f"hp/{k}", p, qos=1)
            storage = pub._client._persistent_storage
            for _ in range(100):
                if len(got) == len(payloads) and storage.is_empty:
                    break
                await asyncio.sleep(0.05)
            # every message arrived whole and in order; every PUBACK was taken
            assert [p for _, p in got] == payloads
            assert [t for t, _ in got] == [f"hp/{k}" for k in range(len(payloads))]
            assert storage.is_empty and not pub._client._connection._protocol._unparsed
            # the broker goes away and comes back: the new connection parses directly too
            mosquitto.stop()
            await asyncio.sleep(0.5)
            mosquitto.start()
            await asyncio.wait_for(pub.wait_connected(), 15)
            assert type(pub._client._connection._protocol) is _DirectReadProtocol
            await asyncio.wait_for(sub.wait_connected(), 15)
            await asyncio.sleep(0.3)
            pub.publish("hp/after", b"again", qos=1)
            for _ in range(100):
                if got[-1] == ("hp/after", b"again"):
                    break
                await asyncio.sleep(0.05)
            assert got[-1] == ("hp/after", b"again")
        finally:
            await pub.disconnect()
            await sub.disconnect()

    if loop_kind == "uvloop":
        uvloop.run(scenario())
    else:
        asyncio.run(scenario())
    assert fed == []  # not one chunk went through gmqtt's StreamReader and read loop


@pytest.mark.parametrize("size", [0, 1, 100, 127 - 40, 16_383, 16_384, 2_097_152])
@pytest.mark.parametrize(("qos", "retain"), [(0, False), (1, False), (1, True), (0, True)])
def test_lean_publish_packet_is_gmqtts_packet(size: int, qos: int, retain: bool) -> None:
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv311
    from gmqtt.mqtt.package import PublishPacket
    from gmqtt.mqtt.utils import IdGenerator

    from gridedge.broker.client import encode_topic, publish_packet

    class Proto:  # what build_package reads from gmqtt's protocol
        proto_ver = MQTTv311
        id_generator = IdGenerator()

    topic = "gridedge/v1/data/SM-ü1/telemetry"
    payload = bytes(k % 251 for k in range(size))
    mid, theirs = PublishPacket.build_package(
        gmqtt.Message(topic, payload, qos=qos, retain=retain), Proto()
    )
    ours = publish_packet(encode_topic(topic), payload, qos, retain, mid)
    assert ours == bytes(theirs)


async def test_lean_publish_goes_through_gmqtts_in_flight_store(mosquitto) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from gridedge.broker.client import MqttClient

    got: list[bytes] = []
    sub = MqttClient(mosquitto.url, client_id="lp-sub")
    pub = MqttClient(mosquitto.url, client_id="lp-pub")
    await sub.connect()
    await pub.connect()
    try:
        sub.subscribe("lp/x", lambda t, p: got.append(p), qos=1)
        await asyncio.sleep(0.2)
        stored: list[int] = []
        storage = pub._client._persistent_storage
        push = storage.push_message
        storage.push_message = lambda mid, pkt: (stored.append(mid), push(mid, pkt))  # type: ignore[method-assign]
        for k in range(50):
            pub.publish("lp/x", f"{k}".encode(), qos=1)
        pub.publish("lp/x", "text", qos=0)  # str: gmqtt's own path
        assert len(stored) == 50 and len(set(stored)) == 50  # ids from gmqtt's allocator
        for _ in range(100):
            if len(got) == 51 and storage.is_empty:
                break
            await asyncio.sleep(0.05)
        assert got == [f"{k}".encode() for k in range(50)] + [b"text"]
        assert storage.is_empty and pub.messages_out == 51
    finally:
        await pub.disconnect()
        await sub.disconnect()


async def test_a_lone_puback_goes_straight_to_gmqtts_puback_handler(mosquitto) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from gridedge.broker.client import MqttClient

    pub = MqttClient(mosquitto.url, client_id="pa-pub")
    await pub.connect()
    try:
        handler = pub._client._package_handler
        generic: list[int] = []
        acked: list[int] = []
        dispatch, on_puback = handler._handle_packet, handler._handle_puback_packet
        handler._handle_packet = lambda cmd, pkt: (generic.append(cmd), dispatch(cmd, pkt))  # type: ignore[method-assign]
        handler._handle_puback_packet = (
            lambda cmd, pkt: (  # type: ignore[method-assign]
                acked.append(int.from_bytes(pkt[:2], "big")),
                on_puback(cmd, pkt),
            )
        )
        storage = pub._client._persistent_storage
        for k in range(20):
            pub.publish("pa/x", f"{k}".encode(), qos=1)
            for _ in range(100):
                if storage.is_empty:
                    break
                await asyncio.sleep(0.01)
            assert storage.is_empty  # acknowledged, the in-flight copy dropped
        assert len(acked) == 20 and len(set(acked)) == 20
        assert 0x40 not in generic  # never through the generic packet dispatch
        assert not handler.id_generator._used_ids  # every packet id freed again
    finally:
        await pub.disconnect()
