"""PZEM-004T v3.0 single-phase meter over Modbus RTU (seed 004 §4.5: the thesis' smart meter).

Register map (PZEM-004T V3.0 user manual, Modbus-RTU, 9600 8N1, slave address 0x01–0xF7, 0xF8
is the "general" address for a single slave on the line):

| input register (fc 0x04) | value | resolution |
|---|---|---|
| 0x0000 | voltage | 0.1 V |
| 0x0001 / 0x0002 | current, low / high 16 bits | 0.001 A |
| 0x0003 / 0x0004 | active power, low / high 16 bits | 0.1 W |
| 0x0005 / 0x0006 | active energy, low / high 16 bits | 1 Wh |
| 0x0007 | frequency | 0.1 Hz |
| 0x0008 | power factor | 0.01 |
| 0x0009 | alarm status | 0xFFFF alarm, 0x0000 none |

Holding registers (fc 0x03 read, 0x06 write): 0x0001 power alarm threshold (1 W), 0x0002 slave
address. Function 0x42 resets the energy register (request: address, 0x42, CRC; the reply echoes
it, or 0xC2 + abnormal code on error).

The module has no waveforms: :meth:`PzemDaq.read_window` raises NotImplementedError, and apps that
need samples (fault capture) must run on a meter with a sampling DAQ.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymodbus.pdu import ModbusPDU

from gridedge.clock import Clock, default_clock
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.waveform import WaveformWindow
from gridedge.node.backends.modbus_link import ModbusError, ModbusLink, ModbusLinkConfig

INPUT_REGISTERS = 10
REG_ALARM_THRESHOLD = 0x0001
REG_ADDRESS = 0x0002
ALARM_ON = 0xFFFF


class ResetEnergyPdu(ModbusPDU):
    """PZEM function 0x42 (reset energy): no data either way; a 4-byte RTU frame."""

    function_code = 0x42
    rtu_frame_size = 4

    def encode(self) -> bytes:
        return b""

    def decode(self, data: bytes) -> None:
        return None

    async def datastore_update(self, context, device_id):  # type: ignore[no-untyped-def]
        """Server side (pymodbus simulator in tests): clear input registers 0x0005–0x0006."""
        await context.async_setValues(device_id, 4, 0x0005, [0, 0])
        return ResetEnergyPdu(dev_id=device_id, transaction_id=self.transaction_id)


@dataclass(frozen=True)
class PzemReading:
    voltage_v: float
    current_a: float
    active_power_w: float
    energy_wh: int
    frequency_hz: float
    power_factor: float
    alarm: bool

    @classmethod
    def from_registers(cls, regs: list[int]) -> PzemReading:
        if len(regs) != INPUT_REGISTERS:
            raise ModbusError(
                f"PZEM-004T answered {len(regs)} input registers, expected {INPUT_REGISTERS}"
            )
        if regs[9] not in (0, ALARM_ON):
            raise ModbusError(
                f"PZEM-004T alarm status register holds 0x{regs[9]:04X}, expected 0x0000 or "
                "0xFFFF (is this really a PZEM-004T v3.0?)"
            )

        def u32(lo: int, hi: int) -> int:
            return lo | (hi << 16)  # the PZEM sends the low word first

        return cls(
            voltage_v=regs[0] / 10.0,
            current_a=u32(regs[1], regs[2]) / 1000.0,
            active_power_w=u32(regs[3], regs[4]) / 10.0,
            energy_wh=u32(regs[5], regs[6]),
            frequency_hz=regs[7] / 10.0,
            power_factor=regs[8] / 100.0,
            alarm=regs[9] == ALARM_ON,
        )


class PzemDaq:
    """A :class:`~gridedge.node.appapi.DaqBackend` reading one PZEM-004T.

    ``phase`` says which phase of the grid the (single-phase) module measures; telemetry then
    carries one-element arrays and ``phase``. Q is derived from P and PF (the module reports no
    reactive power and no sign of Q: it is reported as ≥ 0)."""

    def __init__(
        self,
        port: str | None = None,
        *,
        baudrate: int = 9600,
        address: int = 1,
        phase: str = "a",
        device_id: str = "pzem",
        timeout_s: float = 1.0,
        retries: int = 1,
        host: str | None = None,
        tcp_port: int = 502,
        rtu_over_tcp: bool = True,
        clock: Clock | None = None,
    ) -> None:
        if not 1 <= address <= 0xF8:
            raise ValueError(f"address must be 1..247 (or 248, the general address), got {address}")
        if phase not in ("a", "b", "c"):
            raise ValueError(f"phase must be a, b or c, got {phase!r}")
        self.link = ModbusLink(
            ModbusLinkConfig(
                port=port,
                baudrate=baudrate,
                host=host,
                tcp_port=tcp_port,
                rtu_over_tcp=rtu_over_tcp,
                timeout_s=timeout_s,
                retries=retries,
            ),
            custom_pdus=[ResetEnergyPdu],
        )
        self.address = address
        self.phase = phase
        self.device_id = device_id
        self.clock = clock or default_clock()
        self.last: PzemReading | None = None

    async def read(self) -> PzemReading:
        resp = await self.link.call(
            "reading input registers 0x0000-0x0009 (fc 0x04)",
            self.address,
            lambda c: c.read_input_registers(0, count=INPUT_REGISTERS, device_id=self.address),
        )
        self.last = PzemReading.from_registers(list(resp.registers))
        return self.last

    async def read_rms(self) -> Telemetry:
        r = await self.read()
        s = r.voltage_v * r.current_a
        q = max(s * s - r.active_power_w**2, 0.0) ** 0.5
        return Telemetry(
            device_id=self.device_id,
            ts=self.clock.utcnow(),
            voltage_v=[r.voltage_v],
            current_a=[r.current_a],
            active_power_w=[r.active_power_w],
            reactive_power_var=[round(q, 3)],
            power_factor=[r.power_factor],
            frequency_hz=r.frequency_hz if r.frequency_hz > 0 else None,
            energy_wh=float(r.energy_wh),
            phase=self.phase,  # type: ignore[arg-type]
        )

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        raise NotImplementedError(
            "the PZEM-004T reports RMS values only and has no waveform buffer; fault capture "
            "needs a sampling DAQ (twin or replay backend, or a 3SMA board)"
        )

    async def reset_energy(self) -> None:
        """Function 0x42: the energy register restarts from 0 Wh."""
        await self.link.call(
            "resetting energy (fc 0x42)",
            self.address,
            lambda c: c.execute(False, ResetEnergyPdu(dev_id=self.address)),
        )

    async def read_alarm_threshold_w(self) -> int:
        resp = await self.link.call(
            "reading the power alarm threshold (holding register 0x0001)",
            self.address,
            lambda c: c.read_holding_registers(
                REG_ALARM_THRESHOLD, count=1, device_id=self.address
            ),
        )
        return int(resp.registers[0])

    async def set_alarm_threshold_w(self, watts: int) -> int:
        """Write the over-power alarm threshold (1 W resolution); returns the value read back."""
        if not 0 <= watts <= 0xFFFF:
            raise ValueError(f"watts must be 0..65535, got {watts}")
        await self.link.call(
            "writing the power alarm threshold (fc 0x06, register 0x0001)",
            self.address,
            lambda c: c.write_register(REG_ALARM_THRESHOLD, watts, device_id=self.address),
        )
        return await self.read_alarm_threshold_w()

    def close(self) -> None:
        self.link.close()
