"""DAQ and actuator backends: where a node's measurements come from and what it can move.

``make_backends(kind, options)`` is what the node CLI calls with ``--backend KIND`` and its
options; every kind returns ``(DaqBackend | None, ActuatorBackend | None)``:

| kind | DAQ | actuators | options |
|---|---|---|---|
| ``twin`` | the twin's simulated DAQ | its relay/switches | ``url``, ``point`` (default: the device id), ``rate_hz``, ``customer_id`` (relay, phase selector), ``switches`` (ids it may operate, comma-separated), ``timeout_s`` |
| ``pzem`` | PZEM-004T over Modbus RTU | Modbus relay board (optional) | ``port`` or ``host``, ``baudrate``, ``address``, ``phase``, ``timeout_s``, ``retries``; ``relay_address``, ``relay_coil``, ``switch_coils``, ``phase_register`` |
| ``replay`` | COMTRADE/CSV playback | none | ``file``, ``loop``, ``phase``, ``rms_cycles`` |
| ``none`` | none | none | — (service hosts: fog/cloud apps need no DAQ) |

The twin client is imported only when asked for, so a meter that talks to real hardware does not
load the twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridedge.clock import Clock, default_clock
from gridedge.node.appapi import ActuatorBackend, DaqBackend

KINDS = ("twin", "pzem", "replay", "none")


class BackendConfigError(ValueError):
    """A backend option is missing or wrong; the message names it."""


def _take(options: dict[str, Any], known: set[str], kind: str) -> dict[str, Any]:
    extra = sorted(set(options) - known)
    if extra:
        raise BackendConfigError(
            f"backend {kind!r}: unknown option(s) {extra}; known: {sorted(known)}"
        )
    return dict(options)


def _int(opts: dict[str, Any], name: str, kind: str, convert: type = int) -> None:
    """Options arrive as strings from the CLI (``--daq-opt KEY=VALUE``) or typed from code."""
    if name in opts and opts[name] is not None:
        try:
            opts[name] = convert(opts[name])
        except (TypeError, ValueError) as exc:
            what = "an integer" if convert is int else "a number"
            raise BackendConfigError(
                f"backend {kind!r}: option {name!r} must be {what}, got {opts[name]!r}"
            ) from exc


def _bool(opts: dict[str, Any], name: str, kind: str) -> None:
    value = opts.get(name)
    if isinstance(value, str):
        low = value.strip().lower()
        if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise BackendConfigError(f"backend {kind!r}: option {name!r} must be true or false")
        opts[name] = low in ("1", "true", "yes", "on")


def _coils(value: Any, kind: str) -> dict[str, int]:
    """``{"SW1": 1}`` or, from the CLI, ``"SW1:1,SW2:2"``."""
    if isinstance(value, str):
        pairs = [p.split(":", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise BackendConfigError(
                f"backend {kind!r}: option 'switch_coils' must look like SW1:1,SW2:2"
            )
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise BackendConfigError(
            f"backend {kind!r}: option 'switch_coils' must map switch ids to coil numbers"
        )
    try:
        return {str(k): int(v) for k, v in value.items()}
    except (TypeError, ValueError) as exc:
        raise BackendConfigError(
            f"backend {kind!r}: option 'switch_coils' coil numbers must be integers"
        ) from exc


def make_backends(
    kind: str,
    options: dict[str, Any] | None = None,
    *,
    device_id: str = "meter",
    clock: Clock | None = None,
) -> tuple[DaqBackend | None, ActuatorBackend | None]:
    options = dict(options or {})
    clock = clock or default_clock()
    if kind == "none":
        _take(options, set(), kind)
        return None, None
    if kind == "pzem":
        return _pzem(options, device_id, clock)
    if kind == "replay":
        return _replay(options, device_id, clock)
    if kind == "twin":
        return _twin(options, device_id)
    raise BackendConfigError(f"backend kind {kind!r} is not one of {', '.join(KINDS)}")


def _twin(options: dict[str, Any], device_id: str) -> tuple[DaqBackend, ActuatorBackend]:
    """The twin's simulated DAQ and switchgear over its network interface (one HTTP pool)."""
    opts = _take(
        options, {"url", "point", "rate_hz", "customer_id", "switches", "timeout_s"}, "twin"
    )
    if not opts.get("url"):
        raise BackendConfigError(
            "backend 'twin': option 'url' (the twin's address, e.g. http://127.0.0.1:8300) "
            "is required"
        )
    _int(opts, "rate_hz", "twin", float)
    _int(opts, "timeout_s", "twin", float)
    switches = opts.get("switches")
    if isinstance(switches, str):
        switches = {s.strip() for s in switches.split(",") if s.strip()}
    elif switches is not None:
        switches = set(switches)
    try:
        from gridedge.twin.client import TwinActuators, TwinClient, TwinDaq  # lazy
    except ImportError as exc:
        raise BackendConfigError(
            f"backend 'twin': the twin client is not available in this installation ({exc})"
        ) from exc
    client = TwinClient(str(opts["url"]), timeout_s=opts.get("timeout_s") or 30.0)
    daq = TwinDaq(
        client,
        str(opts.get("point") or device_id),
        device_id=device_id,
        rate_hz=opts.get("rate_hz"),
    )
    act = TwinActuators(client, customer_id=opts.get("customer_id"), switches=switches)
    return daq, act


