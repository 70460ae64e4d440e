"""The live MMS side of the gateway, on libiec61850 (pyiec61850, dynamic model, REFERENCE §5.2).

Why shards: libiec61850 cannot add a logical device to a running server (REFERENCE §5.4 pitfall
7) and a restart drops every association. So meters are packed into *shards* — one ``IedServer``
with its own ``IedModel`` on its own TCP port — and a shard, once started, is never touched
again: a meter registered at run time starts a new shard (meters arriving within the debounce
window share it), so no client association to any other meter is ever dropped. Shards also lift
the compiled limit of 5 MMS associations per server (pitfall 3): each shard serves its own 5.
An idle libiec61850 server thread costs ~0.8 % of a core on this machine, hence not one server
per meter but shards of up to ``meters_per_shard`` (measured in the benchmark).

Every call into pyiec61850 that returns a value goes through :func:`_ok`, because calls that
return ``[value, err]`` return a bare int on error (pitfall 2).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyiec61850 as iec
import pyiec61850._iec61850 as _iec_so

from gridedge import __version__
from gridedge.broker.mosquitto import free_port
from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.scl import Endpoint

log = logging.getLogger(__name__)

_CTL = {
    m.CtlModel.DIRECT_NORMAL: iec.CDC_CTL_MODEL_DIRECT_NORMAL,
    m.CtlModel.SBO_NORMAL: iec.CDC_CTL_MODEL_SBO_NORMAL | iec.CDC_CTL_MODEL_HAS_CANCEL,
    m.CtlModel.DIRECT_ENHANCED: iec.CDC_CTL_MODEL_DIRECT_ENHANCED,
    m.CtlModel.SBO_ENHANCED: iec.CDC_CTL_MODEL_SBO_ENHANCED | iec.CDC_CTL_MODEL_HAS_CANCEL,
}

# (closed) -> libiec61850 Dbpos; None = relay state not known yet
_DBPOS = {True: iec.DBPOS_ON, False: iec.DBPOS_OFF, None: iec.DBPOS_INTERMEDIATE_STATE}

# The model lock taken through ctypes, which releases the GIL while waiting: a libiec61850 server
# thread may hold the lock while it runs a Python control handler (which needs the GIL); a SWIG
# call waiting for the lock would keep the GIL and deadlock both.
_LIB = ctypes.CDLL(_iec_so.__file__)
_LIB.IedServer_lockDataModel.argtypes = [ctypes.c_void_p]
_LIB.IedServer_unlockDataModel.argtypes = [ctypes.c_void_p]
_LIB.IedServer_lockDataModel.restype = None
_LIB.IedServer_unlockDataModel.restype = None


OperateFn = Callable[[str, bool, str], "concurrent.futures.Future[bool | None]"]
"""(device id, close?, originator) -> future resolving to the relay's actual state after the
command (True closed / False open) or None when the command failed or timed out."""


@dataclass(slots=True)
class Reading:
    """One set of measurements for the model (from REST or MQTT telemetry). Per-phase lists in
    phase order a, b, c (one element for single-phase meters)."""

    ts_ms: int
    voltage_v: list[float] = field(default_factory=list)
    current_a: list[float] = field(default_factory=list)
    power_w: list[float | None] = field(default_factory=list)
    reactive_var: list[float | None] = field(default_factory=list)
    power_factor: list[float | None] = field(default_factory=list)
    frequency_hz: float | None = None
    energy_wh: float | None = None
    relay_closed: bool | None = None


class _Mag:
    """Handles of one analogue value (mag.f / cVal.mag.f) with its q and t."""

    __slots__ = ("f", "q", "t")

    def __init__(self, f: Any, q: Any, t: Any) -> None:
        self.f, self.q, self.t = f, q, t


def _child(node: Any, *path: str) -> Any:
    for name in path:
        node = iec.ModelNode_getChild(node, name)
        if node is None:
            raise LookupError(f"model node {'.'.join(path)} missing")
    return node


def _da(node: Any, *path: str) -> Any:
    return iec.toDataAttribute(_child(node, *path))


class MeterNode:
    """One meter's logical device inside a shard: creation and cached attribute handles (lookups
    by reference grow quadratically with the model, REFERENCE §5.2)."""

    def __init__(self, spec: m.MeterSpec, model: Any, ctl: m.CtlModel) -> None:
        self.spec = spec
        N = iec.toModelNode
        # The shard's IedModel has an empty IED name, so the LD name is the full MMS domain
        # (<IED name><LD inst>) of this meter's IED in the SCD.
        ld = iec.LogicalDevice_create(spec.domain, model)
        lln0 = iec.LogicalNode_create("LLN0", ld)
        self.beh: list[Any] = []
        self.beh.append(iec.CDC_ENS_create("Beh", N(lln0), 0))
        iec.CDC_ENC_create("Mod", N(lln0), 0, iec.CDC_CTL_MODEL_NONE)
        self.health = iec.CDC_ENS_create("Health", N(lln0), 0)
        self.namplt = iec.CDC_LPL_create("NamPlt", N(lln0), 0)
        lphd = iec.LogicalNode_create("LPHD1", ld)
        self.phynam = iec.CDC_DPL_create("PhyNam", N(lphd), 0)
        self.phy_health = iec.CDC_ENS_create("PhyHealth", N(lphd), 0)
        self.proxy = iec.CDC_SPS_create("Proxy", N(lphd), 0)
        meas = iec.LogicalNode_create(spec.meas_ln, ld)
        self.beh.append(iec.CDC_ENS_create("Beh", N(meas), 0))
        self.mv: dict[str, _Mag] = {}
        self.wye: dict[str, list[_Mag]] = {}
        names = m.MMXU_MV if spec.phases == 3 else m.MMXN_MV
        for name in names:
            do = N(iec.CDC_MV_create(name, N(meas), 0, False))
            self.mv[name] = _Mag(_da(do, "mag", "f"), _da(do, "q"), _da(do, "t"))
        if spec.phases == 3:
            for name in m.MMXU_WYE:
                do = N(iec.CDC_WYE_create(name, N(meas), 0))
                self.wye[name] = [
                    _Mag(_da(do, ph, "cVal", "mag", "f"), _da(do, ph, "q"), _da(do, ph, "t"))
                    for ph in ("phsA", "phsB", "phsC")
                ]
        mmtr = iec.LogicalNode_create("MMTR1", ld)
        self.beh.append(iec.CDC_ENS_create("Beh", N(mmtr), 0))
        self.totwh_do = iec.CDC_BCR_create("TotWh", N(mmtr), 0)
        bcr = N(self.totwh_do)
        self.totwh = (_da(bcr, "actVal"), _da(bcr, "q"), _da(bcr, "t"))
        cswi = iec.LogicalNode_create("CSWI1", ld)
        self.beh.append(iec.CDC_ENS_create("Beh", N(cswi), 0))
        self.cswi_pos_do = iec.CDC_DPC_create("Pos", N(cswi), 0, _CTL[ctl])
        xswi = iec.LogicalNode_create("XSWI1", ld)
        self.beh.append(iec.CDC_ENS_create("Beh", N(xswi), 0))
        iec.CDC_SPS_create("Loc", N(xswi), 0)
        opcnt = iec.CDC_INS_create("OpCnt", N(xswi), 0)
        xpos = iec.CDC_DPC_create("Pos", N(xswi), 0, iec.CDC_CTL_MODEL_NONE)
        self.blk = [
            iec.CDC_SPC_create("BlkOpn", N(xswi), 0, iec.CDC_CTL_MODEL_NONE),
            iec.CDC_SPC_create("BlkCls", N(xswi), 0, iec.CDC_CTL_MODEL_NONE),
        ]
        self.swtyp = iec.CDC_ENS_create("SwTyp", N(xswi), 0)
        self.opcnt = _da(N(opcnt), "stVal")
        cpos = N(self.cswi_pos_do)
        self.cswi_pos = (_da(cpos, "stVal"), _da(cpos, "q"), _da(cpos, "t"))
        self.xswi_pos = (_da(N(xpos), "stVal"), _da(N(xpos), "q"), _da(N(xpos), "t"))
        ds = iec.DataSet_create(m.DATASET, lln0)
        for member in m.dataset_members(spec.phases):
            iec.DataSetEntry_create(ds, member.mms, -1, None)
        trg = (
            iec.TRG_OPT_DATA_CHANGED
            | iec.TRG_OPT_QUALITY_CHANGED
            | iec.TRG_OPT_INTEGRITY
            | iec.TRG_OPT_GI
        )
        opt = (
            iec.RPT_OPT_SEQ_NUM
            | iec.RPT_OPT_TIME_STAMP
            | iec.RPT_OPT_REASON_FOR_INCLUSION
            | iec.RPT_OPT_DATA_SET
        )
        for name, buffered in m.rcb_instances(spec.buffered_reports):
            iec.ReportControlBlock_create(
                name,
                lln0,
                m.BRCB_NAME if buffered else m.URCB_NAME,
                buffered,
                m.DATASET,
                m.CONF_REV,
                trg,
                opt | (iec.RPT_OPT_ENTRY_ID if buffered else 0),
                m.RCB_BUF_TM_MS,
                m.RCB_INTG_PD_MS,
            )
        self.relay_closed: bool | None = None
        self.op_count = 0
        self.energy_wh: float | None = None
        self.last_power_w: float | None = None
        self.last_ts_ms: int | None = None


class _RelayJob:
    """One CSWI1.Pos operate carried out through the platform: publish the command, answer
    WAITING (libiec61850 re-calls about every 10 ms) until the meter's CommandResult reports the
    relay's actual state, then write XSWI1/CSWI1.Pos and answer OK or FAILED.

    Where it runs depends on the control model, because libiec61850 sends the Oper response
    *before* the operate handler runs: with enhanced security the operate handler does the job
    and the CommandTermination reports the outcome; with normal security (no termination) the
    wait-for-execution handler does it, so the Oper response itself waits for the relay and is
    negative when the relay did not move."""

    def __init__(self, shard: Shard, node: MeterNode) -> None:
        self.shard = shard
        self.node = node
        self.pending: concurrent.futures.Future[bool | None] | None = None
        self.wanted = False

    def step(self, mms_value: Any, action: Any) -> int:
        try:
            return self._step(mms_value, action)
        except Exception:  # never let an exception reach C
            log.exception("CSWI1.Pos operate of %s failed", self.node.spec.device_id)
            self.pending = None
            return iec.CONTROL_RESULT_FAILED

    def _step(self, mms_value: Any, action: Any) -> int:
        if self.pending is None:
            self.wanted = bool(iec.MmsValue_getBoolean(mms_value))
            try:
                or_cat = iec.ControlAction_getOrCat(action)
            except Exception:
                or_cat = -1
            origin = f"scada:iec61850:orCat={or_cat}"
            self.pending = self.shard.operate(self.node.spec.device_id, self.wanted, origin)
        if not self.pending.done():
            return iec.CONTROL_RESULT_WAITING
        fut, self.pending = self.pending, None
        try:
            closed = fut.result()
        except Exception:
            closed = None
        if closed is None:
            return iec.CONTROL_RESULT_FAILED
        # No lock here: libiec61850 may hold the model lock around this call, and our writers
        # wait for it without the GIL; the positions are written before the answer goes out.
        self.shard.write_relay(self.node, closed, int(time.time() * 1000))
        return iec.CONTROL_RESULT_OK if closed == self.wanted else iec.CONTROL_RESULT_FAILED


class _OperateHandler(iec.ControlHandlerForPython):
    def __init__(self, job: _RelayJob | None) -> None:
        super().__init__()
        self.job = job

    def trigger(self) -> None:
        if self.job is None:  # normal security: the relay already acted in the wait handler
            self._libiec61850_control_handler_result = iec.CONTROL_RESULT_OK
            return
        self._libiec61850_control_handler_result = self.job.step(
            self._libiec61850_mms_value, self._libiec61850_control_action
        )


class _WaitHandler(iec.WaitForExecutionHandlerForPython):
    def __init__(self, job: _RelayJob) -> None:
        super().__init__()
        self.job = job

    def trigger(self) -> None:
        self._libiec61850_control_handler_result = self.job.step(
            self._libiec61850_mms_value, self._libiec61850_control_action
        )


class ShardStartError(RuntimeError):
    pass


class Shard:
    """One IedServer with its own IedModel and port, hosting meters that never change."""

    def __init__(
        self,
        index: int,
        specs: list[m.MeterSpec],
        ctl: m.CtlModel,
        operate: OperateFn,
        ip: str = "127.0.0.1",
    ) -> None:
        self.index = index
        self.ip = ip
        self.port = 0
        self.operate = operate
        self.ctl = ctl
        # Each IedServer needs its own IedModel (libiec61850#70). The IED name is empty so that
        # each LD name is already the full MMS domain (<IED name><LD inst>) of the SCD's IED.
        self.model = iec.IedModel_create("")
        self.nodes: dict[str, MeterNode] = {}
        for spec in specs:
            node = MeterNode(spec, self.model, ctl)
            self.nodes[spec.device_id] = node
        self.server: Any = None
        self._subs: list[Any] = []
        self._handlers: list[Any] = []
        self.lock = threading.RLock()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.ip, self.port)

    def start(self, port: int | None, attempts: int = 20) -> int:
        """Start on ``port`` (None/0: a free port). Returns the port."""
        self.server = iec.IedServer_create(self.model)
        iec.IedServer_setLocalIpAddress(self.server, self.ip)
        normal = self.ctl in (m.CtlModel.DIRECT_NORMAL, m.CtlModel.SBO_NORMAL)
        for node in self.nodes.values():
            job = _RelayJob(self, node)
            sub = iec.ControlSubscriberForPython()
            sub.setIedServer(self.server)
            sub.setControlObject(node.cswi_pos_do)
            handlers: list[Any] = [_OperateHandler(None if normal else job)]
            if normal:
                handlers.append(_WaitHandler(job))
            for h in handlers:
                h.thisown = 0  # the subscriber frees them
            sub.setControlHandler(handlers[0])
            if normal:
                sub.setWaitHandler(handlers[1])
            if not sub.subscribe():
                raise ShardStartError(
                    f"control subscriber for {node.spec.domain}/CSWI1.Pos already registered"
                )
            self._subs.append(sub)
            self._handlers.extend(handlers)
        for i in range(attempts):
            candidate = port + i if port else free_port(self.ip)
            iec.IedServer_start(self.server, candidate)
            if iec.IedServer_isRunning(self.server):
                self.port = candidate
                break
        else:
            raise ShardStartError(f"no free MMS port found from {port or 'ephemeral'}")
        self._initial_values()
        return self.port

    def _initial_values(self) -> None:
        now = int(time.time() * 1000)
        srv = self.server
        with self.locked():
            for node in self.nodes.values():
                for do in node.beh:
                    iec.IedServer_updateInt32AttributeValue(
                        srv, _da(iec.toModelNode(do), "stVal"), 1
                    )
                for do in (node.health, node.phy_health):
                    iec.IedServer_updateInt32AttributeValue(
                        srv, _da(iec.toModelNode(do), "stVal"), 1
                    )
                iec.IedServer_updateInt32AttributeValue(
                    srv, _da(iec.toModelNode(node.swtyp), "stVal"), 1
                )  # Load Break: the meter's relay breaks the customer's load
                for mag in [*node.mv.values(), *(x for v in node.wye.values() for x in v)]:
                    iec.IedServer_updateQuality(srv, mag.q, iec.QUALITY_VALIDITY_INVALID)
                    iec.IedServer_updateUTCTimeAttributeValue(srv, mag.t, now)
                for st, _q, t in (node.cswi_pos, node.xswi_pos):
                    iec.IedServer_updateDbposValue(srv, st, _DBPOS[None])
                    iec.IedServer_updateUTCTimeAttributeValue(srv, t, now)
                iec.IedServer_updateQuality(srv, node.totwh[1], iec.QUALITY_VALIDITY_INVALID)
                for do, name in ((node.namplt, "vendor"), (node.phynam, "vendor")):
                    iec.IedServer_updateVisibleStringAttributeValue(
                        srv, _da(iec.toModelNode(do), name), "gridedge"
                    )
                iec.IedServer_updateVisibleStringAttributeValue(
                    srv, _da(iec.toModelNode(node.namplt), "swRev"), __version__
                )
                iec.IedServer_updateFloatAttributeValue(
                    srv, _da(iec.toModelNode(node.totwh_do), "pulsQty"), 1.0
                )

    # -- updates (any thread) ---------------------------------------------------------------------
    def update(self, device_id: str, r: Reading) -> None:
        node = self.nodes[device_id]
        srv = self.server
        good = iec.QUALITY_VALIDITY_GOOD
        ts = r.ts_ms

        def put(mag: _Mag, value: float | None) -> None:
            if value is None or not math.isfinite(value):
                iec.IedServer_updateQuality(srv, mag.q, iec.QUALITY_VALIDITY_INVALID)
            else:
                iec.IedServer_updateFloatAttributeValue(srv, mag.f, float(value))
                iec.IedServer_updateQuality(srv, mag.q, good)
            iec.IedServer_updateUTCTimeAttributeValue(srv, mag.t, ts)

        p = [x for x in r.power_w if x is not None]
        total_p = sum(p) if p else None
        q = [x for x in r.reactive_var if x is not None]
        total_q = sum(q) if q else None
        pf = [x for x in r.power_factor if x is not None]
        total_pf = (sum(pf) / len(pf)) if pf else None
        energy = self._energy(node, r, total_p)
        with self.locked():
            if node.spec.phases == 3:
                put(node.mv["TotW"], total_p)
                put(node.mv["TotVAr"], total_q)
                put(node.mv["TotPF"], total_pf)
                put(node.mv["Hz"], r.frequency_hz)
                for name, values in (
                    ("PhV", r.voltage_v),
                    ("A", r.current_a),
                    ("W", r.power_w),
                    ("PF", r.power_factor),
                ):
                    for i, mag in enumerate(node.wye[name]):
                        put(mag, values[i] if i < len(values) else None)
            else:
                put(node.mv["Vol"], r.voltage_v[0] if r.voltage_v else None)
                put(node.mv["Amp"], r.current_a[0] if r.current_a else None)
                put(node.mv["Watt"], total_p)
                put(node.mv["PwrFact"], total_pf)
                put(node.mv["Hz"], r.frequency_hz)
            if energy is not None:
                iec.IedServer_updateInt64AttributeValue(srv, node.totwh[0], int(energy))
                iec.IedServer_updateQuality(srv, node.totwh[1], good)
                iec.IedServer_updateUTCTimeAttributeValue(srv, node.totwh[2], ts)
            if r.relay_closed is not None and r.relay_closed != node.relay_closed:
                self.write_relay(node, r.relay_closed, ts)

    @staticmethod
    def _energy(node: MeterNode, r: Reading, total_p: float | None) -> float | None:
        """MMTR1.TotWh: the meter's register when it sends one; otherwise the integral of the
        active power between readings (thesis meters send no energy)."""
        if r.energy_wh is not None:
            node.energy_wh = r.energy_wh
        elif total_p is not None:
            if node.energy_wh is None:
                node.energy_wh = 0.0
            elif node.last_ts_ms is not None and node.last_power_w is not None:
                dt_h = (r.ts_ms - node.last_ts_ms) / 3_600_000
                if 0 < dt_h < 1:
                    node.energy_wh += max(0.0, (total_p + node.last_power_w) / 2 * dt_h)
        node.last_power_w = total_p
        node.last_ts_ms = r.ts_ms
        return node.energy_wh

    def set_relay(self, device_id: str, closed: bool) -> None:
        """XSWI1.Pos (and CSWI1.Pos) follow the relay's real state."""
        node = self.nodes[device_id]
        with self.locked():
            self.write_relay(node, closed, int(time.time() * 1000))

    def write_relay(self, node: MeterNode, closed: bool, ts: int) -> None:
        """Caller holds the model lock, or is the control handler (see _PosHandler)."""
        srv = self.server
        if node.relay_closed is not None and node.relay_closed != closed:
            node.op_count += 1
            iec.IedServer_updateInt32AttributeValue(srv, node.opcnt, node.op_count)
        node.relay_closed = closed
        for st, q, t in (node.xswi_pos, node.cswi_pos):
            iec.IedServer_updateDbposValue(srv, st, _DBPOS[closed])
            iec.IedServer_updateQuality(srv, q, iec.QUALITY_VALIDITY_GOOD)
            iec.IedServer_updateUTCTimeAttributeValue(srv, t, ts)

    def set_online(self, device_id: str, online: bool) -> None:
        """A meter the catalog declares disconnected: its values become questionable, Health
        Warning (IEC 61850-7-3 quality instead of silently stale numbers)."""
        node = self.nodes[device_id]
        srv = self.server
        validity = iec.QUALITY_VALIDITY_GOOD if online else iec.QUALITY_VALIDITY_QUESTIONABLE
        with self.locked():
            iec.IedServer_updateInt32AttributeValue(
                srv, _da(iec.toModelNode(node.health), "stVal"), 1 if online else 2
            )
            iec.IedServer_updateBooleanAttributeValue(
                srv, _da(iec.toModelNode(node.proxy), "stVal"), not online
            )
            if node.last_ts_ms is not None:
                for mag in [*node.mv.values(), *(x for v in node.wye.values() for x in v)]:
                    iec.IedServer_updateQuality(srv, mag.q, validity)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Our writers' mutual exclusion (Python lock) + libiec61850's model lock (GIL-free)."""
        with self.lock:
            ptr = ctypes.c_void_p(int(self.server))
            _LIB.IedServer_lockDataModel(ptr)
            try:
                yield
            finally:
                _LIB.IedServer_unlockDataModel(ptr)

    def connections(self) -> int:
        return int(iec.IedServer_getNumberOfOpenConnections(self.server)) if self.server else 0

    def stop(self) -> None:
        if self.server is not None:
            iec.IedServer_stop(self.server)
        # Control subscribers live in a process-global registry keyed by object reference
        # (pitfall 4): release them before anything could build the same LD again.
        for sub in self._subs:
            sub.thisown = 1
        self._subs.clear()
        self._handlers.clear()
        if self.server is not None:
            iec.IedServer_destroy(self.server)
            self.server = None
        if self.model is not None:
            iec.IedModel_destroy(self.model)
            self.model = None
