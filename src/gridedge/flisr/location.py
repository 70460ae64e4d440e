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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridedge.flisr.blas import single_blas_thread
from gridedge.flisr.network import (
    PHASES,
    RF_FLOOR_OHM,
    SEQ_INV,
    FaultKind,
    FeederModel,
    fault_admittances,
)

# only starting points: every section is then refined by Levenberg–Marquardt, so the grid just
# has to land in the right basin of (d, Rf) (a denser grid, 11 × 24, gave the same sections on
# 117 realistic faults at twice the cost)
RF_GRID = np.concatenate([[0.0], np.geomspace(0.3, 120.0, 11)])
D_GRID = np.linspace(0.0, 1.0, 6)
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
    unsynchronised, no angles). ``cycles_pre``/``cycles_during``: how many one-cycle readings
    each magnitude averages (1: a single reading); the locator weighs the depth by them."""

    meter_id: str
    v_pre: np.ndarray
    v_during: np.ndarray
    cycles_pre: int = 1
    cycles_during: int = 1

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
        for name in ("cycles_pre", "cycles_during"):
            if int(getattr(self, name)) < 1:
                raise LocationError(f"sag[{self.meter_id}].{name} must be >= 1")


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
    sigma_c: np.ndarray  # (2, 3) prior of the head gain error: magnitude (Re c), angle (Im c)
    sigma_r: np.ndarray  # (m, 1) random error of each meter's sag depth (per unit)
    c_mean: np.ndarray  # (3,) prior mean of the head gain error (from the pre-fault calibration)

    def residuals_at(self, idx: np.ndarray, d: np.ndarray, yf: np.ndarray) -> np.ndarray:
        """(S', k, n_res) weighted residuals for faults at fractions d (S', k) of sections idx
        (S',) with admittances yf broadcastable to (S', k, 3, 3)."""
        v_w, i_sim = self.model.fault_response_at(
            idx, d, yf, self.head.v_during, self.watch, self.views
        )
        S, k = d.shape
        res = self._residuals(v_w.reshape(S * k, *v_w.shape[2:]), i_sim.reshape(S * k, 3))
        return res.reshape(S, k, -1)

    def _residuals(self, v_w: np.ndarray, i_sim: np.ndarray) -> np.ndarray:
        i_meas = self.head.i_during[None]
        wi = 1 / self.sigma_i**2
        wr, wa = 1 / self.sigma_c[0] ** 2, 1 / self.sigma_c[1] ** 2
        # (1 + c)·s − y with c = cr + j·ci: the regressors s and j·s are orthogonal, so the
        # magnitude and angle parts of the gain are profiled out independently, each against
        # its own prior (the pre-fault calibration pins the angle far tighter than the ratio)
        z = np.conj(i_sim) * (i_meas - i_sim) * wi
        s2 = np.abs(i_sim) ** 2 * wi
        cr = (z.real + self.c_mean.real * wr) / (s2 + wr)
        ci = (z.imag + self.c_mean.imag * wa) / (s2 + wa)
        ri = ((1 + cr + 1j * ci) * i_sim - i_meas) / self.sigma_i
        parts = [
            ri.real,
            ri.imag,
            (cr - self.c_mean.real) / self.sigma_c[0],
            (ci - self.c_mean.imag) / self.sigma_c[1],
        ]
        if self.watch:
            r = np.abs(v_w) / self.v_pre_model[None]  # v_w already seen through the views
            parts.append(((r - self.r_meas[None]) / self.sigma_r).reshape(len(i_sim), -1))
        return np.concatenate(parts, axis=1)


def _problem(
    model: FeederModel,
    head: HeadPhasors,
    sags: list[SagReport],
    c_mean: np.ndarray,
    sigma_gain: tuple[float, float],
    random_error: float,
    sag_error: float,
) -> _Problem:
    """The least-squares problem of one fault record: the sag meters' depths and their σ (each
    depth from readings averaged over its cycles), the head's noise and gain prior
    (``sigma_gain``: σ of its magnitude and angle)."""
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
    sigma_c = np.maximum(np.array([[sigma_gain[0]] * 3, [sigma_gain[1]] * 3]), 1e-6)
    sigma_i = random_error * (np.abs(head.i_during) + 0.05 * np.abs(head.i_during).max()) + 1e-3
    return _Problem(
        model,
        head,
        watch,
        views,
        r_meas,
        np.maximum(v_pre_model, 1e-6),
        sigma_i,
        sigma_c,
        sag_error
        * np.sqrt(
            np.array([[1 / s.cycles_pre + 1 / s.cycles_during] for s in sags]).reshape(-1, 1)
        ),
        c_mean,
    )


def _levenberg_marquardt(
    prob: _Problem,
    idx: np.ndarray,
    kinds: list[tuple[FaultKind, str]],
    kind_of: np.ndarray,
    d0: np.ndarray,
    rf0: np.ndarray,
    iterations: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit (d, Rf) from many starts at once (section ``idx[p]``, fault kind
    ``kinds[kind_of[p]]``): Levenberg–Marquardt with forward-difference Jacobians, every start
    advanced together in one batched model call per evaluation.

    Why on every section and not only on the few the coarse grid ranks first: with accurate
    sag depths the cost valley in (d, Rf) is a few metres wide and curved, so a grid ranks
    sections by how close its points happen to fall to each valley, and the right section was
    often not among those refined (measured: in most misses the cost at the true fault was
    lower than at the reported one). A few batched iterations put every section at the bottom
    of its own valley, so sections are compared by how well they can fit."""
    P = len(idx)
    x = np.stack([np.clip(d0, 0.0, 1.0), np.clip(rf0, RF_FLOOR_OHM, RF_MAX)], axis=1)
    lam = np.full(P, 1e-2)

    def res_at(sub: np.ndarray, xx: np.ndarray, k: int = 1) -> np.ndarray:
        """Residuals of the starts ``sub`` at ``xx`` (len(sub), 2k): k points each."""
        d = xx[:, 0::2] if k > 1 else xx[:, :1]
        rf = xx[:, 1::2] if k > 1 else xx[:, 1:2]
        yf = np.empty((len(sub), rf.shape[1], 3, 3), dtype=complex)
        for g, (kd, ph) in enumerate(kinds):
            sel = np.flatnonzero(kind_of[sub] == g)
            if sel.size:
                yf[sel] = fault_admittances(kd, ph, rf[sel].ravel()).reshape(sel.size, -1, 3, 3)
        return prob.residuals_at(idx[sub], d, yf)

    r = res_at(np.arange(P), x)[:, 0]
    cost = np.sum(r**2, axis=1)
    done = np.zeros(P, dtype=bool)
    for _ in range(iterations):
        # only the starts still moving are evaluated: most settle in a few iterations, so a
        # generous iteration limit costs little and lets a sharp valley (a bolted fault's)
        # be followed to its bottom from a start far away
        sub = np.flatnonzero(~done)
        xa, ra = x[sub], r[sub]
        h = np.stack([np.full(len(sub), 1e-4), np.maximum(1e-4, 1e-4 * xa[:, 1])], axis=1)
        # the d step goes inward at d = 1 so the Jacobian never needs a point off the section
        hd = np.where(xa[:, 0] + h[:, 0] > 1.0, -h[:, 0], h[:, 0])
        xs = np.stack([xa[:, 0] + hd, xa[:, 1], xa[:, 0], xa[:, 1] + h[:, 1]], axis=1)
        rr = res_at(sub, xs, 2)
        jac = np.stack([(rr[:, 0] - ra) / hd[:, None], (rr[:, 1] - ra) / h[:, 1:2]], axis=2)
        jtj = np.einsum("pni,pnj->pij", jac, jac)
        jtr = np.einsum("pni,pn->pi", jac, ra)
        diag = np.einsum("pii->pi", jtj)
        la = lam[sub]
        a = jtj + la[:, None, None] * (np.eye(2)[None] * np.maximum(diag, 1e-12)[:, :, None])
        step = -np.linalg.solve(a, jtr[..., None])[..., 0]
        # a parameter at its bound (d at an end of the section, Rf at its floor or RF_MAX) with the step
        # pointing past it is held, and the other one stepped alone (an active-set step): the
        # clipped 2-D step would move it only by the damped amount the held direction allows,
        # crawling for tens of iterations or stalling short of the valley
        # Rf's bound is the model's floor: below it the admittance is clipped, so a finite
        # difference there sees no slope at all
        lo = np.array([0.0, RF_FLOOR_OHM])
        hi = np.array([1.0, RF_MAX])
        held = ((xa <= lo + 1e-6) & (step < 0)) | ((xa >= hi - 1e-6) & (step > 0))
        for p, q in ((0, 1), (1, 0)):
            one = held[:, p] & ~held[:, q]
            step[one, p] = 0.0
            step[one, q] = -jtr[one, q] / a[one, q, q]
        step[held.all(axis=1)] = 0.0
        xt = np.stack(
            [
                np.clip(xa[:, 0] + step[:, 0], 0.0, 1.0),
                np.clip(xa[:, 1] + step[:, 1], RF_FLOOR_OHM, RF_MAX),
            ],
            axis=1,
        )
        rt = res_at(sub, xt)[:, 0]
        ct = np.sum(rt**2, axis=1)
        ok = ct < cost[sub]
        # a start is done once its (clipped) step is below 1e-5 of the section and 1e-5 of Rf,
        # or an accepted step gained less than 1e-4 of cost (a thousandth of one measurement's
        # σ²: no section ranking can turn on it)
        done[sub] = (
            (np.abs(xt[:, 0] - xa[:, 0]) < 1e-5)
            & (np.abs(xt[:, 1] - xa[:, 1]) < 1e-5 * (1 + xa[:, 1]))
        ) | (ok & (cost[sub] - ct < 1e-4))
        x[sub] = np.where(ok[:, None], xt, xa)
        r[sub] = np.where(ok[:, None], rt, ra)
        cost[sub] = np.where(ok, ct, cost[sub])
        lam[sub] = np.where(ok, la / 3, la * 4)
        if np.all(done):
            break
    return x[:, 0], x[:, 1], cost


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


