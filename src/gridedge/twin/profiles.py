"""Load and PV profiles: the scaling factors that move the twin's injections through the day.

Two sources:

- **simbench** (default where installed): the yearly 15-min profiles SimBench ships (loaded at run
  time from the package's CSV files, never copied into gridedge: the data is ODbL 1.0 / DbCL 1.0,
  see REFERENCE.md §1.5 item 7). ``H0-A`` … are household (BDEW-style) profiles, ``lv_urban6`` the
  aggregate of an urban LV grid — the right shape for a secondary substation's lumped load —
  ``PV1`` … ``PV8`` photovoltaic infeed. Load factors are divided by the year's peak
  active power (Q by the same divisor), so a load's nominal power in the twin is its yearly peak;
  PV factors are SimBench's own, per unit of installed power.
- **synthetic** (documented, no data needed): a residential shape with a morning and an evening
  peak (weekends later and flatter, a winter/summer swing of ±15 %) at cos φ = 0.95, and a
  clear-sky PV bell between sunrise and sunset at Turin's latitude (45° N).

Profiles are local-time shapes: simulated UTC time is converted to the grid's time zone
(``Europe/Rome`` by default, local standard time: SimBench's rows are consecutive 15-min steps
whose labels follow DST) and mapped onto SimBench's 2016 calendar by month, day and time of day,
with linear interpolation between the 15-min points.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

STEP_S = 900
YEAR_STEPS = 366 * 96  # SimBench's calendar year is 2016 (a leap year)
SYNTHETIC = ("residential", "pv")


@dataclass(frozen=True)
class Profile:
    """A year of factors at 15 min (2016 calendar). ``q`` is None for generation profiles."""

    name: str
    p: np.ndarray
    q: np.ndarray | None
    source: str

    def index(self, local: datetime) -> float:
        doy = date(2016, local.month, local.day).timetuple().tm_yday
        minutes = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        return (doy - 1) * 96 + minutes / 15.0

    def at(self, local: datetime) -> tuple[float, float]:
        x = self.index(local)
        i0 = math.floor(x) % YEAR_STEPS
        i1 = (i0 + 1) % YEAR_STEPS
        w = x - math.floor(x)
        p = (1 - w) * self.p[i0] + w * self.p[i1]
        q = p if self.q is None else (1 - w) * self.q[i0] + w * self.q[i1]
        return float(p), float(q)


def _simbench_dir() -> Path:
    try:
        import simbench
    except ImportError as exc:  # pragma: no cover - simbench is a dependency
        raise RuntimeError("simbench is not installed; use source='synthetic'") from exc
    base = Path(simbench.__file__).parent / "networks"
    for d in sorted(base.glob("1-complete_data-*-0-sw")):
        if (d / "LoadProfile.csv").exists():
            return d
    raise RuntimeError(f"no SimBench profile CSVs under {base}")


@functools.lru_cache(maxsize=32)
def simbench_profile(name: str) -> Profile:
    """A SimBench profile by name: a load type (``H0-A``, ``lv_urban6``, ``G1-A`` …) or a
    renewable one (``PV1`` … ``PV8``, ``WP1`` …). Reads only the columns it needs (≈0.3 s)."""
    import pandas as pd

    d = _simbench_dir()
    header = (d / "LoadProfile.csv").open(encoding="utf-8").readline().strip().split(";")
    if f"{name}_pload" in header:
        df = pd.read_csv(d / "LoadProfile.csv", sep=";", usecols=[f"{name}_pload", f"{name}_qload"])
        p = df[f"{name}_pload"].to_numpy(float)
        q = df[f"{name}_qload"].to_numpy(float)
        # SimBench's household profiles peak at 1.0 but its aggregates do not (lv_urban6: 0.43);
        # the twin's nominal load is its yearly peak, so both are scaled by the same divisor
        # (the profile's power factor is kept)
        peak = float(p.max()) or 1.0
        return Profile(name, p / peak, q / peak, "simbench")
    res_header = (d / "RESProfile.csv").open(encoding="utf-8").readline().strip().split(";")
    if name in res_header:
        p = pd.read_csv(d / "RESProfile.csv", sep=";", usecols=[name])[name].to_numpy(float)
        return Profile(name, p, None, "simbench")
    loads = sorted(h[: -len("_pload")] for h in header if h.endswith("_pload"))
    raise ValueError(
        f"profile {name!r} is not a SimBench load or renewable profile; load profiles: "
        f"{', '.join(loads[:12])} …; renewables: {', '.join(res_header[1:9])} …"
    )


def _synthetic_residential() -> Profile:
    """Two Gaussian humps (07:30 and 20:00) on a night base, weekends 1 h later and flatter,
    seasonal swing ±15 % peaking mid-January; cos φ = 0.95 (q = p·tan φ)."""
    days = np.arange(366)
    hours = np.arange(96) / 4.0
    weekday = (date(2016, 1, 1).weekday() + days) % 7  # 0 = Monday
    weekend = weekday >= 5
    shift = np.where(weekend, 1.0, 0.0)[:, None]
    morning = np.where(weekend, 0.45, 0.55)[:, None]

    def hump(centre: np.ndarray | float, width: float) -> np.ndarray:
        return np.exp(-0.5 * ((hours[None, :] - centre) / width) ** 2)

    shape = 0.25 + morning * hump(7.5 + shift, 1.2) + 0.75 * hump(20.0 + shift * 0.5, 2.0)
    shape += 0.2 * hump(13.0, 1.5)
    season = 1.0 + 0.15 * np.cos(2 * np.pi * (days - 14) / 366)
    p = (shape * season[:, None]).ravel()
    p /= p.max()
    q = p * math.tan(math.acos(0.95))
    return Profile("residential", p, q, "synthetic")


def _synthetic_pv(latitude_deg: float = 45.07) -> Profile:
    """Clear-sky PV: sin(solar elevation) between sunrise and sunset (declination from the day
    of year, solar time = local standard time), scaled so the year's peak is 0.8 pu."""
    days = np.arange(366)
    hours = np.arange(96) / 4.0 + 1 / 8
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + days + 1) / 365)
    lat = np.radians(latitude_deg)
    hour_angle = np.radians(15.0 * (hours - 12.5))  # CET noon ≈ 12:30 solar at 7.7° E
    sin_el = (
        np.sin(lat) * np.sin(decl)[:, None]
        + np.cos(lat) * np.cos(decl)[:, None] * np.cos(hour_angle)[None, :]
    )
    p = np.clip(sin_el, 0.0, None).ravel()
    p = 0.8 * p / p.max()
    return Profile("pv", p, None, "synthetic")


