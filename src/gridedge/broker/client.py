"""One asyncio MQTT client for every role (gmqtt underneath; REFERENCE.md §3.2 explains why not
paho's thread-per-client loop).

What this adds to gmqtt: connect from a broker URL/endpoint with a clear error, dispatch of
incoming messages to handlers by subscription pattern, re-subscription after every reconnect,
and a last-will for liveness. Handlers may be plain functions or coroutines; an exception in a
handler is logged once per handler and never kills the connection.

One change to gmqtt's inside, for CPU: its protocol feeds every received chunk into an
``asyncio.StreamReader`` and a read-loop task per connection wakes up to parse it — a future and
a task switch per PUBACK, for a meter that publishes one QoS 1 reading a second over its own
connection. :class:`_DirectReadProtocol` parses the chunk right in ``data_received`` with
gmqtt's own parser (``_read_packet``) and hands the packets to gmqtt's own handler, as the read
loop would have; end of stream still reaches the (now idle) read loop, which closes the
connection as before.

And one on the way out: an MQTT 3.1.1 PUBLISH at QoS 0/1 is encoded here (:func:`publish_packet`,
MQTT 3.1.1 §3.3: fixed header, remaining length, topic, packet id, payload — the bytes gmqtt's
``PublishPacket.build_package`` produces, tested byte for byte) with the topic's encoding
cached, instead of a gmqtt ``Message`` object, a ``bytearray`` built piece by piece and three
debug-log calls per reading. Packet ids still come from gmqtt's allocator, the packet still goes
out through gmqtt's protocol and into its in-flight store, so PUBACKs, replay after a reconnect
and the outbox's AckTracker work unchanged. MQTT 5, QoS 2 and anything unusual go to gmqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import gmqtt
from gmqtt.mqtt.protocol import MQTTProtocol
from paho.mqtt.client import topic_matches_sub

from gridedge.broker.urls import BrokerAddress, from_endpoint, parse_broker_url
from gridedge.contracts.catalog import BrokerEndpoint
from gridedge.contracts.common import Message

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Awaitable[None] | None]


def _remaining_length(n: int) -> bytes:
    """MQTT's variable byte integer (§2.2.3)."""
    if n < 128:
        return bytes((n,))
    if n < 16_384:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def encode_topic(topic: str) -> bytes:
    """A topic as MQTT writes it: two length bytes, then UTF-8."""
    raw = topic.encode()
    if len(raw) > 65_535:
        raise ValueError(f"MQTT topic longer than 65,535 bytes: {topic[:80]}…")
    return len(raw).to_bytes(2, "big") + raw


def publish_packet(topic: bytes, payload: bytes, qos: int, retain: bool, mid: int | None) -> bytes:
    """An MQTT 3.1.1 PUBLISH (QoS 0 or 1) for an encoded topic (:func:`encode_topic`)."""
    length = len(topic) + len(payload) + (2 if qos else 0)
    if length > 268_435_455:
        raise ValueError("Payload too large.")
    head = bytes((0x30 | (qos << 1) | (1 if retain else 0),)) + _remaining_length(length)
    if qos:
        assert mid is not None
        return b"".join((head, topic, mid.to_bytes(2, "big"), payload))
    return b"".join((head, topic, payload))


class BrokerUnavailable(ConnectionError):
    """The broker did not accept a connection in time."""


@dataclass(slots=True)
class _Sub:
    pattern: str
    qos: int
    handler: Handler
    failed_once: bool = False


class _DirectReadProtocol(MQTTProtocol):
    """gmqtt's MQTTProtocol, parsing received bytes at once instead of through its read loop."""

    _unparsed = b""  # the start of a packet whose rest has not arrived yet

    def data_received(self, data: bytes) -> None:
        if len(data) == 4 and data[0] == 0x40 and data[1] == 2 and not self._unparsed:
            # One lone PUBACK — what a meter receives once a second. Straight to gmqtt's PUBACK
            # handler (frees the packet id, drops the in-flight copy), skipping the generic
            # packet object, dispatch and debug logging; the bookkeeping put_package and the
            # dispatcher do around it is done here the same way.
            conn = self._connection
            handler = getattr(conn, "_handler", None)
            if handler is not None and hasattr(handler, "_handle_puback_packet"):
                if handler.current_connection is not conn:
                    return  # a superseded connection's late packet (gmqtt drops it too)
                conn._last_data_in = time.monotonic()
                try:
                    handler._handle_puback_packet(0x40, data[2:])
                except Exception:  # as gmqtt's dispatcher: log, keep the connection
                    log.exception("error handling PUBACK")
                return
        buf = self._unparsed + data if self._unparsed else data
        parsed = self._read_packet(buf)  # gmqtt's parser; calls connection.put_package per packet
        if parsed < 0:  # a malformed length: the stream cannot be re-synchronised
            self._unparsed = b""
            log.warning("malformed MQTT packet length from the broker; closing the connection")
            if self._transport is not None:
                self._transport.close()
            return
        self._unparsed = buf[parsed:] if parsed < len(buf) else b""


