"""A phase-domain linear model of one radial feeder, fed at its head by a *measured* voltage.

Why this shape: the feeder-head meter measures the busbar voltage during the fault, so the
feeder can be solved without knowing the source or the other feeders of the same busbar. With
loads as constant admittances (what they are during the few cycles of a fault, REFERENCE §1.5
item 6) the feeder is linear, so a fault anywhere along any section is one 3×3 solve against the
feeder's impedance matrix: thousands of candidate faults per millisecond, which is what lets the
locator fit position *and* fault resistance to every measurement it has instead of trusting one
loop equation.
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

A_OP = np.exp(2j * np.pi / 3)
# symmetrical components: x_abc = SEQ @ x_012
SEQ = np.array([[1, 1, 1], [1, A_OP**2, A_OP], [1, A_OP, A_OP**2]], dtype=complex)
SEQ_INV = np.linalg.inv(SEQ)
PHASES = ("a", "b", "c")
RF_FLOOR_OHM = 1e-4  # a bolted fault still has some ohms; keeps the fault admittance finite
# every build of every model gets its own number: caches key on it (an id() of a freed matrix
# is soon reused, and copies of one model must not take each other's cached solutions)
_BUILDS = itertools.count(1)


class FaultKind(StrEnum):
    SLG = "slg"  # single phase to ground
    LL = "ll"  # two phases, clear of ground
    LLG = "llg"  # two phases and ground
    THREE_PHASE = "3ph"

    @classmethod
    def parse(cls, value: str) -> FaultKind:
        """Also accepts the twin's names (1ph, 2ph, 2ph-g, 3ph)."""
        return cls(TWIN_KINDS.get(value, value))


TWIN_KINDS = {"1ph": "slg", "2ph": "ll", "2ph-g": "llg", "3ph": "3ph"}
KIND_TO_TWIN = {v: k for k, v in TWIN_KINDS.items()}


def sequence_to_phase(z1: complex, z0: complex) -> np.ndarray:
    """3×3 phase matrix of a transposed element from its positive- and zero-sequence values."""
    zs = (z0 + 2 * z1) / 3
    zm = (z0 - z1) / 3
    return np.full((3, 3), zm, dtype=complex) + np.eye(3) * (zs - zm)


def dyn_view(clock: int = 11) -> np.ndarray:
    """What an LV phase-to-neutral voltage is of the MV phase voltages behind a Dyn transformer
    (per unit of the ratio): positive sequence shifted by -clock·30°, negative by +clock·30°, zero
    blocked. An MV line-to-ground fault therefore appears on LV as a two-phase sag."""
    th = np.deg2rad(30 * clock)
    return SEQ @ np.diag([0, np.exp(-1j * th), np.exp(1j * th)]) @ SEQ_INV


def fault_admittances(kind: FaultKind | str, phases: str, rf_ohm: np.ndarray) -> np.ndarray:
    """:func:`fault_admittance` for many resistances at once: (k, 3, 3)."""
    kind = FaultKind(kind)
    rf = np.maximum(np.asarray(rf_ohm, dtype=float), RF_FLOOR_OHM)
    g = 1.0 / rf
    idx = [PHASES.index(p) for p in phases]
    y = np.zeros((rf.size, 3, 3), dtype=complex)
    if kind == FaultKind.LL:
        p, q = idx[:2]
        y[:, p, p] = y[:, q, q] = g
        y[:, p, q] = y[:, q, p] = -g
    elif kind == FaultKind.LLG:
        bolt = 1.0 / RF_FLOOR_OHM
        for p in idx:
            for q in idx:
                y[:, p, q] = (bolt if p == q else 0.0) - bolt * bolt / (len(idx) * bolt + g)
    else:
        for p in idx:
            y[:, p, p] = g
    return y


