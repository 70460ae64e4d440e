"""Isolation and service restoration on the reconfiguration service's own copy of the grid model.

The grid is reduced to *zones*: the parts that stay connected whatever the switches do (lines,
transformers and fixed links merged). A fault lives in one zone; isolating it means opening every
switch on that zone's border — the nearest switches upstream and downstream. What is left is a
choice of which switches to close: a graph problem on zones, small even on a city grid.

Three solvers, one answer:

- :func:`exhaustive` — every combination of the switches that border a de-energised zone, radial
  ones checked by one power-grid-model batch; the reference (optimal by construction).
- :func:`milp` — one-period MILP in HiGHS: binary switch states and zone energisation, a
  single-commodity flow for connectivity plus the edge-count equation for radiality (Lavorato et
  al. 2012), zone power balance with switch capacities; the candidate is then checked with a
  real power flow and excluded by a no-good cut if a line, transformer or voltage limit is broken.
- Objective of both, lexicographic: restored load first, then fewest switching operations.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
from power_grid_model import CalculationMethod, PowerGridModel, initialize_array
from power_grid_model import ComponentType as CT
from power_grid_model.errors import PowerGridError

MAX_EXHAUSTIVE_SWITCHES = 18


class RestorationError(ValueError):
    """The request cannot be planned (unknown section, no model)."""


@dataclass
class SwitchEdge:
    id: str
    component: CT
    row: int
    sides: tuple[str, ...]
    zone_a: int
    zone_b: int
    closed: bool
    role: str = "switch"
    rating_w: float = float("inf")


@dataclass
class Plan:
    """What to do: switch operations in execution order (isolate, then close), and what it gives."""

    faulted_zone_nodes: list[str]
    isolate: list[str]  # switches to open
    close: list[str]  # switches to close (breaker reclose, ties)
    open_extra: list[str]  # further opens (splitting an island)
    states: dict[str, bool]  # final state of every switch
    restored_load_w: float
    lost_load_w: float  # de-energised healthy load left unserved
    interrupted_load_w: float  # healthy load de-energised before the plan
    operations: int
    feasible: bool
    v_min_pu: float
    max_loading: float
    method: str
    compute_s: float
    restored_nodes: list[str] = field(default_factory=list)
    restored_loads: int = 0  # loads (secondary substations) the trip cut and the plan brings back

    @property
    def steps(self) -> list[tuple[str, bool]]:
        return [(s, False) for s in self.isolate + self.open_extra] + [
            (s, True) for s in self.close
        ]


class GridRestoration:
    """The grid as switches between zones, with a power-flow check of any switch configuration.

    ``net`` is the twin's power-grid-model network (``gridedge.twin.pgm_bridge.PgmNetwork``):
    input arrays, node and branch names, and where every named switch acts. Limits: voltage
    within ±10 % (EN 50160's band; urban feeders already sit near 0.94 pu at their ends, so a
    ±5 % planning band would forbid the grid's own normal state) and loading ≤ 100 %."""

    def __init__(
        self,
        net,
        switch_roles: dict[str, str] | None = None,
        *,
        v_min_pu: float = 0.90,
        v_max_pu: float = 1.10,
        max_loading: float = 1.0,
        load_scale: np.ndarray | None = None,
    ) -> None:
        self.net = net
        self.v_min, self.v_max, self.max_loading = v_min_pu, v_max_pu, max_loading
        self.roles = dict(switch_roles or {})
        inp = net.input
        self.input = {k: v.copy() for k, v in inp.items()}
        if load_scale is not None and CT.sym_load in self.input:
            self.input[CT.sym_load]["p_specified"] *= load_scale
            self.input[CT.sym_load]["q_specified"] *= load_scale
        node_ids = inp[CT.node]["id"]
        self.node_names = list(net.node_names)
        self.node_of_id = {int(i): k for k, i in enumerate(node_ids)}
        self.u_rated = inp[CT.node]["u_rated"].astype(float)
        n = len(node_ids)
        parent = list(range(n))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        switch_rows = {(ref.component, ref.row) for ref in net.switches.values()}
        for ct in (CT.line, CT.transformer, CT.link):
            if ct not in inp:
                continue
            arr = inp[ct]
            for r in range(len(arr)):
                if (ct, r) in switch_rows:
                    continue
                if not (arr["from_status"][r] and arr["to_status"][r]):
                    continue
                a = self.node_of_id[int(arr["from_node"][r])]
                b = self.node_of_id[int(arr["to_node"][r])]
                parent[find(a)] = find(b)
        roots = sorted({find(i) for i in range(n)})
        zid = {r: k for k, r in enumerate(roots)}
        self.zone_of_node = np.array([zid[find(i)] for i in range(n)])
        self.n_zones = len(roots)
        self.zone_nodes: list[list[int]] = [[] for _ in range(self.n_zones)]
        for i, z in enumerate(self.zone_of_node):
            self.zone_nodes[z].append(i)
        # loads per zone
        self.zone_load_w = np.zeros(self.n_zones)
        self.zone_load_var = np.zeros(self.n_zones)
        self.zone_load_count = np.zeros(self.n_zones, dtype=int)
        for ct in (CT.sym_load, CT.asym_load):
            if ct not in self.input:
                continue
            arr = self.input[ct]
            for r in range(len(arr)):
                if not arr["status"][r]:
                    continue
                z = self.zone_of_node[self.node_of_id[int(arr["node"][r])]]
                self.zone_load_w[z] += float(np.sum(arr["p_specified"][r]))
                self.zone_load_count[z] += 1
                self.zone_load_var[z] += float(np.sum(arr["q_specified"][r]))
        self.source_zones = sorted(
            {int(self.zone_of_node[self.node_of_id[int(x)]]) for x in inp[CT.source]["node"]}
        )
        # switches between zones
        self.switches: list[SwitchEdge] = []
        for name, ref in net.switches.items():
            arr = inp[ref.component]
            a = self.node_of_id[int(arr["from_node"][ref.row])]
            b = self.node_of_id[int(arr["to_node"][ref.row])]
            closed = all(bool(arr[f"{s}_status"][ref.row]) for s in ref.sides)
            rating = float("inf")
            if ref.component == CT.line:
                rating = float(np.sqrt(3) * self.u_rated[a] * arr["i_n"][ref.row])
            self.switches.append(
                SwitchEdge(
                    name,
                    ref.component,
                    ref.row,
                    ref.sides,
                    int(self.zone_of_node[a]),
                    int(self.zone_of_node[b]),
                    closed,
                    self.roles.get(name, "switch"),
                    rating,
                )
            )
        self.switch_index = {s.id: k for k, s in enumerate(self.switches)}
        self._branch_zone = {}
        for name, (ct, r) in zip(net.branch_names, net.branch_rows, strict=True):
            arr = inp[ct]
            self._branch_zone[name] = int(
                self.zone_of_node[self.node_of_id[int(arr["from_node"][r])]]
            )

    # ------------------------------------------------------------------ topology helpers
    def zone_of(self, branch_or_node: str) -> int:
        if branch_or_node in self._branch_zone:
            return self._branch_zone[branch_or_node]
        try:
            return int(self.zone_of_node[self.node_names.index(branch_or_node)])
        except ValueError:
            raise RestorationError(
                f"faulted section {branch_or_node!r} is neither a branch nor a node of the model"
            ) from None

    def set_states(self, states: dict[str, bool]) -> None:
        for s in self.switches:
            if s.id in states:
                s.closed = bool(states[s.id])

    def energised_zones(self, closed: np.ndarray) -> tuple[np.ndarray, bool]:
        """Zones reached from a source over closed switches, and whether that is radial."""
        parent = list(range(self.n_zones))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        radial = True
        for s, c in zip(self.switches, closed, strict=True):
            if not c:
                continue
            ra, rb = find(s.zone_a), find(s.zone_b)
            if ra == rb:
                radial = False
            else:
                parent[ra] = rb
        src_roots = [find(z) for z in self.source_zones]
        if len(set(src_roots)) < len(src_roots):
            radial = False  # two sources paralleled
        roots = set(src_roots)
        en = np.array([find(z) in roots for z in range(self.n_zones)])
        return en, radial

    # ------------------------------------------------------------------ power flow check
    def power_flow(self, configs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v_min_pu over energised nodes, max branch loading) for each switch configuration
        (rows of ``configs``, one column per switch), one power-grid-model batch."""
        k = len(configs)
        upd: dict[CT, np.ndarray] = {}
        for ct in (CT.link, CT.line, CT.transformer):
            cols = [i for i, s in enumerate(self.switches) if s.component == ct]
            if not cols:
                continue
            ids = self.input[ct]["id"]
            u = initialize_array("update", ct, (k, len(ids)))
            u["id"] = ids
            u["from_status"] = self.input[ct]["from_status"]
            u["to_status"] = self.input[ct]["to_status"]
            for i in cols:
                s = self.switches[i]
                for side in s.sides:
                    u[f"{side}_status"][:, s.row] = configs[:, i].astype(np.int8)
            upd[ct] = u
        if getattr(self, "_pgm", None) is None:
            self._pgm = PowerGridModel(self.input)
        model = self._pgm
        try:
            out = model.calculate_power_flow(
                update_data=upd,
                calculation_method=CalculationMethod.newton_raphson,
                continue_on_batch_error=True,
                max_iterations=30,
            )
        except PowerGridError:
            return np.full(k, np.nan), np.full(k, np.inf)
        u_pu = out[CT.node]["u_pu"]  # (k, n)
        energised = out[CT.node]["energized"].astype(bool)
        vmin = np.where(energised, u_pu, np.inf).min(axis=1)
        vmax = np.where(energised, u_pu, -np.inf).max(axis=1)
        loading = np.zeros(k)
        for ct in (CT.line, CT.transformer):
            if ct in out:
                loading = np.maximum(loading, np.nan_to_num(out[ct]["loading"]).max(axis=1))
        bad = (vmax > self.v_max + 1e-9) | ~np.isfinite(vmin)
        vmin = np.where(bad & (vmax > self.v_max), -vmax, vmin)
        return vmin, loading

    def feasible(self, vmin: np.ndarray, loading: np.ndarray) -> np.ndarray:
        return (vmin >= self.v_min - 1e-9) & (loading <= self.max_loading + 1e-9)

    # ------------------------------------------------------------------ plan
    def isolation(self, faulted: str) -> tuple[int, list[int]]:
        """The faulted zone and the switches on its border (all to be opened)."""
        fz = self.zone_of(faulted)
        if fz in self.source_zones:
            raise RestorationError(
                f"faulted section {faulted!r} is inside a source zone: no switch can isolate it"
            )
        border = [i for i, s in enumerate(self.switches) if fz in (s.zone_a, s.zone_b)]
        return fz, border

    def _summarise(
        self,
        faulted: str,
        fz: int,
        border: list[int],
        closed: np.ndarray,
        method: str,
        t0: float,
        vmin: float,
        loading: float,
    ) -> Plan:
        x0 = np.array([s.closed for s in self.switches])
        en0, _ = self.energised_zones(x0)
        en, radial = self.energised_zones(closed)
        healthy = np.ones(self.n_zones, bool)
        healthy[fz] = False
        restored = float(self.zone_load_w[en & healthy].sum())
        lost = float(self.zone_load_w[~en & healthy].sum())
        interrupted = float(self.zone_load_w[~en0 & healthy].sum())
        isolate = [self.switches[i].id for i in border if x0[i]]
        border_set = set(border)
        close = [s.id for i, s in enumerate(self.switches) if closed[i] and not x0[i]]
        open_extra = [
            s.id
            for i, s in enumerate(self.switches)
            if not closed[i] and x0[i] and i not in border_set
        ]
        # breakers first among closes, ties last: the seeds' order (reclose, then back-feed)
        close.sort(
            key=lambda sid: {"breaker": 0, "sectionalizer": 1}.get(self.roles.get(sid, ""), 2)
        )
        ops = int(np.sum(closed != x0))
        nodes = [self.node_names[i] for z in np.flatnonzero(en) for i in self.zone_nodes[z]]
        return Plan(
            faulted_zone_nodes=[self.node_names[i] for i in self.zone_nodes[fz]],
            isolate=isolate,
            close=close,
            open_extra=open_extra,
            states={s.id: bool(closed[i]) for i, s in enumerate(self.switches)},
            restored_load_w=restored,
            lost_load_w=lost,
            interrupted_load_w=interrupted,
            operations=ops,
            feasible=bool(
                radial and vmin >= self.v_min - 1e-9 and loading <= self.max_loading + 1e-9
            ),
            v_min_pu=float(vmin),
            max_loading=float(loading),
            method=method,
            compute_s=time.perf_counter() - t0,
            restored_nodes=nodes,
            restored_loads=int(self.zone_load_count[~en0 & en & healthy].sum()),
        )


def _relevant_switches(g: GridRestoration, fz: int, border: list[int]) -> list[int]:
    """Switches worth deciding: those touching a zone that is dead once the fault is isolated
    (tripped breaker included), minus the border of the faulted zone."""
    x = np.array([s.closed for s in g.switches])
    x[border] = False
    en, _ = g.energised_zones(x)
    dead = set(np.flatnonzero(~en)) - {fz}
    bset = set(border)
    return [
        i
        for i, s in enumerate(g.switches)
        if i not in bset and (s.zone_a in dead or s.zone_b in dead)
    ]


def exhaustive(g: GridRestoration, faulted: str) -> Plan:
    """Every combination of the relevant switches; the reference optimum."""
    t0 = time.perf_counter()
    fz, border = g.isolation(faulted)
    rel = _relevant_switches(g, fz, border)
    if len(rel) > MAX_EXHAUSTIVE_SWITCHES:
        raise RestorationError(
            f"{len(rel)} switches to decide: exhaustive search limited to {MAX_EXHAUSTIVE_SWITCHES}"
        )
    x0 = np.array([s.closed for s in g.switches])
    base = x0.copy()
    base[border] = False
    healthy = np.ones(g.n_zones, bool)
    healthy[fz] = False
    cands, scores = [], []
    for combo in itertools.product((False, True), repeat=len(rel)):
        x = base.copy()
        x[rel] = combo
        en, radial = g.energised_zones(x)
        if not radial:
            continue
        cands.append(x)
        scores.append((float(g.zone_load_w[en & healthy].sum()), -int(np.sum(x != x0))))
    configs = np.array(cands)
    vmin, loading = g.power_flow(configs)
    ok = g.feasible(vmin, loading)
    best = None
    for k in np.flatnonzero(ok):
        if best is None or scores[k] > scores[best]:
            best = k
    if best is None:  # nothing feasible: isolate only
        best_x = base
        vm, ld = g.power_flow(base[None])
        return g._summarise(faulted, fz, border, best_x, "exhaustive", t0, vm[0], ld[0])
    return g._summarise(
        faulted, fz, border, configs[best], "exhaustive", t0, vmin[best], loading[best]
    )


class _Rows:
    """Constraint rows collected as sparse triplets, handed to HiGHS in one call (building a
    model row by row through the expression API costs more than solving it)."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.starts: list[int] = []
        self.index: list[int] = []
        self.value: list[float] = []

    def add(self, terms: list[tuple[int, float]], lo: float, hi: float) -> None:
        self.starts.append(len(self.index))
        for j, v in terms:
            self.index.append(j)
            self.value.append(v)
        self.lower.append(lo)
        self.upper.append(hi)


def milp(
    g: GridRestoration,
    faulted: str,
    *,
    max_cuts: int = 20,
    time_limit_s: float = 5.0,
    only_relevant: bool = True,
) -> Plan:
    """One-period restoration MILP (HiGHS), checked by power flow with no-good cuts.

    ``only_relevant``: switches that touch no de-energised zone keep their state (the healthy
    feeders are not rearranged to make room; a documented restriction that keeps the MILP small
    on a city grid)."""
    import highspy

    t0 = time.perf_counter()
    fz, border = g.isolation(faulted)
    x0 = np.array([s.closed for s in g.switches])
    n_s, n_z = len(g.switches), g.n_zones
    rel = set(_relevant_switches(g, fz, border)) if only_relevant else set(range(n_s))
    total = float(np.abs(g.zone_load_w).sum()) or 1.0
    alpha = 1e-3  # per-operation penalty relative to the whole load: load always comes first
    srcs = list(g.source_zones)
    n_src = len(srcs)
    big_f = float(n_z)
    pmax = float(np.abs(g.zone_load_w).sum()) * 1.5 + 1.0
    # column layout
    X, Y, W = 0, n_s, n_s + n_z
    F, P = W + n_s, W + 2 * n_s
    SS, SP = P + n_s, P + n_s + n_src
    n_col = SP + n_src
    lb = np.zeros(n_col)
    ub = np.ones(n_col)
    cost = np.zeros(n_col)
    lb[F:P], ub[F:P] = -big_f, big_f
    lb[P:SS], ub[P:SS] = -pmax, pmax
    lb[SS:SP], ub[SS:SP] = 0.0, big_f
    lb[SP:], ub[SP:] = -pmax, pmax
    for i in range(n_s):
        if i in border:
            lb[X + i] = ub[X + i] = 0.0
        elif i not in rel:
            lb[X + i] = ub[X + i] = float(x0[i])
        cost[X + i] = alpha if not x0[i] else -alpha  # minimise: +ops
    for z in srcs:
        lb[Y + z] = 1.0
    ub[Y + fz] = 0.0
    cost[Y : Y + n_z] = -g.zone_load_w / total
    const = float(alpha * np.sum(x0))  # ops = sum over closed-now of (1 - x)
    rows = _Rows()
    inf = highspy.kHighsInf
    for i, s in enumerate(g.switches):
        a, b = s.zone_a, s.zone_b
        rows.add([(Y + a, 1), (Y + b, -1), (X + i, 1)], -inf, 1)
        rows.add([(Y + b, 1), (Y + a, -1), (X + i, 1)], -inf, 1)
        rows.add([(W + i, 1), (X + i, -1)], -inf, 0)
        rows.add([(W + i, 1), (Y + a, -1)], -inf, 0)
        rows.add([(W + i, 1), (X + i, -1), (Y + a, -1)], -1, inf)
        rows.add([(F + i, 1), (W + i, -big_f)], -inf, 0)
        rows.add([(F + i, 1), (W + i, big_f)], 0, inf)
        cap = min(pmax, s.rating_w)
        rows.add([(P + i, 1), (W + i, -cap)], -inf, 0)
        rows.add([(P + i, 1), (W + i, cap)], 0, inf)
    rows.add([(W + i, 1) for i in range(n_s)] + [(Y + z, -1) for z in range(n_z)], -n_src, -n_src)
    inc: dict[int, list[tuple[int, int]]] = {z: [] for z in range(n_z)}
    for i, s in enumerate(g.switches):
        inc[s.zone_a].append((i, -1))
        inc[s.zone_b].append((i, +1))
    for z in range(n_z):
        ff = [(F + i, float(sg)) for i, sg in inc[z]]
        pp_ = [(P + i, float(sg)) for i, sg in inc[z]]
        if z in srcs:
            k = srcs.index(z)
            rows.add([*ff, (SS + k, 1.0)], 0, 0)
            rows.add([*pp_, (SP + k, 1.0)], float(g.zone_load_w[z]), float(g.zone_load_w[z]))
        else:
            rows.add([*ff, (Y + z, -1.0)], 0, 0)
            rows.add([*pp_, (Y + z, -float(g.zone_load_w[z]))], 0, 0)
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("time_limit", time_limit_s)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.addCols(
        n_col,
        cost,
        lb,
        ub,
        0,
        np.array([], dtype=np.int32),
        np.array([], dtype=np.int32),
        np.array([], dtype=float),
    )
    h.addRows(
        len(rows.lower),
        np.array(rows.lower),
        np.array(rows.upper),
        len(rows.index),
        np.array(rows.starts, dtype=np.int32),
        np.array(rows.index, dtype=np.int32),
        np.array(rows.value, dtype=float),
    )
    integ = np.array([highspy.HighsVarType.kInteger] * (3 * n_s + n_z))
    idx = np.array(
        list(range(X, X + n_s)) + list(range(Y, Y + n_z)) + list(range(W, W + n_s)), dtype=np.int32
    )
    h.changeColsIntegrality(len(idx), idx, integ)
    _ = const
    best_plan = None
    for _ in range(max_cuts + 1):
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        sol = np.asarray(h.getSolution().col_value)
        xs = sol[X : X + n_s] > 0.5
        vmin, loading = g.power_flow(xs[None])
        if g.feasible(vmin, loading)[0]:
            best_plan = g._summarise(faulted, fz, border, xs, "milp", t0, vmin[0], loading[0])
            break
        # no-good cut: exclude exactly this configuration of the switches
        terms = [(X + i, 1.0 if xs[i] else -1.0) for i in range(n_s)]
        h.addRow(
            -inf,
            float(xs.sum() - 1),
            len(terms),
            np.array([t[0] for t in terms], dtype=np.int32),
            np.array([t[1] for t in terms]),
        )
    if best_plan is None:
        base = x0.copy()
        base[border] = False
        vm, ld = g.power_flow(base[None])
        best_plan = g._summarise(faulted, fz, border, base, "milp-isolate-only", t0, vm[0], ld[0])
    best_plan.compute_s = time.perf_counter() - t0
    return best_plan


def plan_restoration(g: GridRestoration, faulted: str, method: str = "milp") -> Plan:
    from gridedge.flisr.blas import single_blas_thread

    with single_blas_thread():
        if method == "exhaustive":
            return exhaustive(g, faulted)
        if method == "milp":
            return milp(g, faulted)
    raise RestorationError(f"method {method!r} is not one of 'milp', 'exhaustive'")
