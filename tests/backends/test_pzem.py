"""PZEM-004T backend and Modbus relay against pymodbus' own serial server over a tty pair."""

from __future__ import annotations

import math
import time

import pytest

from gridedge.node.backends import BackendConfigError, make_backends
from gridedge.node.backends.modbus_link import ModbusError
from gridedge.node.backends.modbus_relay import ModbusRelay, UnknownTarget
from gridedge.node.backends.pzem import PzemDaq
from tests.backends.modbus_sim import SimulatedBus, device, pzem_registers

VALUES = dict(
    voltage_v=231.4,
    current_a=70.123,  # > 65.535 A: exercises the high word
    power_w=16134.5,  # > 6553.5 W: high word
    energy_wh=123_456,
    frequency_hz=49.9,
    pf=0.99,
)


@pytest.fixture
async def bus():
    b = await SimulatedBus(
        [
            device(1, pzem_registers(**VALUES)),
            device(3, pzem_registers(**{**VALUES, "voltage_v": 0.0, "current_a": 0.0}, alarm=True)),
            device(5, pzem_registers(**VALUES)[:8]),  # a device without registers 8-9
        ]
    ).start()
    yield b
    await b.stop()


def _pzem(bus: SimulatedBus, **kw) -> PzemDaq:
    kw.setdefault("timeout_s", 0.3)
    kw.setdefault("retries", 0)
    return PzemDaq(bus.line.client_tty, device_id="SM-1", **kw)


async def test_reads_datasheet_registers(bus) -> None:
    daq = _pzem(bus, phase="b")
    try:
        t = await daq.read_rms()
    finally:
        daq.close()
    assert t.device_id == "SM-1" and t.phase == "b"
    assert t.voltage_v == [pytest.approx(231.4)]
    assert t.current_a == [pytest.approx(70.123)]
    assert t.active_power_w == [pytest.approx(16134.5)]
    assert t.energy_wh == 123_456
    assert t.frequency_hz == pytest.approx(49.9)
    assert t.power_factor == [pytest.approx(0.99)]
    s = 231.4 * 70.123
    assert t.reactive_power_var[0] == pytest.approx(math.sqrt(s * s - 16134.5**2), rel=1e-3)
    assert daq.last is not None and daq.last.alarm is False


async def test_alarm_status_and_second_address(bus) -> None:
    daq = _pzem(bus, address=3)
    try:
        r = await daq.read()
    finally:
        daq.close()
    assert r.alarm is True and r.voltage_v == 0.0


async def test_reset_energy_and_alarm_threshold(bus) -> None:
    daq = _pzem(bus)
    try:
        assert (await daq.read()).energy_wh == 123_456
        await daq.reset_energy()
        assert (await daq.read()).energy_wh == 0
        assert await daq.read_alarm_threshold_w() == 2300
        assert await daq.set_alarm_threshold_w(1500) == 1500
    finally:
        daq.close()


async def test_no_waveforms(bus) -> None:
    daq = _pzem(bus)
    with pytest.raises(NotImplementedError, match="no waveform buffer"):
        await daq.read_window(0.1, 0.1)


async def test_garbled_answer_is_a_clear_error_and_the_link_recovers(bus) -> None:
    daq = _pzem(bus)
    bus.line.mangle = lambda d: d[:3] + bytes([d[3] ^ 0x5A]) + d[4:] if len(d) > 4 else d
    try:
        with pytest.raises(ModbusError, match=r"no valid frame \(CRC error or garbled") as err:
            await daq.read()
        assert "slave 1" in str(err.value) and bus.line.client_tty in str(err.value)
        bus.line.mangle = None
        assert (await daq.read()).voltage_v == pytest.approx(231.4)
    finally:
        daq.close()


async def test_silent_device_times_out_without_hanging(bus) -> None:
    daq = _pzem(bus, timeout_s=0.3, retries=1)
    bus.line.mangle = lambda d: b""  # the answer never reaches us (broken RX wire)
    t = time.monotonic()
    try:
        with pytest.raises(ModbusError, match=r"no answer within 0.3 s × 2 tries"):
            await daq.read_rms()
    finally:
        daq.close()
    assert time.monotonic() - t < 3.0


async def test_exception_response_is_named(bus) -> None:
    daq = _pzem(bus, address=5)
    try:
        with pytest.raises(ModbusError, match=r"exception 2 \(illegal data address\)"):
            await daq.read()
    finally:
        daq.close()


async def test_missing_serial_port_is_a_clear_error(tmp_path) -> None:
    daq = PzemDaq(str(tmp_path / "ttyUSB9"), timeout_s=0.2, retries=0)
    with pytest.raises(ModbusError, match=r"cannot open Modbus link .*ttyUSB9"):
        await daq.read()


async def test_modbus_relay_reports_state_read_back(bus) -> None:
    daq = _pzem(bus)
    relay = ModbusRelay(
        daq.link, address=1, relay_coil=0, switch_coils={"SW7": 3}, phase_register=3
    )
    try:
        assert await relay.set_relay(True) is True
        assert await relay.relay_state() is True
        assert await relay.set_relay(False) is False
        assert await relay.operate_switch("SW7", True) is True
        assert await relay.read_coil(3) is True and await relay.read_coil(0) is False
        assert await relay.select_phase("c") == "c"
        assert relay.targets() == {"relay", "SW7", "phase-selector"}
        with pytest.raises(UnknownTarget, match="SW9"):
            await relay.operate_switch("SW9", True)
    finally:
        relay.close()


async def test_make_backends_pzem(bus) -> None:
    # options as the node CLI passes them (--daq-opt KEY=VALUE: all strings)
    daq, act = make_backends(
        "pzem",
        {
            "port": bus.line.client_tty,
            "address": "1",
            "phase": "c",
            "timeout_s": "0.3",
            "retries": "0",
            "relay_address": "1",
            "switch_coils": "SW2:2,SW3:3",
        },
        device_id="M9",
    )
    try:
        t = await daq.read_rms()
        assert (t.device_id, t.phase, t.voltage_v) == ("M9", "c", [pytest.approx(231.4)])
        assert await act.operate_switch("SW2", True) is True
    finally:
        daq.close()
    with pytest.raises(BackendConfigError, match="'port'"):
        make_backends("pzem", {"baudrate": 9600})
    with pytest.raises(BackendConfigError, match="'address' must be an integer"):
        make_backends("pzem", {"port": "/dev/null", "address": "one"})
    with pytest.raises(BackendConfigError, match="'switch_coils' must look like"):
        make_backends("pzem", {"port": "/dev/null", "relay_address": "2", "switch_coils": "SW1"})
    with pytest.raises(BackendConfigError, match="'timeout_s' must be a number"):
        make_backends("pzem", {"port": "/dev/null", "timeout_s": "soon"})
    with pytest.raises(BackendConfigError, match="phase must be a, b or c"):
        make_backends("pzem", {"port": "/dev/null", "phase": "d"})
