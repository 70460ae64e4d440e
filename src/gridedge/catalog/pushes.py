"""The catalog's connection to the management broker.

The catalog must keep serving REST while the broker is away (seed 001 §IV-B: a device that misses
a push gets the change at its next check-in). So publishing never blocks or fails: while the
broker is unreachable the latest payload per topic is kept, and sent as soon as it is back. The
broker's state is logged once when lost and once when back, not on every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gridedge.broker.client import BrokerUnavailable, MqttClient
from gridedge.contracts.catalog import BrokerEndpoint
from gridedge.contracts.common import Message

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], object]


class MgmtPublisher:
    def __init__(self, endpoint: BrokerEndpoint, client_id: str = "gridedge-catalog") -> None:
        self.endpoint = endpoint
        self.client = MqttClient(endpoint, client_id=client_id, reconnect_delay_s=0.5)
        self._pending: dict[str, tuple[bytes, int, bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self._was_connected: bool | None = None
        self._ever_connected = False
        self.published = 0

    def subscribe(self, pattern: str, handler: Handler, qos: int = 0) -> None:
        self.client.subscribe(pattern, handler, qos)  # type: ignore[arg-type]

    @property
    def connected(self) -> bool:
        return self.client.is_connected

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        await self._try_connect(3.0)
        self._task = asyncio.create_task(self._watch(), name="catalog-mgmt-watch")

    async def _try_connect(self, timeout_s: float) -> None:
        try:
            await self.client.connect(timeout_s=timeout_s)
            self._ever_connected = True
        except (BrokerUnavailable, TimeoutError, OSError):
            pass

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._flush()
        await self.client.disconnect()

    def publish(
        self, topic: str, payload: Message | bytes, qos: int = 1, retain: bool = True
    ) -> None:
        data = payload.to_json() if isinstance(payload, Message) else payload
        if self.client.is_connected:
            try:
                self.client.publish(topic, data, qos=qos, retain=retain)
                self.published += 1
                return
            except Exception:  # socket died between the check and the write
                log.debug("publish on %s failed; kept for the reconnect", topic)
        self._pending[topic] = (data, qos, retain)

    def _flush(self) -> None:
        if not self.client.is_connected:
            return
        pending, self._pending = self._pending, {}
        for topic, (data, qos, retain) in pending.items():
            self.publish(topic, data, qos, retain)

    async def _watch(self) -> None:
        """Log broker loss/recovery once each, flush the backlog, and retry the first connection
        (gmqtt reconnects by itself only a connection that once succeeded)."""
        while True:
            connected = self.client.is_connected
            if connected != self._was_connected:
                if connected and self._was_connected is not None:
                    log.info("management broker %s reachable again", self.endpoint.url)
                elif not connected:
                    log.warning(
                        "management broker %s unreachable; pushes are kept and sent when it is back",
                        self.endpoint.url,
                    )
                self._was_connected = connected
            if connected:
                self._flush()
            elif not self._ever_connected:
                await self._try_connect(1.0)
            await asyncio.sleep(0.25)
