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