def _pzem(
    options: dict[str, Any], device_id: str, clock: Clock
) -> tuple[DaqBackend, ActuatorBackend | None]:
    from gridedge.node.backends.modbus_relay import ModbusRelay
    from gridedge.node.backends.pzem import PzemDaq

    known = {
        "port",
        "host",
        "tcp_port",
        "rtu_over_tcp",
        "baudrate",
        "address",
        "phase",
        "timeout_s",
        "retries",
        "relay_address",
        "relay_coil",
        "switch_coils",
        "phase_register",
    }
    opts = _take(options, known, "pzem")
    for name in (
        "baudrate",
        "address",
        "retries",
        "tcp_port",
        "relay_address",
        "relay_coil",
        "phase_register",
    ):
        _int(opts, name, "pzem")
    _int(opts, "timeout_s", "pzem", float)
    _bool(opts, "rtu_over_tcp", "pzem")
    if not opts.get("port") and not opts.get("host"):
        raise BackendConfigError(
            "backend 'pzem': option 'port' (serial device, e.g. /dev/ttyUSB0) or 'host' "
            "(RS485-to-Ethernet gateway) is required"
        )
    relay_keys = {"relay_address", "relay_coil", "switch_coils", "phase_register"}
    relay_opts = {k: opts.pop(k) for k in list(opts) if k in relay_keys}
    try:
        daq = PzemDaq(device_id=device_id, clock=clock, **opts)
    except ValueError as exc:
        raise BackendConfigError(f"backend 'pzem': {exc}") from exc
    actuators = None
    if relay_opts:
        switches = _coils(relay_opts.get("switch_coils") or {}, "pzem")
        # the relay board shares the RS485 line (and so the link) with the meter
        actuators = ModbusRelay(
            daq.link,
            address=int(relay_opts.get("relay_address", 2)),
            relay_coil=relay_opts.get("relay_coil", 0),
            switch_coils=switches,
            phase_register=relay_opts.get("phase_register"),
        )
    return daq, actuators


def _replay(options: dict[str, Any], device_id: str, clock: Clock) -> tuple[DaqBackend, None]:
    from gridedge.node.backends.replay import ReplayDaq, ReplayError

    opts = _take(options, {"file", "loop", "phase", "rms_cycles", "point_id"}, "replay")
    path = opts.pop("file", None)
    if not path:
        raise BackendConfigError("backend 'replay': option 'file' (.cfg or .csv) is required")
    _int(opts, "rms_cycles", "replay")
    _bool(opts, "loop", "replay")
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".cfg", ".cff"):
            return ReplayDaq.from_comtrade(path, clock, device_id=device_id, **opts), None
        if suffix == ".csv":
            return ReplayDaq.from_csv(path, clock, device_id=device_id, **opts), None  # type: ignore[return-value]
    except ReplayError as exc:
        raise BackendConfigError(f"backend 'replay': {exc}") from exc
    raise BackendConfigError(
        f"backend 'replay': option 'file' must be a COMTRADE .cfg or a .csv, got {path}"
    )
