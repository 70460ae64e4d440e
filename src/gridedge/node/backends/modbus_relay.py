"""Relay, switch and phase-selector outputs on a Modbus relay module.

The cheapest way to give a retrofitted meter a breaker it can open (seed 002's Operator, seed
004's relay) is an off-the-shelf Modbus RTU relay board: each output is a coil (fc 0x05 write,
fc 0x01 read back). A phase selector (seed 002 "phase switching") is a holding register holding
0/1/2 for phase a/b/c (fc 0x06 write, fc 0x03 read back).

Every operation reads the output back after writing, and returns what it read: the
:class:`~gridedge.node.appapi.ActuatorBackend` contract is "the actual state after acting",
which FLISR waits for.
"""

from __future__ import annotations

from gridedge.node.backends.modbus_link import ModbusError, ModbusLink, ModbusLinkConfig

PHASE_CODES = {"a": 0, "b": 1, "c": 2}


class UnknownTarget(LookupError):
    """The device has no such relay/switch/selector; the message lists what it has."""


class ModbusRelay:
    """An :class:`~gridedge.node.appapi.ActuatorBackend` over Modbus coils and a register.

    ``relay_coil`` is the customer relay's coil (None: no relay); ``switch_coils`` maps switch ids
    (as in the topology) to coils; ``phase_register`` is the phase selector's holding register
    (None: no selector)."""

    def __init__(
        self,
        link: ModbusLink | ModbusLinkConfig,
        *,
        address: int = 1,
        relay_coil: int | None = 0,
        switch_coils: dict[str, int] | None = None,
        phase_register: int | None = None,
    ) -> None:
        self.link = link if isinstance(link, ModbusLink) else ModbusLink(link)
        self.address = address
        self.relay_coil = relay_coil
        self.switch_coils = dict(switch_coils or {})
        self.phase_register = phase_register

    def targets(self) -> set[str]:
        """What commands may name: "relay", the switch ids and "phase-selector"."""
        out = set(self.switch_coils)
        if self.relay_coil is not None:
            out.add("relay")
        if self.phase_register is not None:
            out.add("phase-selector")
        return out

    async def _write_read_coil(self, coil: int, closed: bool, what: str) -> bool:
        await self.link.call(
            f"setting {what} (coil {coil}) {'closed' if closed else 'open'}",
            self.address,
            lambda c: c.write_coil(coil, closed, device_id=self.address),
        )
        return await self.read_coil(coil, what)

    async def read_coil(self, coil: int, what: str = "output") -> bool:
        resp = await self.link.call(
            f"reading back {what} (coil {coil})",
            self.address,
            lambda c: c.read_coils(coil, count=1, device_id=self.address),
        )
        return bool(resp.bits[0])

    async def set_relay(self, closed: bool) -> bool:
        if self.relay_coil is None:
            raise UnknownTarget(f"this device has no relay (it has: {sorted(self.targets())})")
        return await self._write_read_coil(self.relay_coil, closed, "the relay")

    async def relay_state(self) -> bool | None:
        if self.relay_coil is None:
            return None
        return await self.read_coil(self.relay_coil, "the relay")

    async def operate_switch(self, switch_id: str, closed: bool) -> bool:
        coil = self.switch_coils.get(switch_id)
        if coil is None:
            raise UnknownTarget(
                f"this device operates no switch {switch_id!r} (it has: {sorted(self.targets())})"
            )
        return await self._write_read_coil(coil, closed, f"switch {switch_id}")

    async def select_phase(self, phase: str) -> str:
        if self.phase_register is None:
            raise UnknownTarget(
                f"this device has no phase selector (it has: {sorted(self.targets())})"
            )
        if phase not in PHASE_CODES:
            raise ValueError(f"phase must be a, b or c, got {phase!r}")
        reg = self.phase_register
        await self.link.call(
            f"selecting phase {phase} (register {reg})",
            self.address,
            lambda c: c.write_register(reg, PHASE_CODES[phase], device_id=self.address),
        )
        resp = await self.link.call(
            f"reading back the phase selector (register {reg})",
            self.address,
            lambda c: c.read_holding_registers(reg, count=1, device_id=self.address),
        )
        code = int(resp.registers[0])
        for name, value in PHASE_CODES.items():
            if value == code:
                return name
        raise ModbusError(f"phase selector register {reg} reads {code}, not 0/1/2 (a/b/c)")

    def close(self) -> None:
        self.link.close()
