"""Bad input to the node and app commands: a clear message naming the problem, exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gridedge.node import app_cli, cli


class Out:
    def __init__(self, result) -> None:  # type: ignore[no-untyped-def]
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # Rich wraps long lines


def run(app, args: list[str]) -> Out:  # type: ignore[no-untyped-def]
    return Out(CliRunner(env={"COLUMNS": "200"}).invoke(app, args))


def test_node_run_refuses_bad_id_and_backend(tmp_path: Path) -> None:
    r = run(cli.app, ["run", "--id", "bad id/with slash", "--catalog", "http://127.0.0.1:9"])
    assert r.exit_code == 2 and "not a valid device id" in r.output
    r = run(cli.app, ["run", "--id", "M1", "--catalog", "http://127.0.0.1:9", "--daq", "quantum"])
    assert r.exit_code == 2 and "quantum" in r.output
    r = run(
        cli.app, ["run", "--id", "M1", "--catalog", "http://127.0.0.1:9", "--daq-opt", "novalue"]
    )
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
    r = run(cli.app, ["run", "--id", "M1", "--trusted-key", str(tmp_path / "missing.pub")])
    assert r.exit_code == 2 and "trusted-key" in r.output


def test_node_run_without_secret_or_token_says_so(tmp_path: Path, catalog_server) -> None:  # type: ignore[no-untyped-def]
    r = run(
        cli.app,
        [
            "run",
            "--id",
            "NOSECRET",
            "--catalog",
            catalog_server.url,
            "--state-dir",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 2 and "no provisioning secret" in r.output


def test_app_commands_refuse_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run(app_cli.app, ["pack", str(tmp_path / "empty"), "--out", str(tmp_path / "x.zip")])
    assert r.exit_code == 2 and "manifest.json" in r.output
    r = run(app_cli.app, ["sign", str(tmp_path / "nothing.zip"), "--key", str(tmp_path / "k.pem")])
    assert r.exit_code == 2 and "no such package file" in r.output
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    r = run(app_cli.app, ["keygen", "--out", str(tmp_path / "k.pem")])
    assert r.exit_code == 0
    r = run(app_cli.app, ["sign", str(tmp_path / "junk.zip"), "--key", str(tmp_path / "k.pem")])
    assert r.exit_code == 2 and "not a valid zip" in r.output
    r = run(app_cli.app, ["sign", str(tmp_path / "junk.zip"), "--key", str(tmp_path / "k.pem.pub")])
    assert r.exit_code == 2 and "private key" in r.output
    r = run(
        app_cli.app,
        [
            "assign",
            "--device",
            "M1",
            "--name",
            "x",
            "--version",
            "1.0.0",
            "--params",
            "[1]",
            "--catalog",
            "http://127.0.0.1:9",
            "--admin-token",
            "t",
        ],
    )
    assert r.exit_code == 2 and "--params" in r.output