def _fit_starts(
    prob: _Problem,
    kinds: list[tuple[FaultKind, str]],
    idx: list[int],
    kind: list[int],
    d: list[float],
    rf: list[float],
    iterations: int,
) -> list[tuple[float, int, FaultKind, str, float, float]]:
    """Refine every start at once; (cost, section index, fault kind, phases, d, Rf) each."""
    d_fit, rf_fit, cost = _levenberg_marquardt(
        prob,
        np.array(idx, dtype=int),
        kinds,
        np.array(kind, dtype=int),
        np.array(d),
        np.array(rf),
        iterations=iterations,
    )
    return [
        (float(c), i, kinds[g][0], kinds[g][1], float(x), float(r))
        for c, i, g, x, r in zip(cost, idx, kind, d_fit, rf_fit, strict=True)
    ]


def locate(
    model: FeederModel, head: HeadPhasors, sags: list[SagReport] | None = None, **kw: Any
) -> LocationResult:
    """Locate the fault (see :func:`_locate`); runs with one BLAS thread (:mod:`.blas`)."""
    with single_blas_thread():
        return _locate(model, head, sags, **kw)


def _calibrate_head_angle(
    model: FeederModel,
    head: HeadPhasors,
    load_accuracy: float,
    load_angle_accuracy_deg: float,
    random_error: float,
) -> tuple[np.ndarray, float]:
    """The head's relative VT–CT phase error per phase, from the pre-fault current against the
    current the feeder model draws with the secondaries' metered loads (plus cable charging and
    transformer losses, which the model carries).

    Why only the angle: the model is driven by the measured voltage, so everything it simulates
    carries the VT's error; what the fault fit needs is the measured current over the simulated
    one, ``g_I/g_V``. Loads metered as *power* draw ``S/conj(V)``, so the pre-fault ratio is
    ``g_I·conj(g_V)``: the same angle, but the magnitude off by ``|g_V|²`` (up to 1 % for a
    class-0.5 VT). Taking the whole ratio (as this mode once did) pins the current gain's
    magnitude wrongly with a tight prior — that is why it did worse than load compensation. The
    angle is the one thing the reactance (Takagi) term is sensitive to, and ~50 secondaries'
    independent reading errors average out in it. Returns (prior mean of c, σ of its angle)."""
    model.settle_loads(head.v_pre)
    i_model = model.head_current(head.v_pre, model.no_fault(head.v_pre))
    k = head.i_pre / i_model
    c_mean = np.exp(1j * np.angle(k)) - 1.0
    # aggregate error of the load data: independent uniform errors of each secondary's reading
    s_load = np.array([abs(ld.s_va) for ld in model.loads])
    s_tot = abs(np.sum(head.v_pre * np.conj(head.i_pre))) or 1.0
    per = np.hypot(load_accuracy, np.deg2rad(load_angle_accuracy_deg)) / np.sqrt(3)
    sigma_loads = float(np.sqrt(np.sum((s_load * per) ** 2)) / s_tot)
    return c_mean, float(np.hypot(sigma_loads, random_error / np.sqrt(2)))