class _GmqttClient(gmqtt.Client):
    """gmqtt.Client whose connections parse received packets in ``data_received``."""

    async def _create_connection(self, *args: object, **kwargs: object) -> object:
        connection = await super()._create_connection(*args, **kwargs)
        proto = getattr(connection, "_protocol", None)
        # Nothing can have been received yet (the broker speaks only after our CONNECT, which is
        # sent after this returns), so switching the parser here loses no bytes. Only gmqtt's
        # own protocol class is switched: anything else keeps gmqtt's read loop.
        # The transport is told again (set_protocol): uvloop keeps the protocol's bound
        # data_received from connection time, and would go on calling gmqtt's.
        transport = getattr(connection, "_transport", None)
        if type(proto) is MQTTProtocol and transport is not None:
            proto.__class__ = _DirectReadProtocol
            transport.set_protocol(proto)
        return connection


class MqttClient:
    def __init__(
        self,
        broker: BrokerAddress | BrokerEndpoint | str,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes, int, bool] | None = None,
        clean_session: bool = True,
        reconnect_delay_s: float = 1.0,
        mqtt_version: int = gmqtt.constants.MQTTv311,
    ) -> None:
        if isinstance(broker, str):
            broker = parse_broker_url(broker)
        elif isinstance(broker, BrokerEndpoint):
            broker = from_endpoint(broker)
        self.address: BrokerAddress = broker
        self.client_id = client_id or f"gridedge-{uuid.uuid4().hex[:12]}"
        will_msg = gmqtt.Message(will[0], will[1], qos=will[2], retain=will[3]) if will else None
        self._client = _GmqttClient(
            self.client_id, clean_session=clean_session, will_message=will_msg
        )
        self._client.set_config({"reconnect_retries": -1, "reconnect_delay": reconnect_delay_s})
        if broker.username:
            self._client.set_auth_credentials(broker.username, broker.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._subs: list[_Sub] = []
        self._connected = asyncio.Event()
        self._version = mqtt_version
        self._topics: dict[str, bytes] = {}  # encoded topics of the lean publish path
        self.messages_in = 0
        self.messages_out = 0
        self.handler_errors = 0

    # -- connection ---------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 10.0) -> MqttClient:
        try:
            await asyncio.wait_for(
                self._client.connect(
                    self.address.host,
                    self.address.port,
                    ssl=self.address.ssl_context(),
                    keepalive=self.address.keepalive_s,
                    version=self._version,
                ),
                timeout_s,
            )
        except (OSError, TimeoutError, gmqtt.mqtt.handler.MQTTConnectError) as exc:
            raise BrokerUnavailable(
                f"cannot connect to broker {self.address.url}: {exc or type(exc).__name__}"
            ) from exc
        await asyncio.wait_for(self._connected.wait(), timeout_s)
        return self

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set() and self._client.is_connected

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def disconnect(self) -> None:
        self._connected.clear()
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            await asyncio.wait_for(self._client.disconnect(), 5)

    def _on_connect(self, client: gmqtt.Client, flags: int, rc: int, properties: object) -> None:
        self._connected.set()
        for sub in self._subs:
            client.subscribe(sub.pattern, qos=sub.qos)

    def _on_disconnect(self, client: gmqtt.Client, packet: object, exc: object = None) -> None:
        self._connected.clear()

    # -- messages -----------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes | str | Message, qos: int = 0, retain: bool = False
    ) -> None:
        if isinstance(payload, Message):
            payload = payload.to_json()
        if not (
            qos <= 1
            and type(payload) is bytes
            and self._version == gmqtt.constants.MQTTv311
            and self._publish_311(topic, payload, qos, retain)
        ):
            self._client.publish(topic, payload, qos=qos, retain=retain)
        self.messages_out += 1

    def _publish_311(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """gmqtt's ``Client.publish`` for the common case, without its per-message objects.
        False: not the common case, let gmqtt do it."""
        gm = self._client
        conn = gm._connection
        proto = getattr(conn, "_protocol", None)
        if proto is None or gm._connection_state.protocol_version != gmqtt.constants.MQTTv311:
            return False
        encoded = self._topics.get(topic)
        if encoded is None:
            if len(self._topics) > 1024:  # apps publishing on ever new topics: keep it bounded
                self._topics.clear()
            encoded = self._topics[topic] = encode_topic(topic)
        if len(encoded) + len(payload) + 2 > 268_435_455:
            return False  # gmqtt refuses it before taking a packet id; take none here either
        mid = proto.id_generator.next_id() if qos else None
        packet = publish_packet(encoded, payload, qos, retain, mid)
        proto.write_data(packet)  # gmqtt's: stamps the keepalive clock, skips a closed socket
        if qos:
            gm._persistent_storage.push_message(mid, packet)  # replayed after a reconnect
        return True

    def subscribe(self, pattern: str, handler: Handler, qos: int = 0) -> None:
        self._subs.append(_Sub(pattern, qos, handler))
        if self.is_connected:
            self._client.subscribe(pattern, qos=qos)

    def unsubscribe(self, pattern: str) -> None:
        self._subs = [s for s in self._subs if s.pattern != pattern]
        if self.is_connected:
            self._client.unsubscribe(pattern)

    async def _on_message(
        self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: object
    ) -> int:
        self.messages_in += 1
        for sub in self._subs:
            if not topic_matches_sub(sub.pattern, topic):
                continue
            try:
                result = sub.handler(topic, payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.handler_errors += 1
                if not sub.failed_once:
                    sub.failed_once = True
                    log.exception(
                        "MQTT handler for %s failed (further failures counted, not logged)",
                        sub.pattern,
                    )
        return 0
