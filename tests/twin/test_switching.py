"""Protection and switching: a trip de-energises exactly the downstream nodes, closing the tie
re-energises them, radiality, the event log the measurement side reads."""

from __future__ import annotations

import copy

import numpy as np
import pandapower.topology as top
import pytest

from gridedge.clock import Clock, ClockMode
from gridedge.twin import Fault, Twin, TwinError


@pytest.fixture()
def twin() -> Twin:
    return Twin.from_name("turin-2feeder", clock=Clock(ClockMode.STEPPED, start_ns=10**18))


def _unsupplied_by_pandapower(twin: Twin, open_switches: set[str], closed: set[str] = frozenset()):
    net = copy.deepcopy(twin.net)
    sw = net.switch
    sw.loc[sw["name"].isin(open_switches), "closed"] = False
    sw.loc[sw["name"].isin(closed), "closed"] = True
    dead = top.unsupplied_buses(net)
    return {net.bus.at[b, "name"] for b in dead}


def test_trip_deenergises_exactly_the_downstream_nodes(twin: Twin) -> None:
    twin.solve()
    t0 = twin.clock.now_ns()
    st = twin.apply_fault(Fault("L-A3-A4", 0.5, "1ph", r_f_ohm=0.5))
    assert st.faulted and st.energised.all()
    assert twin.events[-1].kind == "fault" and twin.events[-1].detail["breaker"] == "CB-A"
    twin.advance(twin.trip_delay_s / 2)
    assert twin.state.faulted  # protection has not acted yet
    twin.advance(twin.trip_delay_s)
    st = twin.state
    trip = twin.events[-1]
    assert trip.kind == "trip" and trip.target == "CB-A"
    assert trip.time_ns - t0 == int(twin.trip_delay_s * 1e9)
    dead = {n for n, e in zip(st.node_ids, st.energised, strict=True) if not e}
    assert dead == _unsupplied_by_pandapower(twin, {"CB-A"})
    assert all(n.startswith(("CB-A", "SS-A", "TIE")) for n in dead)
    assert not any(n.startswith("SS-B") for n in dead)
    assert np.all(st.u[~st.energised] == 0)
    assert abs(st.branch_current("CB-A")).max() == 0
    # the state at a time between inception and trip is the fault state
    mid = twin.state_at(t0 + int(twin.trip_delay_s * 0.5e9))
    assert mid.faulted and mid.fault_current is not None


def test_isolate_and_restore_through_the_tie(twin: Twin) -> None:
    twin.apply_fault(Fault("L-A3-A4", 0.5, "3ph"))
    twin.advance(1.0)
    # FLISR: open both ends of the faulted section, reclose the breaker, close the tie
    twin.operate("SW-A3-out", False)
    twin.operate("SW-A4-in", False)
    st = twin.operate("CB-A", True)
    assert not st.faulted
    assert st.is_energised("SS-A3") and not st.is_energised("SS-A4")
    assert twin.is_radial()
    st = twin.operate("TIE-AB", True)
    dead = {n for n, e in zip(st.node_ids, st.energised, strict=True) if not e}
    assert (
        dead
        == _unsupplied_by_pandapower(twin, {"SW-A3-out", "SW-A4-in"}, closed={"TIE-AB"})
        == {"SS-A3-out", "SS-A4-in"}
    )  # the faulted cable and its two terminals
    assert st.is_energised("SS-A4") and st.is_energised("SS-A6")
    assert twin.is_radial()
    assert not st.faulted  # the faulted cable is isolated: no fault current anywhere


def test_closing_onto_the_fault_retrips(twin: Twin) -> None:
    twin.apply_fault(Fault("L-A3-A4", 0.5, "1ph"))
    twin.advance(1.0)
    st = twin.operate("CB-A", True)  # reclose onto a permanent fault
    assert st.faulted
    twin.advance(1.0)
    assert [e.kind for e in twin.events].count("trip") == 2
    twin.clear_fault()
    st = twin.operate("CB-A", True)
    assert st.energised.all() and not st.faulted


def test_closing_the_tie_with_both_breakers_makes_a_loop(twin: Twin) -> None:
    assert twin.is_radial()
    twin.operate("TIE-AB", True)
    assert not twin.is_radial()
    twin.operate("SW-A5-out", False)
    assert twin.is_radial()


def test_switch_errors_name_the_field(twin: Twin) -> None:
    with pytest.raises(TwinError, match="switch_id"):
        twin.operate("NOPE", False)
    with pytest.raises(TwinError, match="closed"):
        twin.operate("TIE-AB", "yes")  # type: ignore[arg-type]
    with pytest.raises(TwinError, match="customer_id"):
        twin.set_relay("C99", False)
    lv = Twin.from_name("lv-residential")
    with pytest.raises(TwinError, match="phase"):
        lv.select_phase("C01", "d")


def test_lv_branch_switch_deenergises_its_customers() -> None:
    lv = Twin.from_name("lv-residential")
    st = lv.operate("SW-B2", False)
    for cid, c in lv.customers.items():
        assert st.is_energised(c.node_id) == (not c.node_id.startswith("B2")), cid


def test_protection_on_an_accelerated_clock() -> None:
    import time

    clock = Clock(ClockMode.ACCELERATED, speed=100.0)
    tw = Twin.from_name("turin-2feeder", clock=clock, trip_delay_s=0.5)
    t0 = clock.now_ns()
    tw.apply_fault(Fault("L-A1-A2", 0.5, "2ph"))
    with pytest.raises(TwinError, match="clock"):
        tw.advance(1.0)
    time.sleep(0.01)  # 1 s of simulated time
    st = tw.state
    trip = [e for e in tw.events if e.kind == "trip"]
    assert len(trip) == 1 and trip[0].target == "CB-A"
    inception = next(e for e in tw.events if e.kind == "fault").time_ns
    assert inception - t0 < 0.05e9  # the fault happens when apply_fault is called
    assert trip[0].time_ns - inception == int(0.5e9)
    assert not st.is_energised("SS-A1")


def test_fault_on_a_dead_section_draws_nothing(twin: Twin) -> None:
    twin.operate("SW-A3-out", False)
    twin.operate("SW-A4-in", False)
    st = twin.apply_fault(Fault("L-A3-A4", 0.5, "3ph"))
    assert not st.faulted
    twin.advance(5.0)
    assert not [e for e in twin.events if e.kind == "trip"]
    with pytest.raises(TwinError, match="fault"):
        twin.apply_fault(Fault("L-A1-A2", 0.5))


def test_history_is_in_time_order_on_a_running_clock() -> None:
    clock = Clock(ClockMode.ACCELERATED, speed=50.0)
    tw = Twin.from_name("turin-2feeder", clock=clock, trip_delay_s=0.2)
    tw.solve()
    tw.apply_fault(Fault("L-A2-A3", 0.5, "1ph"))
    inception = next(e for e in tw.events if e.kind == "fault").time_ns
    assert tw.prefault_state is not None and tw.prefault_state.time_ns == inception
    import time

    time.sleep(0.01)  # 0.5 s simulated: the trip is due
    _ = tw.state
    times = [t for t, _ in tw.history]
    assert times == sorted(times)
    assert tw.state_at(inception - 1).faulted is False
    assert tw.state_at(inception).faulted is True
    trip = next(e for e in tw.events if e.kind == "trip")
    assert tw.state_at(trip.time_ns).faulted is False
