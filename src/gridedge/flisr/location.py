"""Impedance-based fault location on a radial feeder with sparse meter voltages (REFERENCE §2.1).

Three stages, each answering a question the previous one cannot:

1. **Classify** (which loop to use): faulted phases from the change of the head currents,
   ground involvement from the change of their zero-sequence sum.
2. **Sweep** (where could it be): a forward sweep from the head with the during-fault phasors,
   loads compensated as constant admittances, the Takagi (reactance) form that eliminates the
   fault resistance, iterated on the fault current. On a branched feeder this gives one
   candidate per path that is electrically as far as the fault — the "multiple estimation".
3. **Fit** (which one, exactly where, through how many ohms): for the sweep's candidates and a
   coarse grid over every section, simulate the fault in the feeder's linear model
   (:mod:`gridedge.flisr.network`) and fit position and Rf by least squares to *all* measurements:
   the head's complex currents and every meter's sag depth (|V| during / |V| before, which
   cancels the meters' ratio errors and the LV drop). Sag depths alone are blind to the phase
   error of the head's instrument transformers, so the fit stays right where a pure loop equation
   drifts by hundreds of metres at high Rf.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridedge.flisr.blas import single_blas_thread
from gridedge.flisr.network import (
    PHASES,
    SEQ_INV,
    FaultKind,
    FeederModel,
    Section,
    fault_admittance,
    fault_admittances,
)

# dense enough in Rf that every section's valley is met by some grid point: with accurate
# measurements the cost valley in (d, Rf) is narrow, and a coarse grid would rank sections by
# how close their grid points happen to fall to it rather than by how well they can fit
RF_GRID = np.concatenate([[0.0], np.geomspace(0.1, 120.0, 23)])
D_GRID = np.linspace(0.0, 1.0, 11)
RF_MAX = 500.0


class LocationError(ValueError):
    """The inputs cannot be located (no fault seen, unknown meter, empty feeder)."""


@dataclass
class HeadPhasors:
    """Feeder-head meter: phase voltages (V) and feeder current (A), one cycle before inception
    and one during the fault, complex RMS phasors in phase order a, b, c."""

    v_pre: np.ndarray
    i_pre: np.ndarray
    v_during: np.ndarray
    i_during: np.ndarray

    def __post_init__(self) -> None:
        for name in ("v_pre", "i_pre", "v_during", "i_during"):
            arr = np.asarray(getattr(self, name), dtype=complex)
            if arr.shape != (3,):
                raise LocationError(f"head.{name} must hold 3 phasors (a, b, c), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise LocationError(f"head.{name} contains non-finite values")
            setattr(self, name, arr)


@dataclass
class SagReport:
    """A meter's RMS voltage magnitudes per phase before and during the sag (its own sensor;
    unsynchronised, no angles)."""

    meter_id: str
    v_pre: np.ndarray
    v_during: np.ndarray

    def __post_init__(self) -> None:
        for name in ("v_pre", "v_during"):
            arr = np.abs(np.asarray(getattr(self, name), dtype=float))
            if arr.shape != (3,):
                raise LocationError(
                    f"sag[{self.meter_id}].{name} must hold 3 magnitudes, got {arr.shape}"
                )
            setattr(self, name, arr)
        if np.any(self.v_pre <= 0):
            raise LocationError(f"sag[{self.meter_id}].v_pre must be > 0 on every phase")


@dataclass
class Classification:
    kind: FaultKind
    phases: str
    delta_i_a: np.ndarray
    i0_a: float

    @property
    def label(self) -> str:
        return f"{self.kind.value}-{self.phases}"


@dataclass
class Candidate:
    section_id: str
    from_node: str
    to_node: str
    fraction: float
    distance_m: float  # from the upstream bus (from_node)
    distance_from_head_m: float
    rf_ohm: float
    cost: float
    kind: FaultKind
    phases: str
    source: str = "fit"  # "sweep" for the raw loop-equation estimate


@dataclass
class LocationResult:
    classification: Classification
    best: Candidate
    candidates: list[Candidate]
    sweep: list[Candidate]
    confidence: float
    compute_s: float
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------ classify
def classify(
    head: HeadPhasors, rel_threshold: float = 0.3, ground_ratio: float = 0.1
) -> Classification:
    """Faulted phases: those whose current changed by more than ``rel_threshold`` of the largest
    change. Ground: the change of 3·I0 exceeds ``ground_ratio`` of the largest phase change."""
    di = np.abs(head.i_during - head.i_pre)
    top = float(di.max())
    if top <= 0:
        raise LocationError("head currents did not change: no fault to locate")
    i0 = float(abs(np.sum(head.i_during - head.i_pre)))
    faulted = [p for p, x in zip(PHASES, di, strict=True) if x >= rel_threshold * top]
    ground = i0 >= ground_ratio * top
    phases = "".join(faulted)
    if len(faulted) == 3:
        kind = FaultKind.THREE_PHASE
    elif len(faulted) == 2:
        kind = FaultKind.LLG if ground else FaultKind.LL
    else:
        kind = FaultKind.SLG
    return Classification(kind, phases, di, i0)


def equalise_voltage_channels(head: HeadPhasors) -> HeadPhasors:
    """Remove the *differences* between the head's three voltage channels (ratio and phase
    errors of its VTs) assuming the busbar was balanced before the fault, as an MV busbar fed
    from the transmission grid is to well under the class limits. Without this, a 0.5 % error on
    one VT looks to the feeder model like an unbalance that moves every simulated sag by as much
    as the fault position does; a common error on all three stays and cancels in sag depths."""
    v1 = (SEQ_INV @ head.v_pre)[1]
    ideal = v1 * np.array([1, np.exp(-2j * np.pi / 3), np.exp(2j * np.pi / 3)])
    k = ideal / head.v_pre
    return HeadPhasors(head.v_pre * k, head.i_pre, head.v_during * k, head.i_during)


# ------------------------------------------------------------------------------ sweep
def _subtree_admittances(model: FeederModel) -> dict[str, np.ndarray]:
    """Equivalent 3×3 admittance seen looking into each section from its upstream end."""
    reg = np.eye(3) * 1e-9
    y_load: dict[str, np.ndarray] = {}
    for ld in model.loads:
        y_load[ld.node] = y_load.get(ld.node, 0) + model.load_admittance(ld)
    y_in: dict[str, np.ndarray] = {}
    for s in reversed(model.sections):
        y_eq = y_load.get(s.to_node, np.zeros((3, 3), complex)) + s.y_shunt / 2
        for c in model.children.get(s.to_node, []):
            y_eq = y_eq + y_in[c.id]
        y_in[s.id] = s.y_shunt / 2 + np.linalg.inv(s.z + np.linalg.inv(y_eq + reg))
    return y_in


def _loop(kind: FaultKind, phases: str, v: np.ndarray, zi: np.ndarray, i_f: np.ndarray):
    """(voltage, loop drop per unit length, fault current) of the fault loop."""
    p = PHASES.index(phases[0])
    if kind in (FaultKind.LL, FaultKind.LLG):  # LLG: the two phases are joined, V_b = V_c
        q = PHASES.index(phases[1])
        return v[p] - v[q], zi[p] - zi[q], i_f[p]
    return v[p], zi[p], i_f[p]


def sweep(model: FeederModel, head: HeadPhasors, cls: Classification) -> list[Candidate]:
    """Forward sweep with the Takagi form on every section; keeps 0 ≤ d ≤ 1, Rf ≥ 0 (tolerant)."""
    model.ensure_built()
    y_in = _subtree_admittances(model)
    y_load: dict[str, np.ndarray] = {}
    for ld in model.loads:
        y_load[ld.node] = y_load.get(ld.node, 0) + model.load_admittance(ld)
    kind, phases = cls.kind, cls.phases
    if kind == FaultKind.THREE_PHASE:
        phases = PHASES[int(np.argmax(cls.delta_i_a))]
    out: list[Candidate] = []
    # currents into each head section: split the measured current by the subtree admittances
    state: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def split(node: str, v_d, i_d, v_p, i_p) -> None:
        kids = model.children.get(node, [])
        for c in kids:
            others = [o for o in kids if o is not c]
            i_cd = i_d - sum((y_in[o.id] @ v_d for o in others), np.zeros(3, complex))
            i_cp = i_p - sum((y_in[o.id] @ v_p for o in others), np.zeros(3, complex))
            state[c.id] = (v_d, i_cd, v_p, i_cp)

    split(model.head_node, head.v_during, head.i_during, head.v_pre, head.i_pre)
    dist_head = {model.head_node: 0.0}
    for s in model.sections:
        v_d, i_d, v_p, i_p = state[s.id]
        dist_head[s.to_node] = dist_head[s.from_node] + s.length_m
        i_ser_d = i_d - s.y_shunt / 2 @ v_d
        i_ser_p = i_p - s.y_shunt / 2 @ v_p
        zi = s.z @ i_ser_d
        i_f = i_ser_d - i_ser_p
        y_down = y_in.get(s.id) - s.y_shunt / 2
        d = 0.5
        for _ in range(8):
            vv, zz, iff = _loop(kind, phases, v_d, zi, i_f)
            den = (zz * np.conj(iff)).imag
            if abs(den) < 1e-12:
                break
            d_new = float((vv * np.conj(iff)).imag / den)
            v_f = v_d - d_new * zi
            i_f = i_ser_d - y_down @ v_f
            if abs(d_new - d) < 1e-6:
                d = d_new
                break
            d = d_new
        vv, zz, iff = _loop(kind, phases, v_d, zi, i_f)
        rf = float(((vv - d * zz) / iff).real) if abs(iff) > 0 else np.inf
        if kind == FaultKind.LL:
            rf = rf  # Rf once between phases: the loop equation already carries it once
        if -0.05 <= d <= 1.05 and rf >= -1.0:
            dc = min(max(d, 0.0), 1.0)
            out.append(
                Candidate(
                    s.id,
                    s.from_node,
                    s.to_node,
                    dc,
                    dc * s.length_m,
                    dist_head[s.from_node] + dc * s.length_m,
                    max(rf, 0.0),
                    np.nan,
                    kind,
                    cls.phases,
                    source="sweep",
                )
            )
        # propagate to the downstream node
        v_v_d = v_d - s.z @ i_ser_d
        v_v_p = v_p - s.z @ i_ser_p
        yl = y_load.get(s.to_node, np.zeros((3, 3), complex)) + s.y_shunt / 2
        split(s.to_node, v_v_d, i_ser_d - yl @ v_v_d, v_v_p, i_ser_p - yl @ v_v_p)
    return out


# ------------------------------------------------------------------------------ fit
@dataclass
class _Problem:
    """Weighted least squares of one fault hypothesis against all measurements.

    The head meter's instrument-transformer errors are systematic over the event (ratio and
    phase of each channel), so they enter as one complex gain per phase, ``(1 + c_p)``, between
    simulated and measured current, with a Gaussian prior of the class accuracy. It is profiled
    out in closed form (variable projection), so the search stays over position and Rf only."""

    model: FeederModel
    head: HeadPhasors
    watch: list[str]
    views: list[np.ndarray]
    r_meas: np.ndarray  # (m, 3) sag depths
    v_pre_model: np.ndarray  # (m, 3) |view·V| pre-fault in the model
    sigma_i: np.ndarray  # (3,) random error of the head currents (A)
    sigma_c: float  # prior of the head's systematic gain error (per unit)
    sigma_r: float  # random error of a sag depth (per unit)
    c_mean: np.ndarray  # prior mean of the head gain error (from the pre-fault calibration)

    def residuals(self, sec: Section, d: np.ndarray, yf: np.ndarray) -> np.ndarray:
        """(k, n_res) weighted residuals for fault fractions d (k,) and admittances yf (k,3,3)."""
        v_w, i_sim, _ = self.model.fault_response(sec, d, yf, self.head.v_during, self.watch)
        return self._residuals(v_w, i_sim)

    def costs_all(self, d: np.ndarray, yf: np.ndarray) -> np.ndarray:
        """(S, k) costs of every section at once."""
        v_w, i_sim = self.model.fault_response_all(d, yf, self.head.v_during, self.watch)
        S, k = i_sim.shape[:2]
        res = self._residuals(v_w.reshape(S * k, *v_w.shape[2:]), i_sim.reshape(S * k, 3))
        return np.sum(res**2, axis=1).reshape(S, k)

    def _residuals(self, v_w: np.ndarray, i_sim: np.ndarray) -> np.ndarray:
        i_meas = self.head.i_during[None]
        wi, wc = 1 / self.sigma_i**2, 1 / self.sigma_c**2
        c = (np.conj(i_sim) * (i_meas - i_sim) * wi + self.c_mean * wc) / (
            np.abs(i_sim) ** 2 * wi + wc
        )
        ri = ((1 + c) * i_sim - i_meas) / self.sigma_i
        rc = (c - self.c_mean) / self.sigma_c
        parts = [ri.real, ri.imag, rc.real, rc.imag]
        if self.watch:
            vm = np.abs((np.asarray(self.views)[None] @ v_w[..., None])[..., 0])
            r = vm / self.v_pre_model[None]
            parts.append(((r - self.r_meas[None]) / self.sigma_r).reshape(len(i_sim), -1))
        return np.concatenate(parts, axis=1)


def _zoom(
    prob: _Problem,
    sec: Section,
    kind: FaultKind,
    phases: str,
    d0: float,
    rf0: float,
    cost0: float,
    passes: int = 8,
    n: int = 13,
) -> tuple[float, float, float]:
    """Continuous refinement of (d, Rf) by shrinking vectorised grids around the best point:
    one model call per pass, so a candidate costs a few milliseconds (a generic optimiser
    with numerical derivatives needed ten times more calls for the same answer)."""
    dd_span = 1.0 / 25
    rf_span = max(2.0, 0.5 * rf0)
    best = (cost0, d0, rf0)
    for k_pass in range(passes):
        _, dc, rc = best
        ds = np.clip(dc + np.linspace(-dd_span, dd_span, n), 0.0, 1.0)
        rs = np.clip(rc + np.linspace(-rf_span, rf_span, n), 0.0, RF_MAX)
        if k_pass == 0:  # the whole section once: the coarse grid's d is often a wrong valley
            ds = np.linspace(0.0, 1.0, 26)
            rs = np.clip(rc + np.linspace(-max(5.0, rc), max(5.0, rc), 13), 0.0, RF_MAX)
        dg, rg = np.meshgrid(ds, rs, indexing="ij")
        dg, rg = dg.ravel(), rg.ravel()
        res = prob.residuals(sec, dg, _yf_batch(kind, phases, rg))
        cost = np.sum(res**2, axis=1)
        k = int(np.argmin(cost))
        if cost[k] < best[0]:
            best = (float(cost[k]), float(dg[k]), float(rg[k]))
        dd_span /= 2.5
        rf_span /= 2.5
    return best[1], best[2], best[0]


def _lsq(prob, sec, kind, phases, d0, rf0, cost0):
    """scipy's trust-region least squares from the coarse point (slower, the reference)."""
    from scipy.optimize import least_squares

    def fun(x):
        yf = fault_admittance(kind, phases, x[1])[None]
        return prob.residuals(sec, np.array([x[0]]), yf)[0]

    sol = least_squares(
        fun,
        x0=[d0, rf0],
        bounds=([0.0, 0.0], [1.0, RF_MAX]),
        x_scale=[0.1, 5.0],
        method="trf",
        xtol=1e-10,
        ftol=1e-10,
        max_nfev=200,
    )
    c = float(2 * sol.cost)
    if cost0 < c:
        return d0, rf0, cost0
    return float(sol.x[0]), float(sol.x[1]), c