def fault_admittance(kind: FaultKind | str, phases: str, rf_ohm: float) -> np.ndarray:
    """3×3 admittance from the faulted point to ground for a fault through ``rf_ohm``.

    Conventions (the twin's, i.e. power-grid-model's short circuit as it behaves): SLG — Rf from
    the phase to ground; LL — Rf once between the two phases (REFERENCE §1.5 item 4); LLG — the
    two phases joined solidly and Rf from the joint to ground; 3ph — each phase to ground
    through Rf (for a balanced fault the same as Rf to a common star point)."""
    kind = FaultKind(kind)
    rf = max(float(rf_ohm), RF_FLOOR_OHM)
    idx = [PHASES.index(p) for p in phases]
    y = np.zeros((3, 3), dtype=complex)
    g = 1.0 / rf
    if kind == FaultKind.LL:
        p, q = idx[:2]
        y[p, p] = y[q, q] = g
        y[p, q] = y[q, p] = -g
    elif kind == FaultKind.LLG:
        bolt = 1.0 / RF_FLOOR_OHM  # phases joined; Kron-reduce the joint, Rf to ground
        for p in idx:
            for q in idx:
                y[p, q] = (bolt if p == q else 0.0) - bolt * bolt / (len(idx) * bolt + g)
    else:
        for p in idx:
            y[p, p] = g
    return y


@dataclass
class Section:
    id: str
    from_node: str
    to_node: str
    z: np.ndarray  # total series impedance, 3×3 ohm
    y_shunt: np.ndarray  # total shunt admittance, 3×3 S (half at each end)
    length_m: float


@dataclass
class Load:
    """A load as constant admittance at its node. ``grounded`` False: seen through a delta
    winding (MV/LV transformer Dyn) or wye-ungrounded, so it draws no zero-sequence current."""

    node: str
    s_va: complex  # three-phase total, pre-fault
    grounded: bool = True
    v_ph: float | None = None  # pre-fault phase voltage magnitude it draws s_va at (None: nominal)