@functools.lru_cache(maxsize=4)
def synthetic_profile(name: str) -> Profile:
    if name == "residential":
        return _synthetic_residential()
    if name == "pv":
        return _synthetic_pv()
    raise ValueError(f"synthetic profile {name!r} unknown; known: {', '.join(SYNTHETIC)}")


def get_profile(name: str) -> Profile:
    """``residential``/``pv`` are the synthetic shapes; any other name is looked up in SimBench."""
    return synthetic_profile(name) if name in SYNTHETIC else simbench_profile(name)


class ProfileDriver:
    """Scaling factors per load and per generator at a simulated time.

    ``loads`` and ``generators`` map component ids to profile names. ``diversity_s`` shifts each
    component's profile by a seeded random offset in ±diversity_s, so a feeder of identical
    household profiles does not peak in the same minute."""

    def __init__(
        self,
        loads: Mapping[str, str] | None = None,
        generators: Mapping[str, str] | None = None,
        *,
        timezone: str = "Europe/Rome",
        diversity_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.loads = {k: get_profile(v) for k, v in (loads or {}).items()}
        self.generators = {k: get_profile(v) for k, v in (generators or {}).items()}
        rng = np.random.default_rng(seed)
        ids = sorted(self.loads) + sorted(self.generators)
        offs = (
            rng.uniform(-diversity_s, diversity_s, len(ids))
            if diversity_s > 0
            else [0.0] * len(ids)
        )
        self._offset_ns = {k: int(o * 1e9) for k, o in zip(ids, offs, strict=True)}

    @classmethod
    def uniform(
        cls,
        load_ids: list[str],
        gen_ids: list[str] | None = None,
        *,
        load_profile: str = "lv_urban6",
        pv_profile: str = "PV3",
        **kw: object,
    ) -> ProfileDriver:
        """Every load on one profile, every generator on one PV profile."""
        return cls(
            dict.fromkeys(load_ids, load_profile),
            dict.fromkeys(gen_ids or [], pv_profile),
            **kw,  # type: ignore[arg-type]
        )

    def _local(self, t_ns: int) -> datetime:
        # SimBench's rows are consecutive 15-min steps of real time labelled in local time with
        # DST (02:00 is missing on the spring change day), so the row is found from local
        # *standard* time.
        local = datetime.fromtimestamp(t_ns / 1e9, tz=UTC).astimezone(self.tz)
        return local - (local.dst() or timedelta(0))

    def profile_factors(self, t_ns: int) -> dict[str, tuple[float, float]]:
        """``{load_id: (p_factor, q_factor)}`` multiplying each load's nominal P and Q."""
        return {
            k: prof.at(self._local(t_ns + self._offset_ns[k])) for k, prof in self.loads.items()
        }

    def pv_factors(self, t_ns: int) -> dict[str, float]:
        """``{generator_id: p_factor}`` per unit of installed power."""
        return {
            k: prof.at(self._local(t_ns + self._offset_ns[k]))[0]
            for k, prof in self.generators.items()
        }


class TwinLoadScaler:
    """Drives a Twin's loads and generators (PV) from a :class:`ProfileDriver` through its
    ``set_load_power`` hook.

    The loads' powers and the generators' setpoints when the scaler is made are taken as their
    nominal values (the profile's 1.0; for PV the installed power); each :meth:`apply` sets every
    profiled load and generator to nominal × factor and re-solves."""

    def __init__(self, twin: Any, driver: ProfileDriver) -> None:
        self.twin = twin
        self.driver = driver
        self.base = {
            ld.id: (float(np.sum(ld.p_w)), float(np.sum(ld.q_var)))
            for ld in twin.load_data()
            if ld.id in driver.loads
        }
        missing = sorted(set(driver.loads) - set(self.base))
        if missing:
            raise ValueError(f"loads: {missing[:5]} are not loads of the twin")
        gens = twin.gen_power() if driver.generators else {}
        self.gen_base = {g: pq for g, pq in gens.items() if g in driver.generators}
        missing = sorted(set(driver.generators) - set(self.gen_base))
        if missing:
            raise ValueError(f"generators: {missing[:5]} are not generators of the twin")

    def apply(self, t_ns: int) -> float:
        """Scale loads and generators to simulated time ``t_ns``; returns the total active
        load power set (W)."""
        f = self.driver.profile_factors(t_ns)
        p = {k: b[0] * f[k][0] for k, b in self.base.items()}
        q = {k: b[1] * f[k][1] for k, b in self.base.items()}
        load_w = float(sum(p.values()))
        if self.gen_base:
            g = self.driver.pv_factors(t_ns)
            p.update({k: b[0] * g[k] for k, b in self.gen_base.items()})
            q.update({k: b[1] * g[k] for k, b in self.gen_base.items()})
        self.twin.set_load_power(p, q)
        return load_w
