"""pymodbus' own server as the device under test, over a real serial line.

A serial line is emulated with two pseudo-terminal pairs joined by a byte pump (what
``socat pty pty`` does, without needing socat): the backend opens one tty, pymodbus'
``ModbusSerialServer`` the other, and every byte crosses a real tty with RTU framing and CRC.
The pump can corrupt or swallow the server's answers to test garbled frames and timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gridedge.node.backends.pzem import ResetEnergyPdu


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


@dataclass
class SerialLine:
    """Two ttys (``client_tty``, ``server_tty``) joined by a pump on the event loop."""

    mangle: Callable[[bytes], bytes] | None = None  # applied to server -> client bytes
    to_client: int = 0
    to_server: int = 0
    _a: tuple[int, int, str] = field(default_factory=_pty)
    _b: tuple[int, int, str] = field(default_factory=_pty)

    @property
    def client_tty(self) -> str:
        return self._a[2]

    @property
    def server_tty(self) -> str:
        return self._b[2]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._a[0], self._pump, self._a[0], self._b[0], False)
        loop.add_reader(self._b[0], self._pump, self._b[0], self._a[0], True)

    def _pump(self, src: int, dst: int, to_client: bool) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if to_client:
            self.to_client += len(data)
            if self.mangle is not None:
                data = self.mangle(data)
        else:
            self.to_server += len(data)
        if data:
            os.write(dst, data)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self._a[0], self._b[0]):
            loop.remove_reader(fd)
        for fd in (*self._a[:2], *self._b[:2]):
            with contextlib.suppress(OSError):
                os.close(fd)


def pzem_registers(
    voltage_v: float,
    current_a: float,
    power_w: float,
    energy_wh: int,
    frequency_hz: float,
    pf: float,
    alarm: bool = False,
) -> list[int]:
    """The input registers a PZEM-004T holds for these values (low word first)."""
    cur = round(current_a * 1000)
    pw = round(power_w * 10)
    return [
        round(voltage_v * 10),
        cur & 0xFFFF,
        cur >> 16,
        pw & 0xFFFF,
        pw >> 16,
        energy_wh & 0xFFFF,
        energy_wh >> 16,
        round(frequency_hz * 10),
        round(pf * 100),
        0xFFFF if alarm else 0,
    ]


def device(
    dev_id: int,
    input_registers: list[int],
    *,
    holding: list[int] | None = None,
    coils: int = 8,
) -> SimDevice:
    return SimDevice(
        id=dev_id,
        simdata=(
            [SimData(0, count=coils, values=False, datatype=DataType.BITS)],
            [SimData(0, count=1, values=False, datatype=DataType.BITS)],
            [SimData(0, values=holding or [0, 2300, dev_id, 0], datatype=DataType.REGISTERS)],
            [SimData(0, values=input_registers, datatype=DataType.REGISTERS)],
        ),
    )


class SimulatedBus:
    """pymodbus ModbusSerialServer on the far end of a :class:`SerialLine`."""

    def __init__(self, devices: list[SimDevice], *, ignore_missing: bool = True) -> None:
        self.devices = devices
        self.ignore_missing = ignore_missing
        self.line = SerialLine()
        self.server: ModbusSerialServer | None = None

    async def start(self) -> SimulatedBus:
        self.line.start()
        self.server = ModbusSerialServer(
            self.devices,
            port=self.line.server_tty,
            baudrate=9600,
            ignore_missing_devices=self.ignore_missing,
            custom_pdu=[ResetEnergyPdu],
        )
        await self.server.serve_forever(background=True)
        await self._wait_ready()
        return self

    async def _wait_ready(self) -> None:
        """The serial server opens its tty asynchronously: probe until it answers."""
        probe = AsyncModbusSerialClient(
            self.line.client_tty, baudrate=9600, timeout=0.3, retries=0, reconnect_delay=0
        )
        await probe.connect()
        dev = self.devices[0].id
        try:
            for _ in range(40):
                try:
                    r = await probe.read_coils(0, count=1, device_id=dev)
                    if not r.isError():
                        return
                except Exception:
                    await asyncio.sleep(0.05)
            raise RuntimeError("pymodbus serial server did not come up")
        finally:
            probe.close()
            await asyncio.sleep(0.05)  # let a late byte drain before the test's client opens

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
        self.line.close()
