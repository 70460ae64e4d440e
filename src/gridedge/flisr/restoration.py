"""Isolation and service restoration on the reconfiguration service's own copy of the grid model.

The grid is reduced to *zones*: the parts that stay connected whatever the switches do (lines,
transformers and fixed links merged). A fault lives in one zone; isolating it means opening every
switch on that zone's border — the nearest switches upstream and downstream. What is left is a
choice of which switches to close: a graph problem on zones, small even on a city grid.

Three solvers, one answer:

- :func:`exhaustive` — every combination of the switches that border a de-energised zone, radial
  ones checked by power-grid-model batches, best score first; the reference (optimal by
  construction).
- :func:`milp` — one-period MILP in HiGHS: binary switch states and zone energisation, a
  single-commodity flow for connectivity plus the edge-count equation for radiality (Lavorato et
  al. 2012), zone power balance with switch capacities; the candidate is then checked with a
  real power flow and excluded by a no-good cut if a line, transformer or voltage limit is broken.
- Objective of both, lexicographic: restored load first, then fewest switching operations.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from power_grid_model import CalculationMethod, PowerGridModel, initialize_array
from power_grid_model import ComponentType as CT
from power_grid_model.errors import PowerGridError

MAX_EXHAUSTIVE_SWITCHES = 18
EXHAUSTIVE_PF_BATCH = 64


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
    solves: int = 0  # MILP solves (1 + candidates the power flow rejected)

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
    ±5 % planning band would forbid the grid's own normal state) and loading ≤ 100 %.

    Everything that depends on the grid model only — zones, switch arrays, the power-grid-model
    models, HiGHS loaded — is built here, once per model (``warm_up``); a fault then changes
    switch states and bounds only. Switch states are not structure: ``set_states`` is all a
    topology change from the catalog needs."""

    def __init__(
        self,
        net,
        switch_roles: dict[str, str] | None = None,
        *,
        v_min_pu: float = 0.90,
        v_max_pu: float = 1.10,
        max_loading: float = 1.0,
        load_scale: np.ndarray | None = None,
        warm_up: bool = True,
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
        # the switches as arrays, derived once per grid model (a fault changes states only)
        self.sw_zone_a = np.array([s.zone_a for s in self.switches], dtype=np.int64)
        self.sw_zone_b = np.array([s.zone_b for s in self.switches], dtype=np.int64)
        self.sw_rating_w = np.array([s.rating_w for s in self.switches], dtype=float)
        self._closed = np.array([s.closed for s in self.switches], dtype=bool)
        # power-flow update template per component: every row's normal status, and which
        # (row, side, switch column) a configuration overwrites
        self._pf_cols: dict[CT, list[tuple[int, str, int]]] = {}
        for i, s in enumerate(self.switches):
            for side in s.sides:
                self._pf_cols.setdefault(s.component, []).append((s.row, side, i))
        self._pgm: PowerGridModel | None = None
        # the standing model for single configurations: an update array of the switch rows
        # only, and where each switch's state goes in it
        self._pgm_one: PowerGridModel | None = None
        self._sw_update: list[tuple[CT, np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]] = []
        for ct, cols in self._pf_cols.items():
            rows = sorted({row for row, _, _ in cols})
            pos_of = {row: p for p, row in enumerate(rows)}
            arr = initialize_array("update", ct, len(rows))
            arr["id"] = self.input[ct]["id"][rows]
            arr["from_status"] = self.input[ct]["from_status"][rows]
            arr["to_status"] = self.input[ct]["to_status"][rows]
            writes = []
            for side in ("from", "to"):
                sel = [(pos_of[row], i) for row, sd, i in cols if sd == side]
                if sel:
                    pos, idx = (np.array(v, dtype=np.int64) for v in zip(*sel, strict=True))
                    writes.append((f"{side}_status", pos, idx))
            self._sw_update.append((ct, arr, writes))
        self._pf_outputs = [ct for ct in (CT.node, CT.line, CT.transformer) if ct in self.input]
        self._source_array = np.array(self.source_zones, dtype=np.int64)
        # loads only, all drawing power: more load on a path can only raise its currents and
        # lower its voltages (what the MILP's stronger cuts rely on)
        self.passive = not any(
            len(self.input.get(ct, ())) for ct in (CT.sym_gen, CT.asym_gen)
        ) and all(
            bool(np.all(self.input[ct]["p_specified"] >= 0))
            for ct in (CT.sym_load, CT.asym_load)
            if ct in self.input
        )
        self._zone_node_names = [[self.node_names[i] for i in zn] for zn in self.zone_nodes]
        if warm_up:
            self.warm_up()
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
        for k, s in enumerate(self.switches):
            if s.id in states:
                s.closed = bool(states[s.id])
                self._closed[k] = s.closed

    def closed_array(self) -> np.ndarray:
        """The switch states the service believes in, one bool per switch (a copy)."""
        return self._closed.copy()

    def warm_up(self) -> float:
        """Build the power-grid-model model, run one power flow and one HiGHS solve, so that
        the first fault does not pay for them (the service calls this when it loads a grid
        model). Returns the seconds spent."""
        t0 = time.perf_counter()
        self.power_flow(self._closed[None])
        self.power_flow(np.vstack([self._closed, self._closed]))
        self.energised_zones(self._closed)
        h = _highs(1.0)
        h.addVar(0.0, 1.0)
        h.changeColIntegrality(0, _highs_integer())
        h.run()
        return time.perf_counter() - t0

    def energised_zones(self, closed: np.ndarray) -> tuple[np.ndarray, bool]:
        """Zones reached from a source over closed switches, and whether that is radial: the
        closed switches form a forest (edges = zones − components) and no two sources share a
        component."""
        # union-find in plain Python: on a few hundred zones it beats scipy's csgraph, whose
        # input checks alone cost more
        closed = np.asarray(closed, dtype=bool)
        parent = list(range(self.n_zones))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        radial = True
        for za, zb in zip(
            self.sw_zone_a[closed].tolist(), self.sw_zone_b[closed].tolist(), strict=True
        ):
            ra, rb = find(za), find(zb)
            if ra == rb:
                radial = False
            else:
                parent[ra] = rb
        src_roots = {find(z) for z in self.source_zones}
        if len(src_roots) < len(self.source_zones):
            radial = False  # two sources paralleled
        en = np.array([find(z) in src_roots for z in range(self.n_zones)])
        return en, radial

    def protecting_breaker(self, faulted: str) -> str | None:
        """The breaker that clears a fault on ``faulted`` with the switches as they are now: the
        breaker nearest the fault on its path from a source over closed switches (the faulted
        feeder's breaker in a radial grid). None if no source reaches the section."""
        fz = self.zone_of(faulted)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(self.n_zones)]
        for k in np.flatnonzero(self._closed).tolist():
            a, b = int(self.sw_zone_a[k]), int(self.sw_zone_b[k])
            adj[a].append((b, k))
            adj[b].append((a, k))
        pred: dict[int, tuple[int, int] | None] = {z: None for z in self.source_zones}
        queue = list(self.source_zones)
        for z in queue:  # breadth first: the list grows while it is walked
            if z == fz:
                break
            for nb, k in adj[z]:
                if nb not in pred:
                    pred[nb] = (z, k)
                    queue.append(nb)
        if fz not in pred:
            return None
        step = pred[fz]
        while step is not None:
            z, k = step
            if self.switches[k].role == "breaker":
                return self.switches[k].id
            step = pred[z]
        return None

    # ------------------------------------------------------------------ power flow check
    def power_flow(self, configs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v_min_pu over energised nodes, max branch loading) for each switch configuration
        (rows of ``configs``, one column per switch), one power-grid-model batch; a single
        configuration is written into a standing model (switch rows only) and solved there,
        which costs about half of a batch of one."""
        k = len(configs)
        if k == 1:
            return self._power_flow_one(np.asarray(configs[0], dtype=bool))
        upd: dict[CT, np.ndarray] = {}
        for ct, cols in self._pf_cols.items():
            ids = self.input[ct]["id"]
            u = initialize_array("update", ct, (k, len(ids)))
            u["id"] = ids
            u["from_status"] = self.input[ct]["from_status"]
            u["to_status"] = self.input[ct]["to_status"]
            for row, side, i in cols:
                u[f"{side}_status"][:, row] = configs[:, i]
            upd[ct] = u
        if self._pgm is None:
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
        return self._limits(out, k)

    def _power_flow_one(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._pgm_one is None:
            self._pgm_one = PowerGridModel(self.input)
        for _ct, arr, writes in self._sw_update:
            for attr, pos, idx in writes:
                arr[attr][pos] = x[idx]
        try:
            self._pgm_one.update(update_data={ct: arr for ct, arr, _ in self._sw_update})
            out = self._pgm_one.calculate_power_flow(
                calculation_method=CalculationMethod.newton_raphson,
                max_iterations=30,
                output_component_types=self._pf_outputs,
            )
        except PowerGridError:
            return np.full(1, np.nan), np.full(1, np.inf)
        return self._limits({k: v[None] for k, v in out.items()}, 1)

    def _limits(self, out: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
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
        x0 = self._closed
        en0, _ = self.energised_zones(x0)
        en, radial = self.energised_zones(closed)
        healthy = np.ones(self.n_zones, bool)
        healthy[fz] = False
        restored = _load_sum(self.zone_load_w[en & healthy])
        lost = _load_sum(self.zone_load_w[~en & healthy])
        interrupted = _load_sum(self.zone_load_w[~en0 & healthy])
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
        nodes = list(
            itertools.chain.from_iterable(self._zone_node_names[z] for z in np.flatnonzero(en))
        )
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


def _load_sum(loads: np.ndarray) -> float:
    """Exactly rounded sum: the same loads give the same total whatever else is in the array.
    numpy's pairwise sum depends on the array's length, so energising one more zone without load
    changed the last bit, and the exhaustive search then preferred a plan with an extra,
    useless switching operation (seen on turin-urban)."""
    return math.fsum(loads.tolist())


def _relevant_switches(
    g: GridRestoration,
    fz: int,
    border: list[int],
    en: np.ndarray | None = None,
    keep: Iterable[str] = (),
) -> np.ndarray:
    """Switches worth deciding: those touching a zone that is dead once the fault is isolated
    (tripped breaker included), minus the border of the faulted zone and the switches in
    ``keep`` (held in their state: those isolating an earlier fault not yet repaired). ``en``:
    the zones energised once the border is open, if already known."""
    if en is None:
        x = g.closed_array()
        x[border] = False
        en, _ = g.energised_zones(x)
    dead = ~en
    dead[fz] = False
    rel = dead[g.sw_zone_a] | dead[g.sw_zone_b]
    rel[border] = False
    for sid in keep:
        if sid not in g.switch_index:
            raise RestorationError(f"keep: {sid!r} is not a switch of the model")
        rel[g.switch_index[sid]] = False
    return np.flatnonzero(rel)


def exhaustive(g: GridRestoration, faulted: str, *, keep: Iterable[str] = ()) -> Plan:
    """Every combination of the relevant switches; the reference optimum. ``keep``: switches
    held in their present state (see :func:`milp`)."""
    t0 = time.perf_counter()
    fz, border = g.isolation(faulted)
    rel = _relevant_switches(g, fz, border, keep=keep)
    if len(rel) > MAX_EXHAUSTIVE_SWITCHES:
        raise RestorationError(
            f"{len(rel)} switches to decide: exhaustive search limited to {MAX_EXHAUSTIVE_SWITCHES}"
        )
    x0 = g.closed_array()
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
        scores.append((_load_sum(g.zone_load_w[en & healthy]), -int(np.sum(x != x0))))
    configs = np.array(cands)
    # best score first; the first that passes the power flow is the optimum (power flows in
    # batches, so a city feeder's thousands of radial candidates are not all solved)
    order = sorted(range(len(cands)), key=scores.__getitem__, reverse=True)
    for start in range(0, len(order), EXHAUSTIVE_PF_BATCH):
        chunk = order[start : start + EXHAUSTIVE_PF_BATCH]
        vmin, loading = g.power_flow(configs[chunk])
        ok = np.flatnonzero(g.feasible(vmin, loading))
        if ok.size:
            k = int(ok[0])
            return g._summarise(
                faulted, fz, border, configs[chunk[k]], "exhaustive", t0, vmin[k], loading[k]
            )
    vm, ld = g.power_flow(base[None])  # nothing feasible: isolate only
    return g._summarise(faulted, fz, border, base, "exhaustive", t0, vm[0], ld[0])


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


# HiGHS options for these small models. The feasibility-jump heuristic costs a fixed ~7 ms per
# MIP solve on this machine however small the model (measured with highspy 1.15 on a 5-binary
# knapsack: 7.9 ms with it, 0.4 ms without), which was most of the plan's time; presolve and
# branching alone solve a restoration model at the root. One thread: the model is far too small
# for HiGHS's parallel search, and a worker waking up on a loaded 2-core machine only adds delay.
HIGHS_OPTIONS: dict[str, object] = {
    "mip_heuristic_run_feasibility_jump": False,
    "threads": 1,
    "presolve": "off",
    "mip_rel_gap": 0.0,
}


def _highs_integer():  # type: ignore[no-untyped-def]
    import highspy

    return highspy.HighsVarType.kInteger


def _highs(time_limit_s: float):  # type: ignore[no-untyped-def]
    import highspy

    h = highspy.Highs()
    h.silent()
    for k, v in HIGHS_OPTIONS.items():
        h.setOptionValue(k, v)
    h.setOptionValue("time_limit", time_limit_s)
    return h


def milp(
    g: GridRestoration,
    faulted: str,
    *,
    max_cuts: int = 20,
    time_limit_s: float = 5.0,
    keep: Iterable[str] = (),
) -> Plan:
    """One-period restoration MILP (HiGHS), checked by power flow with no-good cuts.

    The model holds only what the fault leaves to decide: the switches touching a zone that is
    dead once the fault is isolated (as :func:`exhaustive`), the dead zones, and one node
    standing for everything still energised. Switches touching no dead zone keep their state
    (the healthy feeders are not rearranged to make room — a documented restriction). Merging
    the energised part into one source node keeps radiality exact: a dead zone fed from two
    points, or two feeders paralleled through the dead area, is a cycle through that node. What
    the merge drops are the capacity rows of the healthy part's switches; capacities are a
    pre-filter only, the power flow on the whole grid decides (and its no-good cuts), so the
    optimum is the same.

    ``keep``: switches held in their present state whatever the plan gains — the switches that
    isolate an earlier fault not yet repaired (the zone behind them is dead and would otherwise
    look like load to restore)."""
    import highspy

    t0 = time.perf_counter()
    fz, border = g.isolation(faulted)
    x0 = g.closed_array()
    base = x0.copy()
    base[border] = False
    en_base, _ = g.energised_zones(base)
    dead = np.flatnonzero(~en_base)
    dead = dead[dead != fz]
    free = _relevant_switches(g, fz, border, en_base, keep)
    m, d = len(free), len(dead)
    if m == 0:  # nothing left to decide: isolating is the whole (optimal) plan
        return _isolate_only(g, faulted, fz, border, base, t0, "milp")
    # reduced graph: node 0 = the energised grid, node 1 + k = dead zone dead[k]
    node_of_zone = np.zeros(g.n_zones, dtype=np.int64)
    node_of_zone[dead] = np.arange(1, d + 1)
    ea = node_of_zone[g.sw_zone_a[free]]
    eb = node_of_zone[g.sw_zone_b[free]]
    load = g.zone_load_w[dead]
    scale = float(np.abs(load).max()) or 1.0
    w_load = load / scale  # objective weight of each dead zone, the largest 1
    positive = np.abs(w_load[w_load != 0])
    smallest = float(positive.min()) if positive.size else 1.0
    # per operation: all operations together weigh less than the smallest dead load, so restored
    # load always comes first and operations break ties (the exhaustive search's order)
    alpha = 0.5 * smallest / (m + 1)
    cap = np.minimum(g.sw_rating_w[free] / scale, 1e3)
    p_max = float(np.abs(w_load).sum()) * 1.5 + 1.0
    big_f = float(d)
    # columns: x (m), w (m), y (d), f (m), p (m)
    X, W, Y = 0, m, 2 * m
    F = Y + d
    P = F + m
    n_col = P + m
    lb = np.zeros(n_col)
    ub = np.ones(n_col)
    cost = np.zeros(n_col)
    lb[F:P], ub[F:P] = -big_f, big_f
    lb[P:], ub[P:] = -np.minimum(cap, p_max), np.minimum(cap, p_max)
    cost[X : X + m] = np.where(x0[free], -alpha, alpha)  # +1 operation per state change
    cost[Y : Y + d] = -w_load
    rows = _Rows()
    inf = highspy.kHighsInf
    for i in range(m):
        a, b = int(ea[i]), int(eb[i])
        xi, wi = X + i, W + i
        # x = 1 => both ends alike (node 0 is energised: y = 1, a constant)
        if a and b:
            rows.add([(Y + a - 1, 1), (Y + b - 1, -1), (xi, 1)], -inf, 1)
            rows.add([(Y + b - 1, 1), (Y + a - 1, -1), (xi, 1)], -inf, 1)
        elif a or b:
            rows.add([(xi, 1), (Y + (a or b) - 1, -1)], -inf, 0)
        # w = x AND y_a: the switch is closed inside the energised tree
        rows.add([(wi, 1), (xi, -1)], -inf, 0)
        if a:
            rows.add([(wi, 1), (Y + a - 1, -1)], -inf, 0)
            rows.add([(wi, 1), (xi, -1), (Y + a - 1, -1)], -1, inf)
        else:
            rows.add([(wi, 1), (xi, -1)], 0, inf)
        rows.add([(F + i, 1), (wi, -big_f)], -inf, 0)
        rows.add([(F + i, 1), (wi, big_f)], 0, inf)
        c = float(min(cap[i], p_max))
        rows.add([(P + i, 1), (wi, -c)], -inf, 0)
        rows.add([(P + i, 1), (wi, c)], 0, inf)
    # radial: one closed switch into every energised dead zone (edge count, one source node)
    rows.add([(W + i, 1) for i in range(m)] + [(Y + k, -1) for k in range(d)], 0, 0)
    inc: list[list[tuple[int, int]]] = [[] for _ in range(d + 1)]
    for i in range(m):
        inc[int(ea[i])].append((i, -1))
        inc[int(eb[i])].append((i, +1))
    for k in range(d):
        # connected: every energised dead zone consumes one unit of flow from node 0
        rows.add([*((F + i, float(s)) for i, s in inc[k + 1]), (Y + k, -1.0)], 0, 0)
        # power: what flows in is the zone's load (switch capacities bound the flows)
        rows.add([*((P + i, float(s)) for i, s in inc[k + 1]), (Y + k, -float(w_load[k]))], 0, 0)
    h = _highs(time_limit_s)
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
    n_int = 2 * m + d
    h.changeColsIntegrality(
        n_int,
        np.arange(n_int, dtype=np.int32),
        np.array([highspy.HighsVarType.kInteger] * n_int),
    )
    h.setOptionValue("mip_abs_gap", alpha / 10)
    best_plan = None
    base_checked = False
    solves = 0
    for _ in range(max_cuts + 1):
        h.run()
        solves += 1
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        sol = np.asarray(h.getSolution().col_value)
        xf = sol[X : X + m] > 0.5
        wf = sol[W : W + m] > 0.5
        xs = base.copy()
        xs[free] = xf
        vmin, loading = g.power_flow(xs[None])
        if g.feasible(vmin, loading)[0]:
            best_plan = g._summarise(faulted, fz, border, xs, "milp", t0, vmin[0], loading[0])
            break
        # Cut on the energised tree (w), not on x: the power flow sees only which switches are
        # closed *and* energised, so every x with this tree fails alike. An overload or an
        # undervoltage with loads only (no generation) fails for every tree that contains this
        # one too — it adds load on the same paths, currents up, voltages down — so "at least
        # one of its edges goes" (neglected: the charging current of the added cables, ~0.1 A
        # per km of MV cable against the hundreds of amperes an overload is about).
        # Overvoltage or no convergence: only this tree is cut.
        idx = np.arange(W, W + m, dtype=np.int32)
        if g.passive and np.isfinite(vmin[0]) and vmin[0] >= 0:
            if not base_checked:  # the empty tree: does the grid fail without any restoration?
                base_checked = True
                vb, lb_ = g.power_flow(base[None])
                if not g.feasible(vb, lb_)[0] and np.isfinite(vb[0]) and vb[0] >= 0:
                    break  # then every tree fails: isolate only
            used = idx[wf]
            h.addRow(-inf, float(len(used) - 1), len(used), used, np.ones(len(used)))
        else:
            h.addRow(-inf, float(wf.sum() - 1), m, idx, np.where(wf, 1.0, -1.0))
    if best_plan is None:
        best_plan = _isolate_only(g, faulted, fz, border, base, t0)
    best_plan.solves = solves
    best_plan.compute_s = time.perf_counter() - t0
    return best_plan


def _isolate_only(
    g: GridRestoration,
    faulted: str,
    fz: int,
    border: list[int],
    base: np.ndarray,
    t0: float,
    method: str = "milp-isolate-only",
) -> Plan:
    vm, ld = g.power_flow(base[None])
    return g._summarise(faulted, fz, border, base, method, t0, vm[0], ld[0])


def plan_after_trip(
    g: GridRestoration, faulted: str, method: str = "milp", keep: Iterable[str] = ()
) -> tuple[Plan, str | None]:
    """What the service computes per fault: the breaker that has tripped for it (found on the
    service's model with its current switch states), that breaker marked open, then the plan."""
    breaker = g.protecting_breaker(faulted)
    if breaker:
        g.set_states({breaker: False})
    return plan_restoration(g, faulted, method, keep), breaker


def plan_restoration(
    g: GridRestoration, faulted: str, method: str = "milp", keep: Iterable[str] = ()
) -> Plan:
    # no BLAS limit here (unlike fault location): nothing in a plan calls BLAS, and the first
    # use of threadpoolctl costs ~25 ms
    if method == "exhaustive":
        return exhaustive(g, faulted, keep=keep)
    if method == "milp":
        return milp(g, faulted, keep=keep)
    raise RestorationError(f"method {method!r} is not one of 'milp', 'exhaustive'")
