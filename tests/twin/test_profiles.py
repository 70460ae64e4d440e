"""Load/PV profiles: SimBench values at the right local time, synthetic shapes, diversity."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from gridedge.twin.profiles import ProfileDriver, _simbench_dir, get_profile


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1e9)


@functools.lru_cache
def _column(csv: str, column: str) -> pd.DataFrame:
    return pd.read_csv(_simbench_dir() / csv, sep=";", usecols=["time", column])


def raw(csv: str, column: str, stamp: str, peak_of: str | None = None) -> float:
    """The CSV's own value at a time label, read independently of the code under test;
    divided by the yearly maximum of column ``peak_of`` if given (load profiles)."""
    df = _column(csv, column)
    value = float(df.loc[df["time"] == stamp, column].iloc[0])
    return value / float(_column(csv, peak_of)[peak_of].max()) if peak_of else value


def rawp(column: str, stamp: str) -> float:
    return raw("LoadProfile.csv", column, stamp, peak_of="H0-A_pload")


def test_simbench_load_factor_is_the_csv_value_at_local_time() -> None:
    d = ProfileDriver({"L1": "H0-A"}, {"G1": "PV3"})
    # 2025-07-10 10:30 UTC = 12:30 in Rome (CEST) → SimBench row "10.07.2016 12:30"
    p, q = d.profile_factors(ns(2025, 7, 10, 10, 30))["L1"]
    assert p == pytest.approx(rawp("H0-A_pload", "10.07.2016 12:30"))
    assert q == pytest.approx(rawp("H0-A_qload", "10.07.2016 12:30"))
    pv = d.pv_factors(ns(2025, 7, 10, 10, 30))["G1"]
    assert pv == pytest.approx(raw("RESProfile.csv", "PV3", "10.07.2016 12:30"))
    assert pv > 0.1
    # halfway between two 15-min points: linear interpolation
    a = rawp("H0-A_pload", "10.07.2016 12:30")
    b = rawp("H0-A_pload", "10.07.2016 12:45")
    mid = d.profile_factors(ns(2025, 7, 10, 10, 37) + int(30e9))["L1"][0]
    assert mid == pytest.approx((a + b) / 2)
    # winter: Rome is UTC+1
    p_w = d.profile_factors(ns(2025, 1, 15, 17, 0))["L1"][0]
    assert p_w == pytest.approx(rawp("H0-A_pload", "15.01.2016 18:00"))
    assert d.pv_factors(ns(2025, 1, 15, 23, 0))["G1"] == 0.0


def test_synthetic_shapes() -> None:
    res = get_profile("residential")
    assert get_profile("pv").q is None
    assert res.p.max() == pytest.approx(1.0) and res.p.min() > 0.1
    assert res.q is not None
    pf = res.p / [math.hypot(p, q) for p, q in zip(res.p, res.q, strict=True)]
    assert pf == pytest.approx(0.95)
    d = ProfileDriver({"L": "residential"}, {"G": "pv"})
    evening = d.profile_factors(ns(2025, 3, 12, 19, 0))["L"][0]  # Wednesday 20:00 local
    night = d.profile_factors(ns(2025, 3, 12, 2, 0))["L"][0]
    assert evening > 2 * night
    summer_noon = d.pv_factors(ns(2025, 6, 21, 10, 30))["G"]
    winter_noon = d.pv_factors(ns(2025, 12, 21, 11, 30))["G"]
    assert summer_noon > winter_noon > 0.0
    assert d.pv_factors(ns(2025, 6, 21, 22, 0))["G"] == 0.0


def test_diversity_is_seeded_and_bounded() -> None:
    ids = [f"L{i}" for i in range(20)]
    a = ProfileDriver.uniform(ids, load_profile="residential", diversity_s=1800, seed=4)
    b = ProfileDriver.uniform(ids, load_profile="residential", diversity_s=1800, seed=4)
    t = ns(2025, 3, 12, 6, 30)
    fa, fb = a.profile_factors(t), b.profile_factors(t)
    assert fa == fb
    assert len({round(v[0], 9) for v in fa.values()}) > 10  # not all the same
    assert all(abs(o) <= 1800e9 for o in a._offset_ns.values())


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"not a SimBench load or renewable profile.*PV1"):
        get_profile("nonsense")


def test_aggregate_profiles_are_scaled_to_their_yearly_peak() -> None:
    agg = get_profile("lv_urban6")
    assert agg.p.max() == pytest.approx(1.0)
    col = _column("LoadProfile.csv", "lv_urban6_pload")["lv_urban6_pload"]
    assert col.max() < 0.5  # SimBench's own aggregate does not peak at 1
    np.testing.assert_allclose(agg.p, col.to_numpy() / col.max())
    qcol = _column("LoadProfile.csv", "lv_urban6_qload")["lv_urban6_qload"]
    np.testing.assert_allclose(agg.q, qcol.to_numpy() / col.max())  # power factor kept