def _locate(
    model: FeederModel,
    head: HeadPhasors,
    sags: list[SagReport] | None = None,
    *,
    current_accuracy: float = 0.005,
    angle_accuracy_deg: float = 0.5,
    random_error: float = 0.002,
    sag_error: float | None = None,
    compensate_loads: bool = True,
    calibration_accuracy: float | None = None,
    voltage_accuracy: float = 0.005,
    load_accuracy: float = 0.005,
    load_angle_accuracy_deg: float = 0.5,
    balance_head_voltage: bool = True,
    refine: int = 3,
    lm_iterations: int = 30,
    d_grid: np.ndarray = D_GRID,
    rf_grid: np.ndarray = RF_GRID,
    hops: int | None = None,
    within: Collection[str] | Mapping[str, float] | None = None,
) -> LocationResult:
    """Locate the fault on ``model`` from the head phasors and the meters' sag reports.

    Head instruments: ``current_accuracy``/``angle_accuracy_deg`` (CT) and ``voltage_accuracy``
    (VT ratio) are their systematic class limits, the prior of the head's complex current gain.

    Load data: with ``compensate_loads`` (the default, for forecast load data) the loads are
    scaled together until the model draws what the head measured before the fault. With
    ``compensate_loads`` False the loads are taken as metered (every secondary's own pre-fault
    reading, class ``load_accuracy``/``load_angle_accuracy_deg``) and the head's relative VT–CT
    *angle* is calibrated against them (:func:`_calibrate_head_angle`); ``calibration_accuracy``
    overrides the σ of that angle (radians) computed from the load classes.

    Noise: ``random_error`` is the per-reading noise of the head's phasors, ``sag_error`` that
    of one sag meter's one-cycle magnitude reading (default: ``random_error``); a sag depth
    (during over before) carries ``sag_error``·√(1/cycles_pre + 1/cycles_during) of it (√2 for
    single readings; readings averaged over cycles are that much more precise), its meter's gain
    error cancels.

    Search: a coarse grid (``d_grid`` × ``rf_grid``) gives every section and fault kind a
    start, the sweep's candidates add theirs, then all are refined together by
    Levenberg–Marquardt (``lm_iterations``); the ``refine`` best sections are fitted again
    from three starts along the section. ``hops``: only the sweep's candidate sections and
    their neighbours up to this many sections away (None: every section). ``within``: only these
    sections (the fault passage indicators' verdict, :mod:`.passage`; None: every section); a
    mapping adds its value to that section's cost (:func:`.passage.section_penalties`)."""
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
    sigma_mag = sigma_ang = float(
        np.hypot(2 * current_accuracy, 2 * np.deg2rad(angle_accuracy_deg)) / 2
    )
    if compensate_loads:
        model.compensate_loads(head.v_pre, head.i_pre)
    else:
        c_mean, sigma_ang = _calibrate_head_angle(
            model, head, load_accuracy, load_angle_accuracy_deg, random_error
        )
        if calibration_accuracy is not None:
            sigma_ang = float(calibration_accuracy)
        # the ratio: a class-0.5 CT against a class-0.5 VT (uniform errors, σ = limit/√3)
        sigma_mag = float(np.hypot(current_accuracy, voltage_accuracy / np.sqrt(3)) / np.sqrt(3))
    sw = sweep(model, head, cls)
    t_sweep = time.perf_counter()

    prob = _problem(
        model,
        head,
        sags,
        c_mean,
        (sigma_mag, sigma_ang),
        random_error,
        random_error if sag_error is None else sag_error,
    )

    # coarse search over every section, fault kind and a (d, Rf) grid: starting points
    dd, rr = np.meshgrid(d_grid, rf_grid, indexing="ij")
    dd, rr = dd.ravel(), rr.ravel()
    search = _neighbourhood(model, {c.section_id for c in sw}, hops) if hops else None
    if within is not None:
        unknown_ids = set(within) - set(model.section_index)
        if unknown_ids or not within:
            raise LocationError(
                f"within: {sorted(unknown_ids)} are not sections of the feeder model"
                if unknown_ids
                else "within: no section left to search"
            )
        search = set(within) if search is None else search & set(within)
        # the neighbourhood of the sweep's candidates may lie wholly outside the verdict
        search = search or set(within)
    keep = [i for i, sec in enumerate(model.sections) if search is None or sec.id in search]
    kinds = _kinds_to_try(cls)
    st_idx: list[int] = []
    st_kind: list[int] = []
    st_d: list[float] = []
    st_rf: list[float] = []
    grid_d = np.broadcast_to(dd, (len(keep), dd.size))
    for g, (kind, phases) in enumerate(kinds):
        # the grid on the searched sections only, one vectorised call: (K, k) costs
        res = prob.residuals_at(np.array(keep), grid_d, fault_admittances(kind, phases, rr))
        best_k = np.argmin(np.sum(res**2, axis=2), axis=1)
        for j, i in enumerate(keep):
            st_idx.append(i)
            st_kind.append(g)
            st_d.append(float(dd[best_k[j]]))
            st_rf.append(float(rr[best_k[j]]))
        # the sweep's candidates get a start of their own (its d is often better than the grid's)
        for c in sw:
            if within is not None and c.section_id not in within:
                continue
            st_idx.append(model.section_index[c.section_id])
            st_kind.append(g)
            st_d.append(c.fraction)
            st_rf.append(min(c.rf_ohm, RF_MAX))
    t_coarse = time.perf_counter()

    # every start refined at once, all fault kinds in the same batched calls
    results = _fit_starts(prob, kinds, st_idx, st_kind, st_d, st_rf, lm_iterations)
    if refine:
        top: list[tuple[float, int, FaultKind, str, float, float]] = []
        for item in sorted(results, key=lambda x: x[0]):
            if all(item[1] != t[1] or item[2] != t[2] for t in top):
                top.append(item)
            if len(top) >= refine:
                break
        # the best sections again from starts along the section: another valley in the same
        # section may be the deeper one
        r_idx, r_kind, r_d, r_rf = [], [], [], []
        for _, i, kind, phases, _, rf in top:
            for x in (0.15, 0.5, 0.85):
                r_idx.append(i)
                r_kind.append(kinds.index((kind, phases)))
                r_d.append(x)
                r_rf.append(rf)
        results += _fit_starts(prob, kinds, r_idx, r_kind, r_d, r_rf, lm_iterations)

    best_by_section: dict[int, tuple[float, int, FaultKind, str, float, float]] = {}
    for item in results:
        if item[1] not in best_by_section or item[0] < best_by_section[item[1]][0]:
            best_by_section[item[1]] = item
    dist_head = {model.head_node: 0.0}
    for sec in model.sections:
        dist_head[sec.to_node] = dist_head[sec.from_node] + sec.length_m
    fitted: list[Candidate] = []
    for cost, i, kind, phases, d, rf in best_by_section.values():
        sec = model.sections[i]
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
    if isinstance(within, Mapping):
        for c in fitted:
            c.cost += float(within[c.section_id])
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
