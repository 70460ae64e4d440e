"""Packages: manifest checks, Ed25519 signatures, tampering, anti-rollback, side-by-side loading."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from gridedge.node import packages
from gridedge.node.packages import PackageError
from tests.node.helpers import build_signed, make_app_dir


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return packages.generate_key(tmp_path / "keys" / "signer.pem")[0]


def trusted(key: Path) -> list:
    return [packages.load_public_key(key.with_name(key.name + ".pub"))]


def test_signed_package_verifies(tmp_path: Path, key: Path) -> None:
    data, sig = build_signed(tmp_path, key, "demo", "1.0.0")
    info = packages.verify(data, sig, trusted(key), expect_name="demo", expect_version="1.0.0")
    assert info.manifest.entry_point == "vapp:factory"
    assert len(info.sha256) == 64 and info.size == len(data)


def test_pack_is_reproducible(tmp_path: Path) -> None:
    src = make_app_dir(tmp_path, "demo", "1.0.0")
    packages.pack(src, tmp_path / "a.zip")
    packages.pack(src, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_tampered_code_is_refused(tmp_path: Path, key: Path) -> None:
    data, sig = build_signed(tmp_path, key, "demo", "1.0.0")
    # rewrite the code inside the zip, keep the manifest: the sha256 in the signed doc no longer matches
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename.endswith("__init__.py"):
                body += b"\nimport os  # evil\n"
            dst.writestr(item, body)
    with pytest.raises(PackageError, match="bad signature"):
        packages.verify(
            buf.getvalue(), sig, trusted(key), expect_name="demo", expect_version="1.0.0"
        )


def test_wrong_key_and_unsigned_are_refused(tmp_path: Path, key: Path) -> None:
    other = packages.generate_key(tmp_path / "other.pem")[0]
    data, sig = build_signed(tmp_path, other, "demo", "1.0.0")
    with pytest.raises(PackageError, match="bad signature"):
        packages.verify(data, sig, trusted(key), expect_name="demo", expect_version="1.0.0")
    with pytest.raises(PackageError, match="unsigned"):
        packages.verify(data, None, trusted(key), expect_name="demo", expect_version="1.0.0")
    with pytest.raises(PackageError, match="trusts no signing key"):
        packages.verify(data, sig, [], expect_name="demo", expect_version="1.0.0")


def test_signature_of_another_version_is_refused(tmp_path: Path, key: Path) -> None:
    d1, s1 = build_signed(tmp_path, key, "demo", "1.0.0")
    d2, _ = build_signed(tmp_path, key, "demo", "2.0.0")
    with pytest.raises(PackageError, match="bad signature"):
        packages.verify(d2, s1, trusted(key), expect_name="demo", expect_version="2.0.0")
    # a genuine 1.0.0 offered where 2.0.0 is assigned
    with pytest.raises(PackageError, match=r"assignment asks for demo 2\.0\.0"):
        packages.verify(d1, s1, trusted(key), expect_name="demo", expect_version="2.0.0")


def test_rollback_floor(tmp_path: Path, key: Path) -> None:
    d1, s1 = build_signed(tmp_path, key, "demo", "1.0.0")
    with pytest.raises(PackageError, match="rollback refused"):
        packages.verify(
            d1,
            s1,
            trusted(key),
            expect_name="demo",
            expect_version="1.0.0",
            floor=packages.rollback_floor("1.2.0", None),
        )
    # the installed 1.2.0 declares 1.0.0 a safe rollback target
    packages.verify(
        d1,
        s1,
        trusted(key),
        expect_name="demo",
        expect_version="1.0.0",
        floor=packages.rollback_floor("1.2.0", "1.0.0"),
    )
    d3, s3 = build_signed(tmp_path, key, "demo", "1.1.0", min_version="1.5.0")
    with pytest.raises(PackageError, match="below its own min_version"):
        packages.verify(d3, s3, trusted(key), expect_name="demo", expect_version="1.1.0")


def test_manifest_errors_name_the_field(tmp_path: Path) -> None:
    src = make_app_dir(tmp_path, "demo", "1.0.0")
    m = json.loads((src / "manifest.json").read_text())
    m["entry_point"] = "no colon here"
    (src / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PackageError, match="entry_point"):
        packages.pack(src, tmp_path / "x.zip")
    m["entry_point"] = "missing:factory"
    (src / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PackageError, match="module 'missing'"):
        packages.pack(src, tmp_path / "x.zip")
    m["entry_point"] = "vapp:factory"
    m["targets"] = ["moon"]
    (src / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PackageError, match="targets"):
        packages.pack(src, tmp_path / "x.zip")


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "manifest.json", json.dumps({"name": "x", "version": "1.0.0", "entry_point": "a:f"})
        )
        zf.writestr("../../etc/evil.py", "x")
    with pytest.raises(PackageError, match="escapes"):
        packages.inspect_package(buf.getvalue())


def test_params_validated_against_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"interval_s": {"type": "number", "exclusiveMinimum": 0}},
        "additionalProperties": False,
    }
    packages.validate_params(schema, {"interval_s": 1.0}, "demo")
    with pytest.raises(PackageError, match="parameter 'interval_s'"):
        packages.validate_params(schema, {"interval_s": -1}, "demo")
    with pytest.raises(PackageError, match="speed"):
        packages.validate_params(schema, {"speed": 3}, "demo")


def test_two_versions_load_side_by_side(tmp_path: Path, key: Path) -> None:
    loaded = []
    for v in ("1.0.0", "1.1.0"):
        data, _ = build_signed(tmp_path, key, "sidebyside", v)
        info = packages.inspect_package(data)
        root = packages.extract(data, tmp_path / "inst" / v)
        loaded.append(packages.load_factory(root, info.manifest))
    a, b = loaded[0](), loaded[1]()
    assert type(a).__module__ != type(b).__module__
    assert __import__("sys").modules[type(a).__module__].VERSION == "1.0.0"
    assert __import__("sys").modules[type(b).__module__].VERSION == "1.1.0"
    packages.unload("sidebyside", "1.0.0")
    packages.unload("sidebyside", "1.1.0")