def _neighbourhood(model: FeederModel, seeds: set[str], hops: int) -> set[str] | None:
    """Sections within ``hops`` sections of the sweep's candidates (None: search everything,
    when the sweep found nothing)."""
    if not seeds:
        return None
    by_node: dict[str, list[str]] = {}
    for s in model.sections:
        by_node.setdefault(s.from_node, []).append(s.id)
        by_node.setdefault(s.to_node, []).append(s.id)
    out = set(seeds)
    frontier = set(seeds)
    for _ in range(hops):
        nxt: set[str] = set()
        for sid in frontier:
            s = model.sections[model.section_index[sid]]
            nxt.update(by_node.get(s.from_node, []))
            nxt.update(by_node.get(s.to_node, []))
        frontier = nxt - out
        out |= nxt
    return out


def _kinds_to_try(cls: Classification) -> list[tuple[FaultKind, str]]:
    """A two-phase fault is fitted as LL and as LLG only when the ground test is ambiguous
    (a high-resistance ground path carries little zero-sequence current)."""
    if cls.kind in (FaultKind.LL, FaultKind.LLG):
        ratio = cls.i0_a / max(float(cls.delta_i_a.max()), 1e-9)
        if ratio < 0.02:
            return [(FaultKind.LL, cls.phases)]
        if ratio > 0.25:
            return [(FaultKind.LLG, cls.phases)]
        return [(FaultKind.LL, cls.phases), (FaultKind.LLG, cls.phases)]
    return [(cls.kind, cls.phases)]


