"""One Modbus connection (serial RTU, or TCP) with errors a field engineer can act on.

pymodbus reports a wrong baud rate, a wrong slave address, a broken wire and a corrupted frame
all as "No response received"; this wrapper watches the raw bytes (``trace_packet``) so the
error can tell "nothing came back" from "bytes came back but no valid frame (CRC/garbled)", and
names the port, the slave address and the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "slave device failure",
    5: "acknowledge",
    6: "slave device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusError(RuntimeError):
    """A Modbus request failed; the message says where, what and the likely cause."""


@dataclass(frozen=True)
class ModbusLinkConfig:
    """Where the device is. Serial: ``port`` (e.g. /dev/ttyUSB0) with 8N1 framing at
    ``baudrate``. TCP: ``host``/``tcp_port``; ``rtu_over_tcp`` for serial-to-Ethernet gateways
    that pass RTU frames through unchanged."""

    port: str | None = None
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    host: str | None = None
    tcp_port: int = 502
    rtu_over_tcp: bool = False
    timeout_s: float = 1.0
    retries: int = 1

    def __post_init__(self) -> None:
        if (self.port is None) == (self.host is None):
            raise ValueError("give exactly one of port (serial) or host (TCP)")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity must be N, E or O, got {self.parity!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    def describe(self) -> str:
        if self.port:
            return f"{self.port} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"
        return f"{self.host}:{self.tcp_port}" + (" (RTU over TCP)" if self.rtu_over_tcp else "")


class ModbusLink:
    """Connects lazily, serialises requests (one bus, one request at a time), reconnects after
    a failure, and turns every failure into a :class:`ModbusError`."""

    def __init__(
        self, config: ModbusLinkConfig, *, custom_pdus: list[type[ModbusPDU]] | None = None
    ) -> None:
        self.config = config
        self._custom = list(custom_pdus or [])
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._rx_bytes = 0

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_bytes += len(data)
        return data

    def _make_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        c = self.config
        client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if c.port:
            client = AsyncModbusSerialClient(
                c.port,
                framer=FramerType.RTU,
                baudrate=c.baudrate,
                bytesize=c.bytesize,
                parity=c.parity,
                stopbits=c.stopbits,
                timeout=c.timeout_s,
                retries=c.retries,
                reconnect_delay=0,
                trace_packet=self._trace,
            )
        else:
            client = AsyncModbusTcpClient(
                c.host or "127.0.0.1",
                port=c.tcp_port,
                framer=FramerType.RTU if c.rtu_over_tcp else FramerType.SOCKET,
                timeout=c.timeout_s,
                retries=c.retries,
                reconnect_delay=0,
                trace_packet=self._trace,
            )
        for pdu in self._custom:
            client.register(pdu)
        return client

    async def _connected(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
        self._client = self._make_client()
        try:
            ok = await asyncio.wait_for(self._client.connect(), self.config.timeout_s + 1.0)
        except (TimeoutError, OSError) as exc:
            ok = False
            reason = str(exc) or type(exc).__name__
        else:
            reason = "connect() returned False"
        if not ok:
            self._client.close()
            self._client = None
            raise ModbusError(f"cannot open Modbus link {self.config.describe()}: {reason}")
        return self._client

    async def call(
        self,
        what: str,
        device_id: int,
        request: Callable[[Any], Awaitable[ModbusPDU]],
    ) -> ModbusPDU:
        """Run one request (``request(client)``) and return its response, or raise ModbusError."""
        async with self._lock:
            client = await self._connected()
            rx_before = self._rx_bytes
            budget = self.config.timeout_s * (self.config.retries + 1) + 1.0
            where = f"{what} from slave {device_id} on {self.config.describe()}"
            try:
                response = await asyncio.wait_for(request(client), budget)
            except (TimeoutError, ModbusException) as exc:
                got = self._rx_bytes - rx_before
                if got:
                    cause = (
                        f"{got} bytes came back but no valid frame (CRC error or garbled "
                        "response: check wiring, termination and baud rate)"
                    )
                else:
                    cause = (
                        f"no answer within {self.config.timeout_s:g} s × "
                        f"{self.config.retries + 1} tries (check power, wiring, baud rate "
                        "and slave address)"
                    )
                # a half-read frame may still arrive: start the next request on a fresh link
                client.close()
                self._client = None
                raise ModbusError(f"{where}: {cause} [{exc}]") from exc
            if response.isError():
                code = getattr(response, "exception_code", 0)
                raise ModbusError(
                    f"{where}: the device refused the request with exception {code} "
                    f"({EXCEPTION_NAMES.get(code, 'unknown')})"
                )
            return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
