"""The SCD of the virtual substation: official 2007B4 XSD (0 errors), semantic check, cross-parse
with an independent SCL reader (open61850), and proof that both validators do catch errors."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from gridedge.contracts.catalog import TopologyBranch, TopologyDocument, TopologyNode
from gridedge.gateways.iec61850 import model as m
from gridedge.gateways.iec61850.scl import (
    NS,
    Endpoint,
    SclOptions,
    build_scd,
    check_semantics,
    validate_xsd,
)

S = {"s": NS}


def _fleet(n: int = 12) -> tuple[list[m.MeterSpec], dict[str, Endpoint], TopologyDocument]:
    topo = TopologyDocument(
        grid="test-grid",
        nodes=[
            TopologyNode(id="SS", kind="source", voltage_kv=22.0),
            TopologyNode(id="LV1", voltage_kv=0.4, feeder="F1"),
            TopologyNode(id="LV2", voltage_kv=0.4, feeder="F2"),
        ],
        branches=[
            TopologyBranch(id="T1", from_node="SS", to_node="LV1", kind="transformer"),
            TopologyBranch(id="L1", from_node="LV1", to_node="LV2", kind="cable"),
        ],
    )
    specs = [
        m.MeterSpec(
            device_id=f"SM-{i:04x}" if i % 3 else f"M{i}",
            phases=3 if i % 2 else 1,
            name=f"meter {i}",
            node_id="LV1" if i % 4 else "LV2",
            grid="test-grid",
            voltage_kv=0.4,
            buffered_reports=i % 2 == 0,
        )
        for i in range(1, n + 1)
    ]
    eps = {s.device_id: Endpoint("127.0.0.1", 10102 + i // 5) for i, s in enumerate(specs)}
    return specs, eps, topo


@pytest.mark.parametrize(
    "ctl", [m.CtlModel.SBO_ENHANCED, m.CtlModel.DIRECT_NORMAL, m.CtlModel.SBO_NORMAL]
)
def test_scd_validates_against_xsd_and_semantics(ctl: m.CtlModel) -> None:
    specs, eps, topo = _fleet()
    scd = build_scd(specs, eps, topo, SclOptions(cswi_ctl_model=ctl))
    assert validate_xsd(scd) == []
    assert check_semantics(scd) == []
    root = etree.fromstring(scd)
    assert (
        root.get("version") == "2007" and root.get("revision") == "B" and root.get("release") == "4"
    )
    assert root.find("s:Header/s:History/s:Hitem", S) is not None
    ieds = root.findall("s:IED", S)
    assert {i.get("name") for i in ieds} == {s.ied for s in specs}
    # Substation/VoltageLevel/Bay from the topology: one bay per grid node hosting meters
    bays = root.findall("s:Substation/s:VoltageLevel/s:Bay", S)
    assert {b.get("name") for b in bays} == {"LV1", "LV2"}
    vl = root.find("s:Substation/s:VoltageLevel", S)
    assert vl.find("s:Voltage", S).text == "0.4"
    # each IED's ConnectedAP says where its MMS server listens
    for s in specs:
        ap = root.find(f".//s:ConnectedAP[@iedName='{s.ied}']", S)
        ports = ap.findall("s:Address/s:P[@type='MMS-Port']", S)
        assert [p.text for p in ports] == [str(eps[s.device_id].port)]
    # MMXU for three-phase, MMXN for single-phase meters
    for s in specs:
        ied = root.find(f"s:IED[@name='{s.ied}']", S)
        classes = {ln.get("lnClass") for ln in ied.iter(f"{{{NS}}}LN")}
        assert classes == {"LPHD", s.meas_ln[:-1], "MMTR", "CSWI", "XSWI"}
        rcs = ied.findall(".//s:ReportControl", S)
        want = {("urcbMeas", "false")} | ({("brcbMeas", "true")} if s.buffered_reports else set())
        assert {(r.get("name"), r.get("buffered")) for r in rcs} == want
    ctl_val = root.find(
        "s:DataTypeTemplates/s:DOType[@id='GE_DPC_CSWI']/s:DA[@name='ctlModel']/s:Val", S
    )
    assert ctl_val.text == ctl.value


def test_every_mandatory_do_is_in_the_templates() -> None:
    specs, eps, topo = _fleet(4)
    root = etree.fromstring(build_scd(specs, eps, topo))
    for lt in root.findall("s:DataTypeTemplates/s:LNodeType", S):
        names = {d.get("name") for d in lt.findall("s:DO", S)}
        assert set(m.MANDATORY_DOS[lt.get("lnClass")]) <= names, lt.get("id")


def test_the_validators_catch_what_they_should() -> None:
    specs, eps, topo = _fleet(4)
    good = etree.fromstring(build_scd(specs, eps, topo))

    # XSD: a bad LN instance pattern and an unknown bType
    bad = copy.deepcopy(good)
    bad.find(".//s:LN[@lnClass='MMTR']", S).set("inst", "x1")
    bad.find(".//s:DOType/s:DA", S).set("bType", "FLOAT99")
    errors = validate_xsd(etree.tostring(bad))
    assert len(errors) >= 2 and all(e.line > 0 for e in errors)

    # semantics the XSD cannot see: missing mandatory DO, dangling FCDA, unused template
    bad = copy.deepcopy(good)
    xswi = bad.find("s:DataTypeTemplates/s:LNodeType[@lnClass='XSWI']", S)
    xswi.remove(xswi.find("s:DO[@name='SwTyp']", S))
    bad.find(".//s:FCDA", S).set("doName", "NoSuchDO")
    etree.SubElement(bad.find("s:DataTypeTemplates", S), f"{{{NS}}}EnumType", id="Orphan")
    issues = " | ".join(str(i) for i in check_semantics(etree.tostring(bad)))
    assert "lacks mandatory DO SwTyp" in issues
    assert "NoSuchDO" in issues
    assert "unused data template EnumType id=Orphan" in issues


def test_independent_scl_reader_parses_every_ied(tmp_path) -> None:
    """open61850 (not the library the server is built on) builds a server model from each IED."""
    from open61850.server import IedModel

    specs, eps, topo = _fleet(6)
    path = tmp_path / "gw.scd"
    path.write_bytes(build_scd(specs, eps, topo))
    for s in specs:
        model = IedModel.from_scl(path, ied_name=s.ied)
        assert list(model.logical_devices) == [s.domain]


def test_scd_size_per_meter_is_reported_honestly() -> None:
    specs, eps, topo = _fleet(50)
    size = len(build_scd(specs, eps, topo)) / 50
    # richer than the thesis' IEDs (data set, 2 RCBs, Communication, Substation) yet same order
    assert 1500 < size < 5000
