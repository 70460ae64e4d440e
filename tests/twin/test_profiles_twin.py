"""Profiles driving a real Twin through the server's service loop (set_load_power hook)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gridedge.clock import Clock
from gridedge.twin.profiles import ProfileDriver
from gridedge.twin.server import TwinService, TwinServiceOptions
from gridedge.twin.telemetry import IDEAL


async def test_profile_steps_scale_the_loads_and_the_feeder_head_sees_it() -> None:
    from gridedge.twin.model import Twin

    # 03:00 local on a winter Wednesday; profile steps every 15 simulated minutes
    start = int(datetime(2025, 1, 15, 2, 0, tzinfo=UTC).timestamp() * 1e9)
    twin = Twin.from_name("turin-2feeder", clock=Clock("stepped", start_ns=start))
    nominal = {ld.id: float(np.sum(ld.p_w)) for ld in twin.load_data()}
    drv = ProfileDriver.uniform(list(twin.load_ids), load_profile="residential")
    opts = TwinServiceOptions(profiles=drv, profile_step_s=900.0, accuracy=IDEAL)
    svc = TwinService(twin, opts)
    await svc.start()
    try:
        night = svc.telemetry("M1", None)
        p_night = {ld.id: float(np.sum(ld.p_w)) for ld in twin.load_data()}
        f_night = drv.profile_factors(start)
        for k, p in p_night.items():
            assert p == pytest.approx(nominal[k] * f_night[k][0], rel=1e-9)
        twin.advance(17 * 3600.0)  # 20:00 local: the evening peak
        svc.tick()
        evening = svc.telemetry("M1", None)
        p_eve = sum(float(np.sum(ld.p_w)) for ld in twin.load_data() if ld.id.startswith("LD-A"))
    finally:
        await svc.stop()
    assert sum(evening.active_power_w) > 2 * sum(night.active_power_w)
    # the head meter sees the feeder's load plus losses
    assert sum(evening.active_power_w) == pytest.approx(p_eve, rel=0.03)
    steps = [e for e in svc.events if e.kind == "profile-step"]
    assert len(steps) == 2 and steps[1].time_ns == start + 17 * 3600 * 10**9


def test_scaler_refuses_loads_the_twin_does_not_have() -> None:
    from gridedge.twin.model import Twin
    from gridedge.twin.profiles import TwinLoadScaler

    twin = Twin.from_name("turin-2feeder")
    with pytest.raises(ValueError, match="LD-Z9"):
        TwinLoadScaler(twin, ProfileDriver({"LD-Z9": "residential"}))


def test_pv_profile_drives_the_generators() -> None:
    """PV generators follow the PV profile: nothing at night, a share of the installed power at
    noon, and the grid's power flow sees it."""
    from gridedge.twin.model import Twin
    from gridedge.twin.profiles import TwinLoadScaler

    twin = Twin.from_name("simbench-mv-urban")
    installed = twin.gen_power()
    assert installed, "the simbench grid has PV generators"
    gens = sorted(installed)[:20]
    scaler = TwinLoadScaler(twin, ProfileDriver(generators=dict.fromkeys(gens, "pv")))
    midnight = int(datetime(2025, 6, 18, 22, 0, tzinfo=UTC).timestamp() * 1e9)  # 00:00 CEST
    noon = int(
        datetime(2025, 6, 18, 11, 0, tzinfo=UTC).timestamp() * 1e9
    )  # 12:00 CEST (≈11:00 CET)

    scaler.apply(midnight)
    night = twin.gen_power()
    src_night = twin.solve().u.copy()
    assert all(night[g][0] == pytest.approx(0.0, abs=1e-9) for g in gens)

    scaler.apply(noon)
    day = twin.gen_power()
    factors = scaler.driver.pv_factors(noon)
    for g in gens:
        assert day[g][0] == pytest.approx(installed[g][0] * factors[g], rel=1e-9)
    assert min(factors[g] for g in gens) > 0.3
    # untouched generators keep their setpoint
    for g in sorted(installed)[20:25]:
        assert day[g] == installed[g]
    assert not np.allclose(twin.solve().u, src_night)


def test_scaler_refuses_generators_the_twin_does_not_have() -> None:
    from gridedge.twin.model import Twin
    from gridedge.twin.profiles import TwinLoadScaler

    twin = Twin.from_name("turin-2feeder")
    with pytest.raises(ValueError, match="PV-Z9"):
        TwinLoadScaler(twin, ProfileDriver(generators={"PV-Z9": "pv"}))