@dataclass
class FeederModel:
    """One feeder as currently switched: the head node (the busbar the head meter sees), the
    sections oriented away from it, loads at their nodes, and what each meter sees at its node."""

    head_node: str
    sections: list[Section]
    loads: list[Load]
    v_nominal_ll: float
    meter_views: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    _built: bool = field(default=False, repr=False)

    # ---------------------------------------------------------------- structure
    def __post_init__(self) -> None:
        self._orient()

    def _orient(self) -> None:
        """Orient sections away from the head (BFS) and drop what is not reachable."""
        adj: dict[str, list[Section]] = {}
        for s in self.sections:
            adj.setdefault(s.from_node, []).append(s)
            adj.setdefault(s.to_node, []).append(s)
        order: list[Section] = []
        seen = {self.head_node}
        queue = deque([self.head_node])
        while queue:
            u = queue.popleft()
            for s in adj.get(u, []):
                v = s.to_node if s.from_node == u else s.from_node
                if v in seen:
                    continue
                if s.from_node != u:
                    s.from_node, s.to_node = u, v
                seen.add(v)
                order.append(s)
                queue.append(v)
        self.sections = order
        self.nodes = [s.to_node for s in order]  # feeder nodes without the head
        self.node_index = {n: i for i, n in enumerate(self.nodes)}
        self.section_index = {s.id: i for i, s in enumerate(order)}
        self.parent = {s.to_node: s for s in order}
        self.children: dict[str, list[Section]] = {}
        for s in order:
            self.children.setdefault(s.from_node, []).append(s)
        self.loads = [ld for ld in self.loads if ld.node in self.node_index]
        self._built = False

    def prepare(self) -> None:
        """Per-topology precomputation (the sections' admittance matrix), so that copies made
        by :meth:`with_loads` for each fault start with it."""
        self._line_admittance()

    def with_loads(self, s_va: Sequence[complex | None]) -> FeederModel:
        """The same feeder with new load data (one value per load, None: keep it), sharing
        everything that depends on the topology only (sections, meters' views, the sections'
        admittance matrix): what a fault needs per event, without rebuilding the feeder."""
        if len(s_va) != len(self.loads):
            raise ValueError(f"s_va: {len(s_va)} values for {len(self.loads)} loads")
        out = copy.copy(self)
        out.loads = [
            Load(ld.node, ld.s_va if s is None else complex(s), ld.grounded)
            for ld, s in zip(self.loads, s_va, strict=True)
        ]
        out._built = False
        return out

    @property
    def length_m(self) -> float:
        return float(sum(s.length_m for s in self.sections))

    def distance_from_head_m(self, node: str) -> float:
        d = 0.0
        while node != self.head_node:
            s = self.parent[node]
            d += s.length_m
            node = s.from_node
        return d

    def path_sections(self, node: str) -> list[Section]:
        out: list[Section] = []
        while node != self.head_node:
            s = self.parent[node]
            out.append(s)
            node = s.from_node
        return out[::-1]

    # ---------------------------------------------------------------- admittances
    def load_admittance(self, ld: Load, v_ph: float | None = None) -> np.ndarray:
        v = v_ph or ld.v_ph or self.v_nominal_ll / np.sqrt(3)
        y = np.conj(ld.s_va / 3) / v**2
        if ld.grounded:
            return np.eye(3) * y
        return y * (np.eye(3) - np.ones((3, 3)) / 3)

    def _line_admittance(self) -> np.ndarray:
        """Y of the sections alone (head + feeder nodes): fixed per topology, so cached; a
        fault only changes the loads on its diagonal."""
        key = tuple((s.id, s.from_node, s.to_node) for s in self.sections)
        cached = getattr(self, "_y_lines", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        n = len(self.nodes) + 1  # index 0 = head
        idx = {self.head_node: 0, **{k: i + 1 for k, i in self.node_index.items()}}
        Y = np.zeros((3 * n, 3 * n), dtype=complex)
        for s in self.sections:
            ys = np.linalg.inv(s.z)
            i, j = idx[s.from_node], idx[s.to_node]
            si, sj = slice(3 * i, 3 * i + 3), slice(3 * j, 3 * j + 3)
            Y[si, si] += ys + s.y_shunt / 2
            Y[sj, sj] += ys + s.y_shunt / 2
            Y[si, sj] -= ys
            Y[sj, si] -= ys
        self._y_lines = (key, Y)
        return Y

    def build(self) -> None:
        """Assemble Y (head + feeder nodes) and the feeder's impedance matrix with the head held
        at a fixed voltage."""
        Y = self._line_admittance().copy()
        for ld in self.loads:
            j = self.node_index[ld.node] + 1
            Y[3 * j : 3 * j + 3, 3 * j : 3 * j + 3] += self.load_admittance(ld)
        self.Y = Y
        self.Y_hh = Y[:3, :3]
        self.Y_hf = Y[:3, 3:]
        self.Y_fh = Y[3:, :3]
        self.Z = np.linalg.inv(Y[3:, 3:])
        # caches key on this counter, never on id(self.Z): a freed matrix's id is soon reused
        self._version = next(_BUILDS)
        self._built = True

    def ensure_built(self) -> None:
        if not self._built:
            self.build()

    # ---------------------------------------------------------------- healthy solutions
    def no_fault(self, v_head: np.ndarray) -> np.ndarray:
        """Feeder node voltages (n, 3) for a head voltage, loads as admittances."""
        self.ensure_built()
        key = (self._version, v_head.tobytes())
        cached = getattr(self, "_nf_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        out = (-self.Z @ (self.Y_fh @ v_head)).reshape(-1, 3)
        self._nf_cache = (key, out)
        return out

    def head_current(self, v_head: np.ndarray, v_nodes: np.ndarray) -> np.ndarray:
        return self.Y_hh @ v_head + self.Y_hf @ v_nodes.reshape(-1)

    def settle_loads(self, v_head_pre: np.ndarray, iterations: int = 3) -> None:
        """Make every load draw its power at its own pre-fault voltage (not at nominal): a
        feeder end at 0.94 pu would otherwise draw 12 % too little as a constant admittance."""
        for _ in range(iterations):
            self.build()
            v = self.no_fault(v_head_pre)
            for ld in self.loads:
                ld.v_ph = float(np.mean(np.abs(v[self.node_index[ld.node]])))
        self.build()

    def compensate_loads(
        self, v_head_pre: np.ndarray, i_head_pre: np.ndarray, iterations: int = 3
    ) -> complex:
        """Scale the load data so the model draws what the head meter measured before the fault
        (forecast errors are mostly common-mode; the head meter is the one reading that sees
        them all), each load drawing its power at its own pre-fault voltage (see
        :meth:`settle_loads`). Returns the measured-minus-model power before correction."""
        s_meas = complex(np.sum(v_head_pre * np.conj(i_head_pre)))
        first = None
        for _ in range(iterations):
            self.build()
            v = self.no_fault(v_head_pre)
            i_mod = self.head_current(v_head_pre, v)
            s_mod = complex(np.sum(v_head_pre * np.conj(i_mod)))
            delta = s_meas - s_mod
            if first is None:
                first = delta
            total_p = sum(ld.s_va.real for ld in self.loads) or 1.0
            for ld in self.loads:
                ld.v_ph = float(np.mean(np.abs(v[self.node_index[ld.node]])))
                share = ld.s_va.real / total_p if total_p else 1 / len(self.loads)
                ld.s_va = ld.s_va + delta * share
        self.build()
        return first if first is not None else 0j

    # ---------------------------------------------------------------- faults
    def _stack(
        self, watch: list[str], views: list[np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Per-section blocks of the impedance matrix, stacked for every section at once, the
        watched nodes' rows already seen through each meter's view (an LV meter behind a Dyn
        transformer). Cached per topology and meter set, so a fault pays only for its solves."""
        vkey = b"".join(np.asarray(v, dtype=complex).tobytes() for v in views) if views else b""
        key = (self._version, tuple(watch), vkey)
        cached = getattr(self, "_stack_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        n = len(self.nodes)
        zpad = np.concatenate([self.Z, np.zeros((3 * n, 3), dtype=complex)], axis=1)
        zpad = np.concatenate([zpad, np.zeros((3, 3 * n + 3), dtype=complex)], axis=0)
        head_ix = n  # the padded zero block stands for the head (fixed voltage)

        def ix(node: str) -> int:
            return head_ix if node == self.head_node else self.node_index[node]

        u = np.array([ix(s.from_node) for s in self.sections])
        v = np.array([ix(s.to_node) for s in self.sections])
        blocks = zpad.reshape(n + 1, 3, n + 1, 3).transpose(0, 2, 1, 3)  # (n+1, n+1, 3, 3)
        w_idx = np.array([self.node_index[w] for w in watch], dtype=int)
        vw = (
            np.asarray(views, dtype=complex).reshape(len(w_idx), 3, 3)
            if views
            else np.broadcast_to(np.eye(3, dtype=complex), (len(w_idx), 3, 3))
        )
        nb = [self.node_index[c.to_node] for c in self.children.get(self.head_node, [])]
        nb_idx = np.array(nb, dtype=int)

        def rows(idx: np.ndarray, ends: np.ndarray, view: np.ndarray | None) -> np.ndarray:
            b = blocks[idx][:, ends]  # (m, S, 3, 3)
            if view is not None:
                b = np.einsum("mij,msjk->msik", view, b)
            return b.transpose(1, 0, 2, 3).reshape(len(ends), 3 * len(idx), 3)

        out = {
            "u": u,
            "v": v,
            "zuu": blocks[u, u],
            "zvv": blocks[v, v],
            "zuv": blocks[u, v],
            "zvu": blocks[v, u],
            "z": np.stack([s.z for s in self.sections]),
            # rows of the watched (viewed) / head-neighbour nodes in the columns of u, v: (S,3m,3)
            "zu_w": rows(w_idx, u, vw),
            "zv_w": rows(w_idx, v, vw),
            "zu_n": rows(nb_idx, u, None),
            "zv_n": rows(nb_idx, v, None),
            "head_u": np.array([s.from_node == self.head_node for s in self.sections]),
            "w_idx": w_idx,
            "w_view": vw,
            "nb_idx": nb_idx,
        }
        out["zff_d0"] = out["zuu"]
        out["zff_d2"] = out["zuu"] + out["zvv"] - (out["zuv"] + out["zvu"] + out["z"])
        out["zff_d1"] = out["zuv"] + out["zvu"] + out["z"] - 2 * out["zuu"]
        if len(nb_idx):
            out["y_hf_nb"] = np.concatenate(
                [self.Y_hf[:, 3 * j : 3 * j + 3] for j in nb_idx], axis=1
            )
        self._stack_cache = (key, out)
        return out

    def fault_response_at(
        self,
        idx: np.ndarray,
        d: np.ndarray,
        y_fault: np.ndarray,
        v_head: np.ndarray,
        watch: list[str],
        views: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Faults at fractions ``d`` (S', k) of the sections ``idx`` (S',), admittances
        ``y_fault`` broadcastable to (S', k, 3, 3): the watched nodes' voltages as their meters
        see them (S', k, w, 3) and the head current (S', k, 3). One batched 3×3 solve and a few
        gemms for all of them: every section is refined at once instead of one at a time."""
        self.ensure_built()
        st = self._stack(watch, views)
        idx = np.asarray(idx, dtype=int)
        d = np.asarray(d, dtype=float)
        S, k = d.shape
        g = self._gather(st, idx)
        yf = np.broadcast_to(y_fault, (S, k, 3, 3))
        v0 = self.no_fault(v_head)
        v0p = np.concatenate([v0, v_head[None]], axis=0)  # head at the padded index
        v0u, v0v = v0p[g["u"]], v0p[g["v"]]  # (S,3)
        dd = d[..., None]
        vf0 = v0u[:, None, :] + dd * (v0v - v0u)[:, None, :]  # (S,k,3)
        d4 = d[..., None, None]
        zff = g["zff_d0"] + d4 * g["zff_d1"] + d4**2 * g["zff_d2"]  # (S,k,3,3)
        m = np.eye(3) + yf @ zff
        i_f = np.linalg.solve(m, (yf @ vf0[..., None]))[..., 0]  # (S,k,3)
        a = ((1 - dd) * i_f).transpose(0, 2, 1)  # (S,3,k)
        b = (dd * i_f).transpose(0, 2, 1)
        nw = len(st["w_idx"])
        if nw:
            dv = g["zu_w"] @ a + g["zv_w"] @ b  # (S,3nw,k)
            v0w = np.einsum("mij,mj->mi", st["w_view"], v0[st["w_idx"]])
            v_w = v0w[None, None] - dv.transpose(0, 2, 1).reshape(S, k, nw, 3)
        else:
            v_w = np.zeros((S, k, 0, 3), dtype=complex)
        i_head = np.broadcast_to(self.Y_hh @ v_head, (S, k, 3)).copy()
        if len(st["nb_idx"]):
            v_nb = v0[st["nb_idx"]].reshape(-1)[None, :, None] - (
                g["zu_n"] @ a + g["zv_n"] @ b
            )  # (S,3nb,k)
            i_head += (st["y_hf_nb"][None] @ v_nb).transpose(0, 2, 1)
        i_head += g["head_u"][:, None, None] * (1 - dd) * i_f
        return v_w, i_head

    def _gather(self, st: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
        """The stacked blocks of the sections ``idx``, gathered once and reused while an
        optimiser calls with the same starts (a gather per call copied ~1 MB each time)."""
        key = (id(st), idx.tobytes())
        cached = getattr(self, "_gather_cache", None)
        if cached is not None and cached[0] == key and cached[2] is st:
            return cached[1]
        g = {name: st[name][idx] for name in ("u", "v", "zu_w", "zv_w", "zu_n", "zv_n", "head_u")}
        for name in ("zff_d0", "zff_d1", "zff_d2"):
            g[name] = st[name][idx][:, None]
        self._gather_cache = (key, g, st)
        return g

    def _z_col(self, node: str) -> np.ndarray:
        """Z[:, node] as (n, 3, 3) blocks; zero for the head (held at a fixed voltage)."""
        n = len(self.nodes)
        if node == self.head_node:
            return np.zeros((n, 3, 3), dtype=complex)
        j = self.node_index[node]
        return self.Z[:, 3 * j : 3 * j + 3].reshape(n, 3, 3)

    def fault_response(
        self,
        section: Section,
        d: np.ndarray,
        y_fault: np.ndarray,
        v_head: np.ndarray,
        watch: list[str],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voltages at the ``watch`` nodes, head current and fault current for faults at
        fractions ``d`` (shape (k,)) of ``section`` with fault admittances ``y_fault`` ((k,3,3)
        or (3,3)). Returns v (k, len(watch), 3), i_head (k, 3), i_fault (k, 3)."""
        self.ensure_built()
        d = np.atleast_1d(np.asarray(d, dtype=float))
        k = d.size
        yf = np.broadcast_to(y_fault, (k, 3, 3))
        v0 = self.no_fault(v_head)
        u, v = section.from_node, section.to_node
        zu, zv = self._z_col(u), self._z_col(v)  # (n,3,3)
        v0u = v_head if u == self.head_node else v0[self.node_index[u]]
        v0v = v0[self.node_index[v]]
        vf0 = (1 - d)[:, None] * v0u + d[:, None] * v0v  # (k,3)

        def blk(zcol: np.ndarray, node: str) -> np.ndarray:
            if node == self.head_node:
                return np.zeros((3, 3), dtype=complex)
            return zcol[self.node_index[node]]

        zuu, zvv, zuv, zvu = blk(zu, u), blk(zv, v), blk(zv, u), blk(zu, v)
        dd = d[:, None, None]
        zff = (1 - dd) ** 2 * zuu + dd**2 * zvv + dd * (1 - dd) * (zuv + zvu + section.z)
        m = np.eye(3) + yf @ zff
        i_f = np.linalg.solve(m, (yf @ vf0[:, :, None]))[:, :, 0]  # (k,3)
        # voltages at watched nodes: V = V0 - Zu·((1-d)·I_F) - Zv·(d·I_F), two gemms
        a = ((1 - d)[:, None] * i_f).T  # (3, k)
        b = (d[:, None] * i_f).T
        w_idx = [self.node_index[w] for w in watch]
        nw = len(w_idx)
        if nw:
            zu_w = zu[w_idx].reshape(3 * nw, 3)
            zv_w = zv[w_idx].reshape(3 * nw, 3)
            dv = (zu_w @ a + zv_w @ b).T.reshape(k, nw, 3)
            v_w = v0[w_idx][None] - dv
        else:
            v_w = np.zeros((k, 0, 3), dtype=complex)
        # head current from the voltages of the head's neighbours
        nb = [s.to_node for s in self.children.get(self.head_node, [])]
        nb_idx = [self.node_index[x] for x in nb]
        i_head = np.broadcast_to(self.Y_hh @ v_head, (k, 3)).copy()
        if nb_idx:
            zu_n = zu[nb_idx].reshape(3 * len(nb_idx), 3)
            zv_n = zv[nb_idx].reshape(3 * len(nb_idx), 3)
            v_nb = v0[nb_idx].reshape(-1)[:, None] - (zu_n @ a + zv_n @ b)  # (3nb, k)
            y_hf_nb = np.concatenate([self.Y_hf[:, 3 * j : 3 * j + 3] for j in nb_idx], axis=1)
            i_head += (y_hf_nb @ v_nb).T
        if u == self.head_node:
            # the fault current splits (1-d) to the section's upstream end: here, the head itself
            i_head += (1 - d)[:, None] * i_f
        return v_w, i_head, i_f
