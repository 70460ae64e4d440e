"""``gridedge iec61850 scl`` and ``validate`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gridedge.cli import app
from gridedge.gateways.iec61850.scl import check_semantics, validate_xsd

runner = CliRunner()


def test_scl_command_writes_a_valid_scd_from_the_twin(tmp_path: Path) -> None:
    out = tmp_path / "twin.scd"
    result = runner.invoke(
        app,
        ["iec61850", "scl", "--out", str(out), "--twin", "turin-2feeder", "--base-port", "20100"],
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert validate_xsd(data) == [] and check_semantics(data) == []
    assert b'<P type="MMS-Port">20100</P>' in data
    assert "0 errors" in result.output


def test_validate_command_reports_problems(tmp_path: Path) -> None:
    good = tmp_path / "good.scd"
    assert runner.invoke(app, ["iec61850", "scl", "--out", str(good)]).exit_code == 0
    assert runner.invoke(app, ["iec61850", "validate", str(good)]).exit_code == 0
    bad = tmp_path / "bad.scd"
    bad.write_bytes(
        good.read_bytes().replace(b'lnClass="MMTR" inst="1"', b'lnClass="MMTR" inst="x"')
    )
    result = runner.invoke(app, ["iec61850", "validate", str(bad)])
    assert result.exit_code == 1 and "schema error" in " ".join(result.output.split())
    junk = tmp_path / "junk.scd"
    junk.write_text("not xml")
    result = runner.invoke(app, ["iec61850", "validate", str(junk)])
    assert result.exit_code == 2 and "not a readable SCL file" in " ".join(result.output.split())


def test_scl_command_from_a_running_catalog(catalog_server, tmp_path: Path) -> None:
    """Meters and topology come from the catalog (its admin REST API)."""
    import httpx

    from gridedge.contracts.catalog import TopologyDocument, TopologyNode

    h = {"Authorization": f"Bearer {catalog_server.admin_token}"}
    topo = TopologyDocument(
        grid="g1",
        nodes=[
            TopologyNode(id="S", kind="source", voltage_kv=11),
            TopologyNode(id="B1", voltage_kv=0.4),
        ],
        branches=[],
    )
    with httpx.Client(base_url=catalog_server.url, headers=h) as c:
        assert (
            c.put(
                "/v1/topology/g1",
                content=topo.to_json(),
                headers={"Content-Type": "application/json"},
            ).status_code
            < 300
        )
        for dev, phases in (("MA", 3), ("MB", 1)):
            r = c.post(
                "/v1/devices",
                json={
                    "id": dev,
                    "kind": "meter",
                    "capabilities": {"phases": phases},
                    "location": {"grid": "g1", "node_id": "B1"},
                },
            )
            assert r.status_code < 300, r.text
    out = tmp_path / "cat.scd"
    result = runner.invoke(
        app,
        [
            "iec61850",
            "scl",
            "--out",
            str(out),
            "--catalog",
            catalog_server.url,
            "--admin-token",
            catalog_server.admin_token,
        ],
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert validate_xsd(data) == [] and check_semantics(data) == []
    assert b'<IED name="MA"' in data and b'<IED name="MB"' in data
    assert b'<Bay name="B1"' in data and b"<Voltage" in data and b'<Substation name="g1"' in data
    assert b'lnClass="MMXN"' in data and b'lnClass="MMXU"' in data
