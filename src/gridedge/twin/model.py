"""The Twin: one grid, solved by power-grid-model, with faults, protection and switching.

The PGM model is built once; switching, relays, phase selectors and load changes are in-place
updates of it. A fault is computed as a linear network solve in which every load is the
constant impedance that draws its pre-fault power at its pre-fault voltage (so the twin's
during-fault phasors include load current, unlike an IEC 60909 short circuit):

- method "sc-shunt" (default): PGM short circuit with the loads replaced by that admittance and
  the IEC voltage factor c = 1 (``minimum`` scaling above 1 kV), results scaled by the source's
  u_ref. Balanced nodes get a shunt; nodes with unequal per-phase load (single-phase customers)
  get a diagonal per-phase impedance (asym_line) to a dummy node held at ground by a very large
  shunt, so unbalanced loads are exact too. The network is linear, so the no-fault solution equals
  the pre-fault power flow (tested), and all four fault types, any fault impedance and batch
  calculation come from PGM directly.
- method "asym-pf" (1ph/3ph): PGM asymmetric power flow with every load constant-impedance per
  phase and an extra constant-impedance asym_load on the fault node (REFERENCE §1.5 item 6).
  It is the default for 3ph faults on grids with single-phase customers, because PGM solves an
  all-three-phase short circuit in the positive sequence only (which balances the customers'
  currents, 0.7 % off on lv-residential); elsewhere a cross-check (agrees to < 1e-3, tested).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from power_grid_model import CalculationMethod, LoadGenType, PowerGridModel, initialize_array
from power_grid_model import ComponentType as CT
from power_grid_model.errors import PowerGridError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from gridedge.clock import Clock, ClockMode
from gridedge.contracts.catalog import (
    DevicePlacement,
    TopologyBranch,
    TopologyDocument,
    TopologyNode,
)
from gridedge.twin.errors import LoadflowNotConverged, TwinError
from gridedge.twin.faults import Fault
from gridedge.twin.grids.base import GridModel
from gridedge.twin.pgm_bridge import BRANCH_TYPES, PgmNetwork, convert
from gridedge.twin.state import GridState, MeasurementPoint

try:
    from power_grid_model import ShortCircuitVoltageScaling
except ImportError:  # pragma: no cover
    from power_grid_model.enum import ShortCircuitVoltageScaling  # type: ignore

A = np.exp(-2j * np.pi / 3)
ROT = np.array([1.0, A, A.conjugate()])  # phase a, b, c of a positive-sequence set
SQ3 = math.sqrt(3.0)


@dataclass(frozen=True)
class TwinEvent:
    """One entry of the event log the measurement side reads (fault inception, trip, ...)."""

    time_ns: int
    kind: str  # fault | trip | clear | operate | relay | phase | load
    target: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineData:
    """One line section as a fault locator needs it. Per-km values; ``z_abc`` in ohm/km."""

    id: str
    from_node: str
    to_node: str
    length_m: float
    r1_ohm_per_km: float
    x1_ohm_per_km: float
    c1_nf_per_km: float
    r0_ohm_per_km: float
    x0_ohm_per_km: float
    c0_nf_per_km: float
    i_max_a: float
    closed: bool

    @property
    def z1_ohm_per_km(self) -> complex:
        return complex(self.r1_ohm_per_km, self.x1_ohm_per_km)

    @property
    def z0_ohm_per_km(self) -> complex:
        return complex(self.r0_ohm_per_km, self.x0_ohm_per_km)

    @property
    def z_abc_ohm_per_km(self) -> np.ndarray:
        """3x3 phase impedance from sequence data: Zs = (Z0 + 2 Z1)/3 on the diagonal,
        Zm = (Z0 - Z1)/3 off it (transposed line)."""
        zs = (self.z0_ohm_per_km + 2 * self.z1_ohm_per_km) / 3
        zm = (self.z0_ohm_per_km - self.z1_ohm_per_km) / 3
        return np.full((3, 3), zm, dtype=complex) + np.eye(3) * (zs - zm)


@dataclass(frozen=True)
class TransformerData:
    id: str
    from_node: str
    to_node: str
    sn_va: float
    u1_v: float
    u2_v: float
    uk: float
    pk_w: float
    i0: float
    p0_w: float
    vector_group: str
    closed: bool


@dataclass(frozen=True)
class LoadData:
    id: str
    node_id: str
    p_w: np.ndarray  # (3,) per phase
    q_var: np.ndarray
    status: bool
    kind: str  # "3ph" | "customer"


class Twin:
    """A grid digital twin. Build with :meth:`from_name`."""

    def __init__(
        self,
        grid: GridModel,
        *,
        clock: Clock | None = None,
        trip_delay_s: float = 0.3,
        ideal_source: bool = False,
    ) -> None:
        if trip_delay_s < 0 or not math.isfinite(trip_delay_s):
            raise TwinError("trip_delay_s", f"{trip_delay_s!r} must be a finite number >= 0")
        self.grid = grid
        self.name = grid.name
        self.clock = clock if clock is not None else Clock(ClockMode.STEPPED, start_ns=0)
        self.trip_delay_s = float(trip_delay_s)
        self.pgm: PgmNetwork = convert(grid.net, ideal_source=ideal_source)
        inp = self.pgm.input
        self.node_ids: tuple[str, ...] = tuple(self.pgm.node_names)
        self.branch_ids: tuple[str, ...] = tuple(self.pgm.branch_names)
        self._node_index = {n: i for i, n in enumerate(self.node_ids)}
        self._branch_index = {b: i for i, b in enumerate(self.branch_ids)}
        self._u_rated = inp[CT.node]["u_rated"].astype(float)
        # branch terminal node rows, in GridState branch order
        fr, to = [], []
        for ct, row in self.pgm.branch_rows:
            fr.append(self.pgm.node_row[int(inp[ct]["from_node"][row])])
            to.append(self.pgm.node_row[int(inp[ct]["to_node"][row])])
        self._br_from = np.array(fr, dtype=int)
        self._br_to = np.array(to, dtype=int)
        # Roots of the topology: nodes with a source and primary busbars (kind "source"), so
        # parallel primary transformers do not count as a loop.
        roots = {self.pgm.node_row[int(n)] for n in inp[CT.source]["node"]}
        roots |= {
            self._node_index[n]
            for n, k in grid.node_kind.items()
            if k == "source" and n in self._node_index
        }
        self._source_rows = np.array(sorted(roots), dtype=int)
        self._customer_row = {c: k for k, c in enumerate(self.pgm.asym_load_names)}
        self._load_row = {n: k for k, n in enumerate(self.pgm.load_names)}
        self._gen_row = {n: k for k, n in enumerate(self.pgm.gen_names)}
        self.customers = {k: v for k, v in grid.customers.items()}
        self._normally_open = {s: not self._switch_closed(s) for s in self.pgm.switches}
        self._model = PowerGridModel(inp)
        self._state: GridState | None = None
        self._prefault: GridState | None = None
        self._pf_result: dict | None = None
        self._pf_symmetric: bool = True
        self.active_fault: Fault | None = None
        self.events: list[TwinEvent] = []
        self._pending_trips: list[tuple[int, str]] = []
        self.history: list[tuple[int, GridState]] = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_name(cls, name: str, seed: int | None = None, **kwargs: Any) -> Twin:
        from gridedge.twin.grids import build

        return cls(build(name, seed=seed), **kwargs)

    @staticmethod
    def grid_names() -> list[str]:
        from gridedge.twin.grids import grid_names

        return grid_names()

    @property
    def net(self):
        """The equivalent pandapower net (model source; tests compare with it)."""
        return self.grid.net

    @property
    def switch_ids(self) -> tuple[str, ...]:
        return tuple(self.pgm.switches)

    @property
    def measurement_points(self) -> list[MeasurementPoint]:
        return list(self.grid.measurement_points)

    def switch_point(self, switch_id: str) -> MeasurementPoint | None:
        """Where the field unit beside a switch measures (e.g. a fault passage indicator): the
        current through the switch, the voltage on its from side. None when the switch is not a
        branch of its own — some grids model switches as a status flag on a line or
        transformer."""
        b = self._branch_index.get(switch_id)
        if b is None or switch_id not in self.pgm.switches:
            return None
        node = self.node_ids[self._br_from[b]]
        return MeasurementPoint(
            switch_id, node, switch_id, "from", description=f"field unit at switch {switch_id}"
        )

    @property
    def has_customers(self) -> bool:
        return CT.asym_load in self.pgm.input

    # ------------------------------------------------------------------ power flow
    def _pf(self, symmetric: bool) -> dict:
        try:
            return self._model.calculate_power_flow(
                symmetric=symmetric,
                calculation_method=CalculationMethod.newton_raphson,
                max_iterations=30,
                error_tolerance=1e-8 if symmetric else 1e-7,
            )
        except PowerGridError as exc:
            raise LoadflowNotConverged(self.name, f"{type(exc).__name__}: {exc}") from None

    def _default_symmetric(self, symmetric: bool | None) -> bool:
        return (not self.has_customers) if symmetric is None else bool(symmetric)

    def solve(self, symmetric: bool | None = None) -> GridState:
        """Power flow of the present state (switches, loads, relays); ignores an active fault
        (use :attr:`state` for what the grid does now, fault included)."""
        sym = self._default_symmetric(symmetric)
        res = self._pf(sym)
        self._pf_result, self._pf_symmetric = res, sym
        st = self._state_from_pf(res, sym)
        if self.active_fault is None:
            self._set_state(st)
        return st

    def _state_from_pf(self, res: dict, sym: bool, faulted: bool = False) -> GridState:
        nres = res[CT.node]
        energised = nres["energized"].astype(bool)
        if sym:
            u = (nres["u"] / SQ3 * np.exp(1j * nres["u_angle"]))[:, None] * ROT[None, :]
        else:
            u = nres["u"] * np.exp(1j * nres["u_angle"])
        i_from = np.zeros((len(self.branch_ids), 3), dtype=complex)
        i_to = np.zeros_like(i_from)
        k0 = 0
        for ct in BRANCH_TYPES:
            if ct not in res:
                continue
            r = res[ct]
            n = len(r)
            sl = slice(k0, k0 + n)
            for end, out in (("from", i_from), ("to", i_to)):
                v = u[self._br_from[sl] if end == "from" else self._br_to[sl]]
                s = r[f"p_{end}"] + 1j * r[f"q_{end}"]
                if sym:
                    s = (s / 3.0)[:, None] * np.ones(3)
                with np.errstate(divide="ignore", invalid="ignore"):
                    cur = np.conj(s / v)
                cur[~np.isfinite(cur)] = 0.0
                out[sl] = cur
            k0 += n
        return GridState(
            node_ids=self.node_ids,
            u=u,
            branch_ids=self.branch_ids,
            i_from=i_from,
            i_to=i_to,
            energised=energised,
            time_ns=self.clock.now_ns(),
            faulted=faulted,
            _node_index=self._node_index,
            _branch_index=self._branch_index,
        )

    def _set_state(self, st: GridState) -> None:
        self._state = st
        # kept in time order even if a state is stamped earlier than the last one (a trip found
        # late by a lazy read of a wall clock); state_at() relies on the order
        bisect.insort_right(self.history, (st.time_ns, st), key=lambda x: x[0])
        if len(self.history) > 1000:
            del self.history[:-500]

    @property
    def state(self) -> GridState:
        """What the grid does now: processes due protection trips first."""
        self._tick()
        if self._state is None:
            self._recompute()
        assert self._state is not None
        return self._state

    @property
    def prefault_state(self) -> GridState | None:
        return self._prefault

    def state_at(self, time_ns: int) -> GridState:
        """The state that held at ``time_ns`` (for waveform windows spanning inception/trip)."""
        self._tick()
        best = None
        for t, st in self.history:
            if t <= time_ns:
                best = st
            else:
                break
        return best if best is not None else (self.history[0][1] if self.history else self.state)

    # ------------------------------------------------------------------ faults
    def _check_fault(self, fault: Fault) -> tuple[CT, int]:
        if not isinstance(fault, Fault):
            raise TwinError("fault", f"expected a Fault, got {type(fault).__name__}")
        if fault.branch_id not in self._branch_index:
            raise TwinError(
                "branch_id", f"{fault.branch_id!r} is not a branch of grid {self.name!r}"
            )
        ct, row = self.pgm.branch_rows[self._branch_index[fault.branch_id]]
        if ct is not CT.line and 0.0 < fault.fraction < 1.0:
            raise TwinError(
                "fraction",
                f"{fault.branch_id!r} is a {ct.value}; it can only be faulted at fraction 0 or 1",
            )
        return ct, row

    def _shunts_from_pf(self, res: dict, sym: bool, mean: bool = False) -> np.ndarray:
        """Constant admittances that draw each load's pre-fault power at its pre-fault voltage."""
        inp = self.pgm.input
        nres = res[CT.node]
        vmag = np.repeat((nres["u"] / SQ3)[:, None], 3, axis=1) if sym else nres["u"]
        y = np.zeros((len(self.node_ids), 3), dtype=complex)
        for ct in (CT.sym_load, CT.asym_load, CT.sym_gen, CT.asym_gen):
            if ct not in inp:
                continue
            rows = np.array([self.pgm.node_row[int(n)] for n in inp[ct]["node"]], dtype=int)
            s = res[ct]["p"] + 1j * res[ct]["q"]
            if s.ndim == 1:
                s = (s / 3.0)[:, None] * np.ones(3)
            if ct in (CT.sym_gen, CT.asym_gen):
                s = -s
            v2 = vmag[rows] ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                yl = np.where(v2 > 1.0, np.conj(s) / v2, 0.0)
            np.add.at(y, rows, yl)
        # balanced nodes -> one symmetric shunt; nodes with unequal per-phase admittance (single-
        # phase customers) -> a per-phase impedance (asym_line, diagonal) to a dummy node held
        # at ground by a very large shunt, so each phase draws exactly its own load current.
        spread = np.abs(y - y.mean(axis=1, keepdims=True)).max(axis=1)
        unbal = spread > 1e-6 * np.maximum(np.abs(y).max(axis=1), 1e-30)
        if mean:
            unbal[:] = False
        ym = y.mean(axis=1)
        bal = np.nonzero((np.abs(ym) > 0) & ~unbal)[0]
        nid = self._next_id()
        sh = initialize_array("input", CT.shunt, len(bal))
        sh["id"] = nid + np.arange(len(bal))
        sh["node"] = inp[CT.node]["id"][bal]
        sh["status"] = 1
        sh["g1"] = ym[bal].real
        sh["b1"] = ym[bal].imag
        sh["g0"] = ym[bal].real
        sh["b0"] = ym[bal].imag
        self._extra_load_elements = {}
        ub = np.nonzero(unbal)[0]
        if len(ub):
            nid += len(bal)
            dummy = initialize_array("input", CT.node, len(ub))
            dummy["id"] = nid + np.arange(len(ub))
            dummy["u_rated"] = self._u_rated[ub]
            gnd = initialize_array("input", CT.shunt, len(ub))
            gnd["id"] = nid + len(ub) + np.arange(len(ub))
            gnd["node"] = dummy["id"]
            gnd["status"] = 1
            gnd["g1"] = gnd["g0"] = 1e6
            gnd["b1"] = gnd["b0"] = 0.0
            al = initialize_array("input", CT.asym_line, len(ub))
            al["id"] = nid + 2 * len(ub) + np.arange(len(ub))
            al["from_node"] = inp[CT.node]["id"][ub]
            al["to_node"] = dummy["id"]
            al["from_status"] = al["to_status"] = 1
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(np.abs(y[ub]) > 0, 1.0 / y[ub], 1e9)
            for k, ph in enumerate("abc"):
                al[f"r_{ph}{ph}"] = z[:, k].real
                al[f"x_{ph}{ph}"] = z[:, k].imag
            for col in ("r_ba", "r_ca", "r_cb", "x_ba", "x_ca", "x_cb"):
                al[col] = 0.0
            for col in ("c_aa", "c_ba", "c_bb", "c_ca", "c_cb", "c_cc"):
                al[col] = 0.0
            al["i_n"] = 1e6
            sh = np.concatenate([sh, gnd])
            self._extra_load_elements = {CT.node: dummy, CT.asym_line: al}
        return sh

    def _merge_load_elements(self, inp: dict) -> None:
        for ct, arr in getattr(self, "_extra_load_elements", {}).items():
            inp[ct] = np.concatenate([inp[ct], arr]) if ct in inp else arr

    def _next_id(self) -> int:
        return max(int(v["id"].max()) for v in self.pgm.input.values() if len(v)) + 1

    def _split(self, inp: dict, fault: Fault, ct: CT, row: int, id0: int) -> tuple[dict, int]:
        """Copy of ``inp`` with the fault node: a new node and two line segments part-way along
        a line (segment 1 keeps the line's id, so branch rows do not move)."""
        out, fnodes, _ = self._split_many(inp, [(fault, ct, row)], id0)
        return out, fnodes[0]

    def _split_many(
        self, inp: dict, items: list[tuple[Fault, CT, int]], id0: int
    ) -> tuple[dict, list[int], list[tuple[int, int]]]:
        """Split several lines (each at most once) at their fault positions. Returns the new
        input, the fault node id per item, and (line row, segment-2 row) per split line."""
        fnodes: list[int] = []
        splits: list[tuple[int, int]] = []
        new_nodes, new_segs = [], []
        lines = inp[CT.line].copy() if CT.line in inp else None
        nl = len(lines) if lines is not None else 0
        for k, (fault, ct, row) in enumerate(items):
            if fault.fraction in (0.0, 1.0) or ct is not CT.line:
                end = "from_node" if fault.fraction == 0.0 else "to_node"
                fnodes.append(int(self.pgm.input[ct][end][row]))
                continue
            d = fault.fraction
            nid = id0 + 2 * k
            fnode = initialize_array("input", CT.node, 1)
            fnode["id"] = nid
            fnode["u_rated"] = self._u_rated[self.pgm.node_row[int(lines["from_node"][row])]]
            seg2 = lines[row : row + 1].copy()
            for col in ("r1", "x1", "c1", "r0", "x0", "c0"):
                seg2[col] *= 1.0 - d
                lines[col][row] *= d
            lines["to_node"][row] = nid
            lines["to_status"][row] = 1
            seg2["id"] = nid + 1
            seg2["from_node"] = nid
            seg2["from_status"] = 1
            new_nodes.append(fnode)
            new_segs.append(seg2)
            splits.append((row, nl + len(new_segs) - 1))
            fnodes.append(nid)
        if not new_nodes:
            return inp, fnodes, splits
        out = dict(inp)
        out[CT.node] = np.concatenate([inp[CT.node], *new_nodes])
        out[CT.line] = np.concatenate([lines, *new_segs])
        return out, fnodes, splits

    def _fault_input(
        self, fault: Fault, res: dict, sym: bool
    ) -> tuple[dict, int, list[tuple[int, int]]]:
        ct, row = self._check_fault(fault)
        inp = {
            k: v
            for k, v in self.pgm.input.items()
            if k not in (CT.sym_load, CT.asym_load, CT.sym_gen, CT.asym_gen)
        }
        sh = self._shunts_from_pf(res, sym)
        inp[CT.shunt] = np.concatenate([self.pgm.input[CT.shunt], sh]) if CT.shunt in inp else sh
        self._merge_load_elements(inp)
        id0 = _max_id(inp) + 1
        inp, fnodes, splits = self._split_many(inp, [(fault, ct, row)], id0)
        fnode = fnodes[0]
        f = initialize_array("input", CT.fault, 1)
        f["id"] = id0 + 2
        f["status"] = 1
        f["fault_type"] = fault.fault_type
        f["fault_phase"] = fault.fault_phase
        f["fault_object"] = fnode
        f["r_f"] = fault.r_f_ohm
        f["x_f"] = fault.x_f_ohm
        inp[CT.fault] = f
        return inp, fnode, splits

    def _sc_scale(self) -> float:
        # A linear network's solution scales with its sources; PGM's SC drives the sources at
        # c * u_rated (c = 1 above 1 kV at "minimum"), the power flow at u_ref.
        src = self.pgm.input[CT.source]
        return float(np.mean(src["u_ref"][src["status"] == 1])) if len(src) else 1.0

    def _state_from_sc(self, res: dict, splits: list[tuple[int, int]], fnode_row: int) -> GridState:
        batch = {ct: arr[None, ...] for ct, arr in res.items()}
        return self._states_from_sc(batch, splits, [fnode_row])[0]

    def _states_from_sc(
        self, res: dict, splits: list[tuple[int, int]], fnode_rows: list[int]
    ) -> list[GridState]:
        """GridStates of a (batch) short-circuit result, converted with whole-array numpy
        operations (per-scenario Python work would dominate a fault batch)."""
        k = self._sc_scale()
        n = len(self.node_ids)
        nres = res[CT.node]
        uall = nres["u"] * np.exp(1j * nres["u_angle"]) * k  # (S, N', 3)
        energised = nres["energized"][:, :n].astype(bool)
        parts_f, parts_t = [], []
        for ct in BRANCH_TYPES:
            if ct not in res:
                continue
            nb = len(self.pgm.input[ct])
            r = res[ct]
            cf = r["i_from"] * np.exp(1j * r["i_from_angle"]) * k
            ct_ = r["i_to"] * np.exp(1j * r["i_to_angle"]) * k
            it = ct_[:, :nb].copy()
            if ct is CT.line and splits:
                rows, segs = np.asarray(splits, dtype=int).T
                it[:, rows] = ct_[:, segs]
            parts_f.append(cf[:, :nb])
            parts_t.append(it)
        i_from = np.concatenate(parts_f, axis=1)
        i_to = np.concatenate(parts_t, axis=1)
        fr = res[CT.fault]
        i_f = (fr["i_f"] * np.exp(1j * fr["i_f_angle"])).reshape(len(fnode_rows), -1, 3)[:, 0] * k
        t = self.clock.now_ns()
        return [
            GridState(
                node_ids=self.node_ids,
                u=uall[j, :n],
                branch_ids=self.branch_ids,
                i_from=i_from[j],
                i_to=i_to[j],
                energised=energised[j],
                time_ns=t,
                faulted=True,
                fault_current=i_f[j],
                fault_voltage=uall[j, fr_],
                _node_index=self._node_index,
                _branch_index=self._branch_index,
            )
            for j, fr_ in enumerate(fnode_rows)
        ]

    def _fault_node_row(self, fault: Fault) -> int:
        b = self._branch_index[fault.branch_id]
        return int(self._br_from[b] if fault.fraction == 0.0 else self._br_to[b])

    def _solve_fault_asym_pf(self, fault: Fault, res: dict, sym: bool) -> GridState:
        """REFERENCE §1.5 item 6: asym PF, loads constant-Z per phase, fault as a const-Z
        asym_load (wye to ground). Used for 1ph/3ph faults on grids with unbalanced loads."""
        ct, row = self._check_fault(fault)
        inp = {k: v.copy() for k, v in self.pgm.input.items()}
        nres = res[CT.node]
        vmag = nres["u"] if not sym else np.repeat((nres["u"] / SQ3)[:, None], 3, axis=1)
        for lct in (CT.sym_load, CT.asym_load):
            if lct not in inp:
                continue
            rows = np.array([self.pgm.node_row[int(x)] for x in inp[lct]["node"]], dtype=int)
            ur2 = (self._u_rated[rows] / SQ3) ** 2
            p, q = res[lct]["p"], res[lct]["q"]
            if lct is CT.sym_load:
                vm2 = (vmag[rows] ** 2).mean(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.where(vm2 > 1.0, ur2 / vm2, 0.0)
            else:
                vm2 = vmag[rows] ** 2
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.where(vm2 > 1.0, ur2[:, None] / vm2, 0.0)
            inp[lct]["p_specified"] = p * f
            inp[lct]["q_specified"] = q * f
            inp[lct]["type"] = LoadGenType.const_impedance
        id0 = self._next_id()
        inp, fnode = self._split(inp, fault, ct, row, id0)
        fl = initialize_array("input", CT.asym_load, 1)
        fl["id"] = id0 + 2
        fl["node"] = fnode
        fl["status"] = 1
        fl["type"] = LoadGenType.const_impedance
        frow = (
            self.pgm.node_row[int(self.pgm.input[CT.line]["from_node"][row])]
            if ct is CT.line
            else self._fault_node_row(fault)
        )
        ulg2 = (self._u_rated[frow] / SQ3) ** 2
        zf = complex(max(fault.r_f_ohm, 1e-4), fault.x_f_ohm)
        s = ulg2 / np.conj(zf)
        ps = np.zeros(3)
        qs = np.zeros(3)
        for ph in fault.phase_index:
            ps[ph], qs[ph] = s.real, s.imag
        fl["p_specified"] = ps
        fl["q_specified"] = qs
        inp[CT.asym_load] = np.concatenate([inp[CT.asym_load], fl]) if CT.asym_load in inp else fl
        try:
            r = PowerGridModel(inp).calculate_power_flow(
                symmetric=False,
                calculation_method=CalculationMethod.newton_raphson,
                max_iterations=50,
            )
        except PowerGridError as exc:
            raise LoadflowNotConverged(self.name, f"fault solve: {exc}") from None
        n = len(self.node_ids)
        saved = self.pgm.input
        st = self._state_from_pf(_trim(r, n, self.pgm.input), sym=False, faulted=True)
        split = ct is CT.line and 0 < fault.fraction < 1
        if split:
            nl = len(saved[CT.line])
            seg2 = r[CT.line][nl]
            vt = st.u[self._br_to[row]]
            s2 = seg2["p_to"] + 1j * seg2["q_to"]
            with np.errstate(divide="ignore", invalid="ignore"):
                cur = np.conj(s2 / vt)
            st.i_to[row] = np.where(np.isfinite(cur), cur, 0)
        fres = r[CT.asym_load][-1]
        vf = r[CT.node]["u"][-1 if split else fnode_row(self, fnode)] * np.exp(
            1j * r[CT.node]["u_angle"][-1 if split else fnode_row(self, fnode)]
        )
        sf = fres["p"] + 1j * fres["q"]
        with np.errstate(divide="ignore", invalid="ignore"):
            i_f = np.where(np.abs(vf) > 0, np.conj(sf / vf), 0)
        return GridState(
            node_ids=st.node_ids,
            u=st.u,
            branch_ids=st.branch_ids,
            i_from=st.i_from,
            i_to=st.i_to,
            energised=st.energised,
            time_ns=st.time_ns,
            faulted=True,
            fault_current=i_f,
            fault_voltage=vf,
        )

    def compute_fault(self, fault: Fault, method: str | None = None) -> GridState:
        """During-fault state for ``fault`` from the present pre-fault state, without changing
        the twin (no event, no protection). ``method``: "sc-shunt" | "asym-pf" | None (auto)."""
        self._check_fault(fault)
        sym = self._default_symmetric(None)
        res = self._pf(sym)
        if method is None:
            # PGM solves an all-three-phase short circuit symmetrically (positive sequence), which
            # would balance the customers' unbalanced load currents; the asym PF keeps them.
            method = "asym-pf" if (self.has_customers and fault.kind == "3ph") else "sc-shunt"
        if method == "asym-pf":
            return self._solve_fault_asym_pf(fault, res, sym)
        if method != "sc-shunt":
            raise TwinError("method", f"{method!r} is not 'sc-shunt' or 'asym-pf'")
        inp, fnode, splits = self._fault_input(fault, res, sym)
        try:
            out = PowerGridModel(inp).calculate_short_circuit(
                short_circuit_voltage_scaling=ShortCircuitVoltageScaling.minimum
            )
        except PowerGridError as exc:
            raise LoadflowNotConverged(self.name, f"fault solve: {exc}") from None
        return self._state_from_sc(out, splits, self._row_of(inp, fnode))

    def _row_of(self, inp: dict, pgm_node: int) -> int:
        if pgm_node in self.pgm.node_row:
            return self.pgm.node_row[pgm_node]
        return int(np.nonzero(inp[CT.node]["id"] == pgm_node)[0][0])

    def apply_fault(self, fault: Fault) -> GridState:
        """Fault inception now (clock time): logs it, schedules the feeder breaker trip after
        ``trip_delay_s`` and returns the during-fault state."""
        self._check_fault(fault)
        if self.active_fault is not None:
            raise TwinError("fault", "a fault is already active; clear_fault() first")
        self._tick()
        t = self.clock.now_ns()
        # the pre-fault state and the fault state both carry the inception time, so the history
        # stays in time order on wall/accelerated clocks (the solve takes clock time)
        sym = self._default_symmetric(None)
        res = self._pf(sym)
        self._pf_result, self._pf_symmetric = res, sym
        pre = _with_time(self._state_from_pf(res, sym), t)
        self._set_state(pre)
        self._prefault = pre
        self.active_fault = fault
        breaker = self.protecting_breaker(fault)
        self.events.append(
            TwinEvent(t, "fault", fault.branch_id, {"fault": fault, "breaker": breaker})
        )
        # inception time, not "after the solve": on an accelerated clock the solve itself would
        # otherwise delay the trip
        self._recompute(time_ns=t)
        return self.state

    def clear_fault(self) -> GridState:
        """The fault disappears (repaired, or a transient fault extinguished). Open switches stay
        open: re-energising is the operator's (or FLISR's) job."""
        if self.active_fault is not None:
            self.events.append(
                TwinEvent(self.clock.now_ns(), "clear", self.active_fault.branch_id, {})
            )
        self.active_fault = None
        self._pending_trips.clear()
        self._recompute()
        return self.state

    # ------------------------------------------------------------------ protection
    def protecting_breaker(self, fault: Fault) -> str | None:
        """The breaker that clears ``fault``: the one nearest the fault on its path to a source
        over closed branches (the faulted feeder's breaker in a radial grid)."""
        b = self._branch_index[fault.branch_id]
        for end in (int(self._br_from[b]), int(self._br_to[b])):
            path = self._path_to_source(end)
            if path is None or b in path:
                continue
            for br in [b, *path]:  # from the fault towards the source
                name = self._breaker_on(br)
                if name is not None:
                    return name
        return None

    def _breaker_on(self, br: int) -> str | None:
        sw = self.branch_ids[br]
        if self.grid.switch_role.get(sw) == "breaker":
            return sw
        ct, row = self.pgm.branch_rows[br]
        for name, ref in self.pgm.switches.items():
            if (
                ref.component is ct
                and ref.row == row
                and ref.component is not CT.link
                and self.grid.switch_role.get(name) == "breaker"
            ):
                return name
        return None

    def _graph(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        closed = self.branch_closed()
        return self._br_from[closed], self._br_to[closed], np.nonzero(closed)[0]

    def _path_to_source(self, start: int) -> list[int] | None:
        f, t, br = self._graph()
        n = len(self.node_ids)
        root = n  # virtual node joined to every source
        rows = np.concatenate([f, t, self._source_rows, np.full(len(self._source_rows), root)])
        cols = np.concatenate([t, f, np.full(len(self._source_rows), root), self._source_rows])
        g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        _, pred = breadth_first_order(g, root, directed=False, return_predecessors=True)
        if pred[start] < 0 and start != root:
            return None
        edge = {}
        for k, (a, b) in enumerate(zip(f, t, strict=True)):
            edge.setdefault((int(a), int(b)), int(br[k]))
            edge.setdefault((int(b), int(a)), int(br[k]))
        path, node = [], start
        while pred[node] >= 0 and pred[node] != root:
            p = int(pred[node])
            path.append(edge[(node, p)])
            node = p
        return path

    def _tick(self) -> None:
        if not self._pending_trips:
            return
        now = self.clock.now_ns()
        due = sorted(x for x in self._pending_trips if x[0] <= now)
        if not due:
            return
        self._pending_trips = [x for x in self._pending_trips if x[0] > now]
        for t, breaker in due:
            self._set_switch(breaker, False)
            self.events.append(TwinEvent(t, "trip", breaker, {"delay_s": self.trip_delay_s}))
            self._recompute(time_ns=t)

    def advance(self, seconds: float) -> GridState:
        """Move a stepped clock forward and let protection act; returns the state after."""
        if not math.isfinite(seconds) or seconds < 0:
            raise TwinError("seconds", f"{seconds!r} must be a finite number >= 0")
        if self.clock.mode is ClockMode.STEPPED:
            self.clock.advance(seconds)
        else:
            raise TwinError(
                "clock",
                "advance() needs a stepped clock; wall/accelerated clocks "
                "move by themselves (read twin.state)",
            )
        return self.state

    def _recompute(self, time_ns: int | None = None) -> None:
        """Re-solve after any change; with an active fault on an energised node, the fault state
        (and a trip is scheduled if none is pending)."""
        sym = self._default_symmetric(None)
        res = self._pf(sym)
        self._pf_result, self._pf_symmetric = res, sym
        fault = self.active_fault
        if fault is not None:
            b = self._branch_index[fault.branch_id]
            ct, row = self.pgm.branch_rows[b]
            live = res[CT.node]["energized"]
            ends = (self._br_from[b], self._br_to[b])
            seg_closed = self._line_seg_live(ct, row, fault)
            if any(live[e] for e, ok in zip(ends, seg_closed, strict=True) if ok):
                st = self.compute_fault(fault)
                if not self._pending_trips:
                    br = self.protecting_breaker(fault)
                    if br is not None:
                        t0 = time_ns if time_ns is not None else self.clock.now_ns()
                        self._pending_trips.append((t0 + int(self.trip_delay_s * 1e9), br))
                if time_ns is not None:
                    st = _with_time(st, time_ns)
                self._set_state(st)
                return
        st = self._state_from_pf(res, sym)
        if time_ns is not None:
            st = _with_time(st, time_ns)
        self._set_state(st)

    def _line_seg_live(self, ct: CT, row: int, fault: Fault) -> tuple[bool, bool]:
        """Whether the fault point is connected to the from / to terminal of its branch."""
        inp = self.pgm.input[ct]
        fs, ts = bool(inp["from_status"][row]), bool(inp["to_status"][row])
        if fault.fraction == 0.0:
            return (True, fs and ts)
        if fault.fraction == 1.0:
            return (fs and ts, True)
        return (fs, ts)

    # ------------------------------------------------------------------ switching
    def _switch_closed(self, switch_id: str) -> bool:
        ref = self.pgm.switches[switch_id]
        arr = self.pgm.input[ref.component]
        return all(bool(arr[f"{s}_status"][ref.row]) for s in ref.sides)

    def switch_states(self) -> dict[str, bool]:
        return {s: self._switch_closed(s) for s in self.pgm.switches}

    def switch_role(self, switch_id: str) -> str:
        return self.grid.switch_role.get(switch_id, "switch")

    def _set_switch(self, switch_id: str, closed: bool) -> None:
        ref = self.pgm.switches[switch_id]
        arr = self.pgm.input[ref.component]
        upd = initialize_array("update", ref.component, 1)
        upd["id"] = arr["id"][ref.row]
        for s in ref.sides:
            arr[f"{s}_status"][ref.row] = int(closed)
            upd[f"{s}_status"] = int(closed)
        self._model.update(update_data={ref.component: upd})

    def operate(self, switch_id: str, closed: bool) -> GridState:
        """Open (``closed=False``) or close a breaker, sectionalizer or tie; re-solves."""
        if switch_id not in self.pgm.switches:
            raise TwinError("switch_id", f"{switch_id!r} is not a switch of grid {self.name!r}")
        if not isinstance(closed, bool):
            raise TwinError("closed", f"{closed!r} must be true or false")
        self._tick()
        t = self.clock.now_ns()
        self._set_switch(switch_id, closed)
        self.events.append(TwinEvent(t, "operate", switch_id, {"closed": closed}))
        if closed:
            # Closing onto a de-energised fault re-arms protection.
            self._pending_trips = [p for p in self._pending_trips if p[1] != switch_id]
        self._recompute(time_ns=t)
        return self.state

    def branch_ends(self) -> list[tuple[str, str]]:
        """(from_node, to_node) of every branch, in ``branch_ids`` order."""
        return [
            (self.node_ids[f], self.node_ids[t])
            for f, t in zip(self._br_from, self._br_to, strict=True)
        ]

    def branch_closed(self) -> np.ndarray:
        """(n_branches,) bool: both terminal statuses closed."""
        out = np.zeros(len(self.branch_ids), dtype=bool)
        for k, (ct, row) in enumerate(self.pgm.branch_rows):
            a = self.pgm.input[ct]
            out[k] = bool(a["from_status"][row]) and bool(a["to_status"][row])
        return out

    def is_radial(self) -> bool:
        """True when every energised part is a tree hanging from exactly one source (sources and
        primary busbars merged into one root, so two primaries joined through a closed tie
        count as a loop, and parallel primary transformers do not)."""
        f, t, _ = self._graph()
        n = len(self.node_ids)
        root = n
        is_root = np.zeros(n + 1, dtype=bool)
        is_root[self._source_rows] = True
        is_root[root] = True
        f = np.where(is_root[f], root, f)
        t = np.where(is_root[t], root, t)
        keep = f != t
        f, t = f[keep], t[keep]
        g = coo_matrix((np.ones(len(f)), (f, t)), shape=(n + 1, n + 1))
        ncomp, labels = connected_components(g, directed=False)
        edges_per = np.bincount(labels[f], minlength=ncomp)
        nodes_per = np.bincount(labels[np.r_[np.nonzero(~is_root[:n])[0], root]], minlength=ncomp)
        used = nodes_per > 0
        return bool(np.all(edges_per[used] <= nodes_per[used] - 1))

    # ------------------------------------------------------------------ customers and loads
    def _customer(self, customer_id: str) -> int:
        if customer_id not in self._customer_row:
            raise TwinError(
                "customer_id", f"{customer_id!r} is not a customer of grid {self.name!r}"
            )
        return self._customer_row[customer_id]

    def _push_asym(self, row: int) -> None:
        arr = self.pgm.input[CT.asym_load]
        upd = initialize_array("update", CT.asym_load, 1)
        for col in ("id", "status", "p_specified", "q_specified"):
            upd[col] = arr[col][row]
        self._model.update(update_data={CT.asym_load: upd})

    def set_relay(self, customer_id: str, on: bool) -> GridState:
        """Customer's on/off relay (seed 002 operator unit)."""
        row = self._customer(customer_id)
        if not isinstance(on, bool):
            raise TwinError("on", f"{on!r} must be true or false")
        self.pgm.input[CT.asym_load]["status"][row] = int(on)
        self.customers[customer_id].relay_on = on
        self._push_asym(row)
        self.events.append(TwinEvent(self.clock.now_ns(), "relay", customer_id, {"on": on}))
        self._recompute()
        return self.state

    def select_phase(self, customer_id: str, phase: str) -> GridState:
        """Move a single-phase customer to phase a, b or c (seed 002 phase switching)."""
        row = self._customer(customer_id)
        if phase not in ("a", "b", "c"):
            raise TwinError("phase", f"{phase!r} is not one of 'a', 'b', 'c'")
        c = self.customers[customer_id]
        k = "abc".index(phase)
        arr = self.pgm.input[CT.asym_load]
        arr["p_specified"][row] = 0.0
        arr["q_specified"][row] = 0.0
        arr["p_specified"][row][k] = c.p_w
        arr["q_specified"][row][k] = c.q_var
        c.phase = phase
        self._push_asym(row)
        self.events.append(TwinEvent(self.clock.now_ns(), "phase", customer_id, {"phase": phase}))
        self._recompute()
        return self.state

    def customer_phase(self, customer_id: str) -> str:
        self._customer(customer_id)
        return self.customers[customer_id].phase

    @property
    def load_ids(self) -> tuple[str, ...]:
        return tuple(self.pgm.load_names)

    @property
    def gen_ids(self) -> tuple[str, ...]:
        return tuple(self.pgm.gen_names)

    def gen_power(self) -> dict[str, tuple[float, float]]:
        """Each generator's current (P W, Q var) setpoint, e.g. to scale PV by a profile."""
        arr = self.pgm.input.get(CT.sym_gen)
        if arr is None:
            return {}
        return {
            gid: (float(arr["p_specified"][r]), float(arr["q_specified"][r]))
            for gid, r in self._gen_row.items()
        }

    def _update_pq(self, ct: Any, rows: list[int], p: list[float], q: list[float]) -> None:
        """Set P and Q of ``rows`` of a symmetric load/generator table, in the input copy and
        in the standing PGM model."""
        if not rows:
            return
        arr = self.pgm.input[ct]
        r = np.array(rows)
        arr["p_specified"][r] = p
        arr["q_specified"][r] = q
        upd = initialize_array("update", ct, len(r))
        upd["id"] = arr["id"][r]
        upd["p_specified"] = arr["p_specified"][r]
        upd["q_specified"] = arr["q_specified"][r]
        self._model.update(update_data={ct: upd})

    def set_load_power(
        self, p_w: dict[str, float], q_var: dict[str, float] | None = None, *, solve: bool = True
    ) -> None:
        """Set three-phase loads' total active/reactive power (profiles drive this). For
        customers use their id: the power goes on their selected phase. Generator ids
        (:attr:`gen_ids`, e.g. simbench PV) take their generated power."""
        q_var = q_var or {}
        sl_rows, sl_p, sl_q, cust = [], [], [], []
        gen_rows, gen_p, gen_q = [], [], []
        for lid, p in p_w.items():
            if not isinstance(p, int | float) or not math.isfinite(p):
                raise TwinError(f"p_w[{lid}]", f"{p!r} is not a finite number")
            if lid in self._load_row:
                r = self._load_row[lid]
                sl_rows.append(r)
                sl_p.append(p)
                sl_q.append(q_var.get(lid, self.pgm.input[CT.sym_load]["q_specified"][r]))
            elif lid in self._customer_row:
                cust.append(lid)
            elif lid in self._gen_row:
                r = self._gen_row[lid]
                gen_rows.append(r)
                gen_p.append(p)
                gen_q.append(q_var.get(lid, self.pgm.input[CT.sym_gen]["q_specified"][r]))
            else:
                raise TwinError("load_id", f"{lid!r} is not a load or customer of {self.name!r}")
        self._update_pq(CT.sym_gen, gen_rows, gen_p, gen_q)
        self._update_pq(CT.sym_load, sl_rows, sl_p, sl_q)
        for cid in cust:
            c = self.customers[cid]
            c.p_w = float(p_w[cid])
            c.q_var = float(q_var.get(cid, c.q_var))
            row = self._customer_row[cid]
            arr = self.pgm.input[CT.asym_load]
            k = "abc".index(c.phase)
            arr["p_specified"][row] = 0.0
            arr["q_specified"][row] = 0.0
            arr["p_specified"][row][k] = c.p_w
            arr["q_specified"][row][k] = c.q_var
            self._push_asym(row)
        if solve:
            self._recompute()

    # ------------------------------------------------------------------ batch
    def fault_batch(self, faults: list[Fault]) -> list[GridState]:
        """During-fault states for many faults from the present pre-fault state (no events, no
        protection). The pre-fault power flow and load admittances are computed once; all
        fault positions on distinct lines are split into ONE model and solved as one PGM batch
        (a line faulted at several positions takes one extra model per extra position).
        Splitting an unfaulted line only redistributes its charging capacitance (relative
        effect < 1e-6), so results equal :meth:`compute_fault` to that precision."""
        if not faults:
            return []
        if self.has_customers and any(f.kind == "3ph" for f in faults):
            # see compute_fault: these go through the asymmetric power flow one by one
            rest = [f for f in faults if f.kind != "3ph"]
            done = iter(self.fault_batch(rest)) if rest else iter(())
            return [self.compute_fault(f) if f.kind == "3ph" else next(done) for f in faults]
        located = [(f, *self._check_fault(f)) for f in faults]
        sym = self._default_symmetric(None)
        res = self._pf(sym)
        base = {
            k: v
            for k, v in self.pgm.input.items()
            if k not in (CT.sym_load, CT.asym_load, CT.sym_gen, CT.asym_gen)
        }
        sh = self._shunts_from_pf(res, sym)
        base[CT.shunt] = (
            np.concatenate([self.pgm.input[CT.shunt], sh]) if CT.shunt in self.pgm.input else sh
        )
        self._merge_load_elements(base)
        id0 = _max_id(base) + 1
        # rounds: each line split at most once per model
        positions: dict[tuple[str, float], int] = {}
        rounds: list[list[tuple[Fault, CT, int]]] = []
        seen_lines: dict[str, int] = {}
        pos_round: dict[tuple[str, float], tuple[int, int]] = {}
        for f, ct, row in located:
            key = (f.branch_id, f.fraction)
            if key in positions:
                continue
            positions[key] = len(positions)
            r = seen_lines.get(f.branch_id, -1) + 1 if 0 < f.fraction < 1 else 0
            if 0 < f.fraction < 1:
                seen_lines[f.branch_id] = r
            while len(rounds) <= r:
                rounds.append([])
            pos_round[key] = (r, len(rounds[r]))
            rounds[r].append((f, ct, row))
        out: list[GridState | None] = [None] * len(faults)
        for r, items in enumerate(rounds):
            idx = [
                k
                for k, (f, _, _) in enumerate(located)
                if pos_round[(f.branch_id, f.fraction)][0] == r
            ]
            inp, fnodes, splits = self._split_many(base, items, id0)
            fid = id0 + 2 * len(items) + 1
            fl = initialize_array("input", CT.fault, 1)
            fl["id"] = fid
            fl["status"] = 1
            fl["fault_type"] = faults[idx[0]].fault_type
            fl["fault_phase"] = faults[idx[0]].fault_phase
            fl["fault_object"] = fnodes[0]
            inp[CT.fault] = fl
            upd = initialize_array("update", CT.fault, (len(idx), 1))
            upd["id"] = fid
            upd["status"] = 1
            for j, k in enumerate(idx):
                f = faults[k]
                upd["fault_object"][j] = fnodes[pos_round[(f.branch_id, f.fraction)][1]]
                upd["fault_type"][j] = f.fault_type
                upd["fault_phase"][j] = f.fault_phase
                upd["r_f"][j] = f.r_f_ohm
                upd["x_f"][j] = f.x_f_ohm
            try:
                res_sc = PowerGridModel(inp).calculate_short_circuit(
                    update_data={CT.fault: upd},
                    short_circuit_voltage_scaling=ShortCircuitVoltageScaling.minimum,
                    output_component_types=[
                        CT.node,
                        CT.fault,
                        *(c for c in BRANCH_TYPES if c in inp),
                    ],
                )
            except PowerGridError as exc:
                raise LoadflowNotConverged(self.name, f"fault batch: {exc}") from None
            node_row = {int(i): q for q, i in enumerate(inp[CT.node]["id"])}
            states = self._states_from_sc(
                res_sc, splits, [node_row[int(upd["fault_object"][j, 0])] for j in range(len(idx))]
            )
            for j, k in enumerate(idx):
                out[k] = states[j]
        return [s for s in out if s is not None]

    # ------------------------------------------------------------------ model data
    def line_data(self) -> list[LineData]:
        """Per-section series/shunt data of every line (what a fault locator needs)."""
        ln = self.pgm.input.get(CT.line)
        if ln is None:
            return []
        out = []
        for k, name in enumerate(self.pgm.line_names):
            km = float(self.pgm.line_length_km[k]) or 1e-9
            out.append(
                LineData(
                    id=name,
                    from_node=self.pgm.node_names[self.pgm.node_row[int(ln["from_node"][k])]],
                    to_node=self.pgm.node_names[self.pgm.node_row[int(ln["to_node"][k])]],
                    length_m=km * 1000.0,
                    r1_ohm_per_km=float(ln["r1"][k]) / km,
                    x1_ohm_per_km=float(ln["x1"][k]) / km,
                    c1_nf_per_km=float(ln["c1"][k]) / km * 1e9,
                    r0_ohm_per_km=float(ln["r0"][k]) / km,
                    x0_ohm_per_km=float(ln["x0"][k]) / km,
                    c0_nf_per_km=float(ln["c0"][k]) / km * 1e9,
                    i_max_a=float(ln["i_n"][k]),
                    closed=bool(ln["from_status"][k] and ln["to_status"][k]),
                )
            )
        return out

    def transformer_data(self) -> list[TransformerData]:
        tr = self.pgm.input.get(CT.transformer)
        if tr is None:
            return []
        wind = {0: "Y", 1: "YN", 2: "D"}
        out = []
        for k, name in enumerate(self.pgm.trafo_names):
            vg = (
                f"{wind.get(int(tr['winding_from'][k]), '?')}"
                f"{wind.get(int(tr['winding_to'][k]), '?').lower()}{int(tr['clock'][k])}"
            )
            out.append(
                TransformerData(
                    id=name,
                    from_node=self.pgm.node_names[self.pgm.node_row[int(tr["from_node"][k])]],
                    to_node=self.pgm.node_names[self.pgm.node_row[int(tr["to_node"][k])]],
                    sn_va=float(tr["sn"][k]),
                    u1_v=float(tr["u1"][k]),
                    u2_v=float(tr["u2"][k]),
                    uk=float(tr["uk"][k]),
                    pk_w=float(tr["pk"][k]),
                    i0=float(tr["i0"][k]),
                    p0_w=float(tr["p0"][k]),
                    vector_group=vg,
                    closed=bool(tr["from_status"][k] and tr["to_status"][k]),
                )
            )
        return out

    def load_data(self) -> list[LoadData]:
        out = []
        inp = self.pgm.input
        if CT.sym_load in inp:
            a = inp[CT.sym_load]
            for k, name in enumerate(self.pgm.load_names):
                out.append(
                    LoadData(
                        name,
                        self.pgm.node_names[self.pgm.node_row[int(a["node"][k])]],
                        np.full(3, a["p_specified"][k] / 3),
                        np.full(3, a["q_specified"][k] / 3),
                        bool(a["status"][k]),
                        "3ph",
                    )
                )
        if CT.asym_load in inp:
            a = inp[CT.asym_load]
            for k, name in enumerate(self.pgm.asym_load_names):
                out.append(
                    LoadData(
                        name,
                        self.pgm.node_names[self.pgm.node_row[int(a["node"][k])]],
                        a["p_specified"][k].copy(),
                        a["q_specified"][k].copy(),
                        bool(a["status"][k]),
                        "customer",
                    )
                )
        return out

    def node_voltage_kv(self, node_id: str) -> float:
        if node_id not in self._node_index:
            raise TwinError("node_id", f"{node_id!r} is not a node of grid {self.name!r}")
        return float(self._u_rated[self._node_index[node_id]] / 1000.0)

    # ------------------------------------------------------------------ topology
    def topology_document(self) -> TopologyDocument:
        g = self.grid
        nodes = []
        for k, n in enumerate(self.node_ids):
            xy = g.coords.get(n)
            nodes.append(
                TopologyNode(
                    id=n,
                    kind=g.node_kind.get(n, "source" if k in set(self._source_rows) else "bus"),
                    voltage_kv=float(self._u_rated[k] / 1000.0),
                    feeder=g.node_feeder.get(n),
                    x=xy[0] if xy else None,
                    y=xy[1] if xy else None,
                )
            )
        closed = self.branch_closed()
        line_switch = {
            (ref.component, ref.row): name
            for name, ref in self.pgm.switches.items()
            if ref.component is not CT.link
        }
        branches = []
        for k, b in enumerate(self.branch_ids):
            ct, row = self.pgm.branch_rows[k]
            meta: dict[str, Any] = {}
            length_m = None
            if ct is CT.line:
                net_line = g.net.line
                std = net_line.loc[net_line["name"] == b, "std_type"]
                kind = "cable"
                if len(std):
                    meta["cable_type"] = str(std.iloc[0])
                    ltype = net_line.loc[net_line["name"] == b, "type"]
                    kind = "line" if len(ltype) and ltype.iloc[0] == "ol" else "cable"
                length_m = float(self.pgm.line_length_km[row] * 1000.0)
                sw = line_switch.get((ct, row))
                if sw:
                    meta["switch_id"] = sw
                    meta["switch_role"] = self.switch_role(sw)
                switchable = sw is not None
                normally_open = bool(sw and self._normally_open[sw])
            elif ct is CT.transformer:
                kind = "transformer"
                sw = line_switch.get((ct, row))
                switchable = sw is not None
                normally_open = False
            else:
                role = self.switch_role(b)
                kind = role if role in ("breaker", "sectionalizer", "tie", "switch") else "link"
                switchable = role != "link"
                normally_open = self._normally_open[b]
            branches.append(
                TopologyBranch(
                    id=b,
                    from_node=self.node_ids[self._br_from[k]],
                    to_node=self.node_ids[self._br_to[k]],
                    kind=kind,
                    closed=bool(closed[k]),
                    normally_open=normally_open,
                    switchable=switchable,
                    length_m=length_m,
                    metadata=meta,
                )
            )
        placements = [
            DevicePlacement(device_id=m.id, node_id=m.node_id, branch_id=m.branch_id)
            for m in g.measurement_points
        ]
        return TopologyDocument(
            grid=self.name, nodes=nodes, branches=branches, placements=placements
        )

    def summary(self) -> dict[str, int]:
        """Counts for ``gridedge twin grids``."""
        roles = [self.switch_role(s) for s in self.pgm.switches]
        feeders = len(set(self.grid.node_feeder.values()))
        return {
            "buses": len(self.node_ids),
            "lines": len(self.pgm.line_names),
            "transformers": len(self.pgm.trafo_names),
            "switches": sum(1 for r in roles if r != "link"),
            "loads": len(self.pgm.load_names) + len(self.pgm.asym_load_names),
            "feeders": feeders,
        }


def _max_id(inp: dict) -> int:
    return max(int(v["id"].max()) for v in inp.values() if len(v))


def _with_time(st: GridState, time_ns: int) -> GridState:
    from dataclasses import replace

    return replace(st, time_ns=time_ns, _node_index={}, _branch_index={})


def fnode_row(twin: Twin, pgm_node_id: int) -> int:
    return twin.pgm.node_row[int(pgm_node_id)]


def _trim(res: dict, n_nodes: int, base_inp: dict) -> dict:
    """Drop the fault node / segment rows so the result aligns with the base model."""
    out = {}
    for ct, arr in res.items():
        if ct is CT.node:
            out[ct] = arr[:n_nodes]
        elif ct in base_inp:
            out[ct] = arr[: len(base_inp[ct])]
        else:
            out[ct] = arr
    return out
