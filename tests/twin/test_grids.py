"""Each grid's numbers match its source (seed papers, pandapower, simbench); the topology
document and the model data the fault locator needs."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from gridedge.contracts.catalog import TopologyDocument
from gridedge.twin import Twin, TwinError, UnknownGridError
from gridedge.twin.grids import build, grid_names


@pytest.fixture(scope="module")
def urban() -> Twin:
    return Twin.from_name("turin-urban")


@pytest.fixture(scope="module")
def two() -> Twin:
    return Twin.from_name("turin-2feeder")


def test_grid_names() -> None:
    assert {
        "turin-2feeder",
        "turin-urban",
        "cigre-mv",
        "simbench-mv-urban",
        "lv-residential",
    } <= set(grid_names())
    assert Twin.grid_names() == grid_names()
    with pytest.raises(UnknownGridError, match="grid"):
        build("atlantis")


def test_turin_urban_has_seed_003_sizes(urban: Twin) -> None:
    doc = urban.topology_document()
    kinds = [n.kind for n in doc.nodes]
    assert kinds.count("substation") == 415
    assert {n.feeder for n in doc.nodes if n.kind == "substation"} == {
        f"F{k:02d}" for k in range(1, 12)
    }
    radial_cables = [b for b in doc.branches if b.kind == "cable" and not b.id.startswith("L-TIE")]
    assert len(radial_cables) == 403
    loads = urban.load_data()
    mv = [ld for ld in loads if urban.node_voltage_kv(ld.node_id) > 1]
    lv = [ld for ld in loads if urban.node_voltage_kv(ld.node_id) < 1]
    assert (len(mv), len(lv)) == (42, 220)
    ties = [b for b in doc.branches if b.kind == "tie"]
    assert len(ties) == 8 and all(b.normally_open and not b.closed for b in ties)
    assert sum(b.kind == "sectionalizer" for b in doc.branches) > 50
    assert sum(b.kind == "breaker" for b in doc.branches) == 11
    assert urban.is_radial()
    st = urban.solve()
    assert st.energised.all()
    un = np.array([urban.node_voltage_kv(n) for n in urban.node_ids]) * 1e3 / np.sqrt(3)
    vpu = np.abs(st.u[:, 0]) / un
    assert vpu.min() > 0.9 and vpu.max() < 1.05
    # cable sections as in seed 003 Table II (0.11-0.24 km) sit inside the generated range
    lengths = [b.length_m for b in radial_cables]
    assert 80 <= np.median(lengths) <= 300


def test_turin_urban_is_reproducible_from_its_seed(urban: Twin) -> None:
    again = build("turin-urban")
    other = build("turin-urban", seed=7)
    ln = urban.net.line[["from_bus", "to_bus", "length_km"]]
    assert ln.equals(again.net.line[["from_bus", "to_bus", "length_km"]])
    assert not np.allclose(ln["length_km"], other.net.line["length_km"])
    assert (other.net.bus["name"].str.fullmatch(r"S\d{3}")).sum() == 415


def test_turin_2feeder_matches_seed_001(two: Twin) -> None:
    doc = two.topology_document()
    subs = [n for n in doc.nodes if n.kind == "substation"]
    assert len(subs) == 12 and all(n.voltage_kv == 22.0 for n in subs)
    assert {n.id for n in doc.nodes if n.kind == "source" and n.voltage_kv == 220.0} == {
        "HV-A",
        "HV-B",
    }
    for t in two.transformer_data():
        assert (t.u1_v, t.u2_v) in ((220e3, 22e3), (22e3, 400.0))
    cables = [b for b in doc.branches if b.kind == "cable"]
    assert all(b.length_m == pytest.approx(220.0) for b in cables)
    ties = [b for b in doc.branches if b.kind == "tie"]
    assert len(ties) == 1 and ties[0].normally_open
    assert sum(b.kind == "sectionalizer" and b.switchable for b in doc.branches) == 24
    assert {p.device_id for p in doc.placements} >= {"M1", "M2"}
    m1 = next(m for m in two.measurement_points if m.id == "M1")
    m2 = next(m for m in two.measurement_points if m.id == "M2")
    assert two.node_voltage_kv(m1.node_id) == 22.0 and m1.branch_id == "CB-A"
    assert two.node_voltage_kv(m2.node_id) == 0.4
    assert len([ld for ld in two.load_data() if ld.p_w.sum() > 0]) == 12
    TopologyDocument.model_validate(doc.model_dump())


def test_line_data_for_fault_location(two: Twin) -> None:
    ld = {x.id: x for x in two.line_data()}
    sec = ld["L-A2-A3"]
    assert (sec.from_node, sec.to_node) == ("SS-A2-out", "SS-A3-in")
    assert sec.length_m == pytest.approx(220.0)
    assert sec.r1_ohm_per_km == pytest.approx(0.211)
    assert sec.x0_ohm_per_km == pytest.approx(0.34)
    z = sec.z_abc_ohm_per_km
    a = np.exp(2j * np.pi / 3)
    t = np.array([[1, 1, 1], [1, a * a, a], [1, a, a * a]])
    zseq = np.linalg.inv(t) @ z @ t
    assert zseq[0, 0] == pytest.approx(sec.z0_ohm_per_km)
    assert zseq[1, 1] == pytest.approx(sec.z1_ohm_per_km)


def test_cigre_and_simbench_sources(two: Twin) -> None:
    cigre = Twin.from_name("cigre-mv")
    assert cigre.summary()["buses"] == 15
    assert cigre.summary()["feeders"] == 2
    assert {m.branch_id for m in cigre.measurement_points} == {"Line 1-2", "Line 12-13"}
    sb = build("simbench-mv-urban")
    assert len(sb.net.bus) == 144
    assert "ODbL" in sb.extras["licence"]
    assert sb.net.trafo["tap_changer_type"].eq("Ratio").all()  # REFERENCE §1.5 item 1


def test_cli_grids_and_solve() -> None:
    from gridedge.cli import app

    r = CliRunner().invoke(app, ["twin", "solve", "--grid", "turin-2feeder", "--top", "3"])
    assert r.exit_code == 0, r.output
    assert "lowest node voltages" in r.output and "M1" in r.output
    assert "radial: True" in r.output
    r = CliRunner().invoke(app, ["twin", "fault", "--grid", "turin-2feeder", "--branch", "nope"])
    assert r.exit_code == 2 and "branch_id" in r.output


def test_node_voltage_kv_unknown(two: Twin) -> None:
    with pytest.raises(TwinError, match="node_id"):
        two.node_voltage_kv("X")


def test_topology_document_feeds_the_catalog_portion(two: Twin) -> None:
    from gridedge.catalog.portion import TopologyIndex

    idx = TopologyIndex.build(two.topology_document())
    p = idx.portion("SS-A3")
    assert "SS-A6" in p.nodes and "BB-A" in p.nodes and "SS-B1" not in p.nodes
    assert "TIE-AB" in {b.id for b in p.branches}  # the open tie is the portion's boundary


def test_plot_and_bad_trip_delay(tmp_path) -> None:
    from gridedge.twin.plot import plot_grid

    tw = Twin.from_name("cigre-mv")
    out = plot_grid(tw, tmp_path / "cigre.png")
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TwinError, match="trip_delay_s"):
        Twin(build("cigre-mv"), trip_delay_s=-1.0)
