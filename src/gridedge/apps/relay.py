"""Actuation: executes :class:`~gridedge.contracts.commands.Command` s addressed to this device
(seed 001 §IV-B: FLISR opens and closes switches over MQTT and waits for their confirmation;
seed 002: on/off switching and phase switching of customers).

Subscribes to ``data/<id>/command``; for each command it drives ``ctx.actuators`` (the customer
relay, a switch by id, the phase selector) and answers a
:class:`~gridedge.contracts.commands.CommandResult` on ``data/<id>/command-result`` carrying the
state the actuator reports *after* acting — not the state that was asked for: FLISR must know a
switch that did not move. Commands run one at a time in arrival order. A command for a target the
device does not have, a malformed command, or one for another device is refused with a reason.
A command id seen before (an MQTT QoS 1 redelivery) is answered again without acting twice.

Parameters: ``timeout_s`` (10, per actuation), ``targets`` (optional list restricting which
targets this device accepts; default: whatever the actuator backend offers).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

from pydantic import ValidationError

from gridedge.apps.params import ParamError, number, unknown
from gridedge.contracts.commands import Command, CommandAction, CommandResult
from gridedge.contracts.telemetry import DeviceEvent, EventKind
from gridedge.contracts.topics import Plane, Stream, topic

NAME = "relay"
KNOWN = {"timeout_s", "targets"}
PHASE_SELECTOR = "phase-selector"
REMEMBER = 256
IDLE_PING_S = 5.0


class RelayApp:
    def __init__(self) -> None:
        self.timeout_s = 10.0
        self.allowed: set[str] | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._done: OrderedDict[str, CommandResult] = OrderedDict()

    def _apply(self, params: dict[str, Any]) -> None:
        unknown(params, KNOWN, NAME)
        timeout = number(params, "timeout_s", 10.0, gt=0, le=600, app=NAME)
        targets = params.get("targets")
        if targets is not None and (
            not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
        ):
            raise ParamError(f"{NAME} parameter 'targets' must be a list of target ids")
        assert timeout is not None
        self.timeout_s = timeout
        self.allowed = set(targets) if targets is not None else None

    def on_params(self, params: dict[str, Any]) -> None:
        self._apply(params)

    async def run(self, ctx: Any) -> None:
        self._apply(ctx.params)
        ctx.subscribe(topic(Plane.DATA, ctx.device_id, Stream.COMMAND), self._receive, qos=1)
        while True:
            try:
                # wake up now and then: the runtime's watchdog needs to hear from the app
                payload = await asyncio.wait_for(self._queue.get(), IDLE_PING_S)
            except TimeoutError:
                ctx.alive()
                continue
            ctx.alive()
            result = await self.handle(ctx, payload)
            ctx.publish(Stream.COMMAND_RESULT, result, qos=1)

    def _receive(self, _topic: str, payload: bytes) -> None:
        self._queue.put_nowait(bytes(payload))

    # -- one command --------------------------------------------------------------------------
    def targets(self, ctx: Any) -> set[str] | None:
        """What this device can act on; None when the backend does not say."""
        have: set[str] | None = None
        probe = getattr(ctx.actuators, "targets", None)
        if callable(probe):
            have = set(probe())
        if self.allowed is not None:
            have = self.allowed if have is None else have & self.allowed
        return have

    async def handle(self, ctx: Any, payload: bytes) -> CommandResult:
        try:
            cmd = Command.from_json(payload)
        except ValidationError as exc:
            return self._refuse_malformed(ctx, payload, exc)
        if cmd.command_id in self._done:
            return self._done[cmd.command_id]
        result = await self._execute(ctx, cmd)
        self._done[cmd.command_id] = result
        while len(self._done) > REMEMBER:
            self._done.popitem(last=False)
        ctx.state["commands"] = ctx.state.get("commands", 0) + 1
        return result

    def _refuse_malformed(self, ctx: Any, payload: bytes, exc: ValidationError) -> CommandResult:
        command_id = "unknown"
        try:
            raw = json.loads(payload)
            if isinstance(raw, dict) and isinstance(raw.get("command_id"), str):
                command_id = raw["command_id"]
        except ValueError:
            pass
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return CommandResult(
            command_id=command_id,
            device_id=ctx.device_id,
            target="unknown",
            ok=False,
            reason=f"malformed command: {errors}",
        )

    async def _execute(self, ctx: Any, cmd: Command) -> CommandResult:
        def refuse(reason: str) -> CommandResult:
            ctx.log.warning("command %s refused: %s", cmd.command_id, reason)
            return CommandResult(
                command_id=cmd.command_id,
                device_id=ctx.device_id,
                target=cmd.target,
                ok=False,
                reason=reason,
            )

        if cmd.device_id != ctx.device_id:
            return refuse(f"command is for device {cmd.device_id!r}, this is {ctx.device_id!r}")
        act = ctx.actuators
        if act is None:
            return refuse("this device has no actuators (no relay, switch or phase selector)")
        selecting = cmd.action is CommandAction.SELECT_PHASE
        target = PHASE_SELECTOR if selecting else cmd.target
        have = self.targets(ctx)
        if have is not None and target not in have:
            return refuse(f"this device has no {target!r} (it has: {sorted(have) or 'nothing'})")
        if selecting and cmd.phase is None:
            return refuse("field 'phase': select-phase needs phase a, b or c")
        try:
            if selecting:
                phase = await asyncio.wait_for(act.select_phase(cmd.phase), self.timeout_s)
                return CommandResult(
                    command_id=cmd.command_id,
                    device_id=ctx.device_id,
                    target=target,
                    ok=phase == cmd.phase,
                    phase=phase,
                    reason="" if phase == cmd.phase else f"selector reports phase {phase}",
                )
            want = cmd.action is CommandAction.CLOSE
            if cmd.target == "relay":
                state = await asyncio.wait_for(act.set_relay(want), self.timeout_s)
            else:
                state = await asyncio.wait_for(act.operate_switch(cmd.target, want), self.timeout_s)
        except TimeoutError:
            return refuse(f"the actuator did not answer within {self.timeout_s:g} s")
        except (LookupError, PermissionError, NotImplementedError) as exc:
            # the backend does not have (or may not move) the target
            return refuse(str(exc).strip("'\""))
        except Exception as exc:
            return refuse(f"actuation failed: {exc}")
        ok = bool(state) == want
        ctx.publish(
            Stream.EVENT,
            DeviceEvent(
                device_id=ctx.device_id,
                kind=EventKind.RELAY_CHANGED,
                occurred_at=ctx.clock.utcnow(),
                detail={
                    "target": cmd.target,
                    "closed": bool(state),
                    "command_id": cmd.command_id,
                    "origin": cmd.origin,
                },
                app=NAME,
            ),
        )
        return CommandResult(
            command_id=cmd.command_id,
            device_id=ctx.device_id,
            target=cmd.target,
            ok=ok,
            closed=bool(state),
            reason="" if ok else f"{cmd.target} reports {'closed' if state else 'open'}",
        )


def factory() -> RelayApp:
    return RelayApp()