def _yf_batch(kind: FaultKind, phases: str, rfs: np.ndarray) -> np.ndarray:
    return fault_admittances(kind, phases, rfs)


def locate(
    model: FeederModel, head: HeadPhasors, sags: list[SagReport] | None = None, **kw: Any
) -> LocationResult:
    """Locate the fault (see :func:`_locate`); runs with one BLAS thread (:mod:`.blas`)."""
    with single_blas_thread():
        return _locate(model, head, sags, **kw)


def _locate(
    model: FeederModel,
    head: HeadPhasors,
    sags: list[SagReport] | None = None,
    *,
    current_accuracy: float = 0.005,
    angle_accuracy_deg: float = 0.5,
    random_error: float = 0.002,
    compensate_loads: bool = True,
    calibration_accuracy: float | None = None,
    balance_head_voltage: bool = True,
    refine: int = 4,
    refine_method: str = "zoom",
    hops: int | None = None,
) -> LocationResult:
    """Locate the fault on ``model`` from the head phasors and the meters' sag reports.

    ``current_accuracy``/``angle_accuracy_deg`` are the head instruments' systematic limits
    (class 0.5: 0.5 % and 0.5°), the prior of the head gain. With ``compensate_loads`` False the
    load data are taken as measured (every secondary's meter, pre-fault) and the head's current
    channels are *calibrated* against them before the fault: the prior of the head gain is then
    centred on that calibration with ``calibration_accuracy`` (aggregate error of the load
    readings, per unit). ``random_error`` is the per-reading noise of phasors and RMS values
    (systematic meter errors cancel in a sag depth, noise does not). ``refine`` sections (best
    after the coarse search) get a continuous refinement of position and Rf. ``hops``: the coarse search covers the
    sweep's candidate sections and their neighbours up to this many sections away (None: every
    section)."""
    t0 = time.perf_counter()
    sags = sags or []
    if not model.sections:
        raise LocationError("the feeder model has no sections")
    for s in sags:
        if s.meter_id not in model.meter_views:
            raise LocationError(
                f"sag report from meter {s.meter_id!r}, which the feeder model does not place"
            )
    cls = classify(head)
    if balance_head_voltage:
        head = equalise_voltage_channels(head)
    t_cls = time.perf_counter()
    c_mean = np.zeros(3, dtype=complex)
    if compensate_loads:
        model.compensate_loads(head.v_pre, head.i_pre)
    else:
        model.settle_loads(head.v_pre)
        i_model_pre = model.head_current(head.v_pre, model.no_fault(head.v_pre))
        c_mean = head.i_pre / i_model_pre - 1.0
    sw = sweep(model, head, cls)
    t_sweep = time.perf_counter()

    watch = [model.meter_views[s.meter_id][0] for s in sags]
    views = [model.meter_views[s.meter_id][1] for s in sags]
    v_pre_nodes = model.no_fault(head.v_pre)
    v_pre_model = np.array(
        [np.abs(vw @ v_pre_nodes[model.node_index[n]]) for n, vw in zip(watch, views, strict=True)]
    ).reshape(len(sags), 3)
    r_meas = (
        np.array([s.v_during / s.v_pre for s in sags]).reshape(len(sags), 3)
        if sags
        else np.zeros((0, 3))
    )
    sigma_c = float(np.hypot(2 * current_accuracy, 2 * np.deg2rad(angle_accuracy_deg)) / 2)
    if not compensate_loads and calibration_accuracy is not None:
        sigma_c = float(calibration_accuracy)
    sigma_i = random_error * (np.abs(head.i_during) + 0.05 * np.abs(head.i_during).max()) + 1e-3
    prob = _Problem(
        model,
        head,
        watch,
        views,
        r_meas,
        np.maximum(v_pre_model, 1e-6),
        sigma_i,
        max(sigma_c, 1e-6),
        float(np.sqrt(2) * random_error),
        c_mean,
    )

    # coarse search over every section, fault kind and a (d, Rf) grid
    dd, rr = np.meshgrid(D_GRID, RF_GRID, indexing="ij")
    dd, rr = dd.ravel(), rr.ravel()
    coarse: list[tuple[float, Section, FaultKind, str, float, float]] = []
    search = _neighbourhood(model, {c.section_id for c in sw}, hops) if hops else None
    for kind, phases in _kinds_to_try(cls):
        yf = _yf_batch(kind, phases, rr)
        cost = prob.costs_all(dd, yf)  # (S, k): every section in one vectorised call
        best_k = np.argmin(cost, axis=1)
        for i, sec in enumerate(model.sections):
            if search is not None and sec.id not in search:
                continue
            kb = int(best_k[i])
            coarse.append((float(cost[i, kb]), sec, kind, phases, float(dd[kb]), float(rr[kb])))
    # the sweep's candidates get a start of their own (its d is often better than the grid's)
    sweep_starts = []
    for c in sw:
        sec = model.sections[model.section_index[c.section_id]]
        for kind, phases in _kinds_to_try(cls):
            res = prob.residuals(
                sec, np.array([c.fraction]), _yf_batch(kind, phases, np.array([c.rf_ohm]))
            )
            sweep_starts.append(
                (float(np.sum(res**2)), sec, kind, phases, c.fraction, min(c.rf_ohm, RF_MAX))
            )
    t_coarse = time.perf_counter()

    coarse.sort(key=lambda x: x[0])
    best_by_section: dict[str, tuple] = {}
    for item in coarse + sorted(sweep_starts, key=lambda x: x[0]):
        key = item[1].id
        if key not in best_by_section or item[0] < best_by_section[key][0]:
            best_by_section[key] = item
    ranked = sorted(best_by_section.values(), key=lambda x: x[0])

    fitted: list[Candidate] = []
    dist_head = {model.head_node: 0.0}
    for s in model.sections:
        dist_head[s.to_node] = dist_head[s.from_node] + s.length_m
    for cost0, sec, kind, phases, d0, rf0 in ranked[: max(refine, 1)]:
        if refine_method == "lsq":
            d, rf, cost = _lsq(prob, sec, kind, phases, d0, rf0, cost0)
        else:  # grid zoom into the basin, then a trust-region polish along the narrow valley
            d, rf, cost = _zoom(prob, sec, kind, phases, d0, rf0, cost0, passes=3)
            d, rf, cost = _lsq(prob, sec, kind, phases, d, rf, cost)
        fitted.append(
            Candidate(
                sec.id,
                sec.from_node,
                sec.to_node,
                d,
                d * sec.length_m,
                dist_head[sec.from_node] + d * sec.length_m,
                rf,
                cost,
                kind,
                phases,
            )
        )
    # the rest keep their coarse costs so the caller can see how close they came
    for cost0, sec, kind, phases, d0, rf0 in ranked[max(refine, 1) :]:
        fitted.append(
            Candidate(
                sec.id,
                sec.from_node,
                sec.to_node,
                d0,
                d0 * sec.length_m,
                dist_head[sec.from_node] + d0 * sec.length_m,
                rf0,
                cost0,
                kind,
                phases,
                "grid",
            )
        )
    fitted.sort(key=lambda c: c.cost)
    best = fitted[0]
    second = fitted[1].cost if len(fitted) > 1 else np.inf
    confidence = float(1.0 - best.cost / second) if second > 0 and np.isfinite(second) else 1.0
    t_end = time.perf_counter()
    return LocationResult(
        classification=cls,
        best=best,
        candidates=fitted,
        sweep=sw,
        confidence=max(0.0, min(1.0, confidence)),
        compute_s=t_end - t0,
        timings={
            "classify_s": t_cls - t0,
            "sweep_s": t_sweep - t_cls,
            "coarse_s": t_coarse - t_sweep,
            "fit_s": t_end - t_coarse,
        },
    )


__all__ = [
    "SEQ_INV",
    "Candidate",
    "Classification",
    "HeadPhasors",
    "LocationError",
    "LocationResult",
    "SagReport",
    "classify",
    "locate",
    "sweep",
]
