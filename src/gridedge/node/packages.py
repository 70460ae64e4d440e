"""App packages: build, sign, verify, load.

A package is a zip file holding ``manifest.json`` and the app's code. Its authenticity rests on a
*detached* Ed25519 signature over a canonical JSON document ``{manifest, sha256, size}`` of the
whole zip (REFERENCE.md §4 "Signed manifests"): a checksum alone (ThingsBoard) proves integrity
but not origin, and a signature inside the zip could not cover the zip itself. The node rebuilds
the signed document from the bytes it downloaded, so a changed byte anywhere, a swapped manifest
or a signature by an untrusted key all fail the same check.

Anti-rollback: a package older than the installed one's floor is refused. The floor is the
installed manifest's ``min_version`` (the oldest version its author declares safe to go back
to) or, without one, the installed version itself.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST_NAME = "manifest.json"
MAX_PACKAGE_BYTES = 32 * 1024 * 1024
_ENTRY_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


class PackageError(ValueError):
    """A package is malformed or refused; ``state`` is the AppUpdateState to report."""

    def __init__(self, reason: str, state: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state


class Manifest(BaseModel):
    """What the package says about itself (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([\-+][0-9A-Za-z.\-]+)?$")
    entry_point: str = Field(description="module:factory, module relative to the package root")
    targets: list[str] = Field(default_factory=lambda: ["edge"])
    params_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the params"
    )
    min_version: str | None = Field(
        default=None, description="oldest version this one may be rolled back to"
    )
    description: str = ""
    watchdog_s: float = Field(default=30.0, gt=0, le=3600)
    blocking: bool = Field(
        default=False, description="run in its own thread: the app calls blocking code"
    )

    @field_validator("entry_point")
    @classmethod
    def _entry(cls, value: str) -> str:
        if not _ENTRY_RE.match(value):
            raise ValueError("must look like 'module:factory' (e.g. 'myapp:factory')")
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if t not in ("edge", "fog", "cloud")]
        if bad or not value:
            raise ValueError(
                f"targets must be a non-empty subset of edge, fog, cloud (got {value})"
            )
        return value

    @field_validator("params_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return value

    @field_validator("min_version")
    @classmethod
    def _min(cls, value: str | None) -> str | None:
        if value is not None:
            parse_version(value)
        return value


def parse_version(value: str) -> Version:
    try:
        return Version(value)
    except InvalidVersion as exc:
        raise PackageError(f"version {value!r} is not a valid version") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "manifest"
    return f"manifest field '{where}': {err['msg']}"


def read_manifest_file(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise PackageError(f"{path}: {_first_error(exc)}", "failed") from exc


# ---------------------------------------------------------------------------------------------
# pack / sign
# ---------------------------------------------------------------------------------------------


def pack(src: Path, out: Path) -> Manifest:
    """Zip ``src`` (which holds manifest.json and the code) reproducibly into ``out``."""
    src = Path(src)
    manifest_path = src / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PackageError(f"{src}: no {MANIFEST_NAME} in the app folder", "failed")
    manifest = read_manifest_file(manifest_path)
    module = manifest.entry_point.split(":")[0].split(".")[0]
    if not ((src / f"{module}.py").is_file() or (src / module / "__init__.py").is_file()):
        raise PackageError(
            f"manifest field 'entry_point': module {module!r} is neither {module}.py nor "
            f"{module}/__init__.py in {src}",
            "failed",
        )
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".sig"))
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            info = zipfile.ZipInfo(p.relative_to(src).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, p.read_bytes())
    return manifest


def generate_key(out: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 private key (PEM, mode 600) and its public key beside it (``.pub``)."""
    key = Ed25519PrivateKey.generate()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out.chmod(0o600)
    pub = out.with_name(out.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return out, pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise PackageError(f"{path}: not a readable PEM private key ({exc})", "failed") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise PackageError(f"{path}: not an Ed25519 private key", "failed")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (ValueError, TypeError, OSError) as exc:
        raise PackageError(f"{path}: not a readable PEM public key ({exc})", "failed") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise PackageError(f"{path}: not an Ed25519 public key", "failed")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_document(manifest: dict[str, Any], sha256: str, size: int) -> bytes:
    """The exact bytes that are signed: canonical JSON (sorted keys, no spaces)."""
    doc = {"manifest": manifest, "sha256": sha256, "size": size}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class PackageInfo:
    manifest: Manifest
    manifest_raw: dict[str, Any]
    sha256: str
    size: int


def inspect_package(data: bytes) -> PackageInfo:
    """Read the manifest out of package bytes; refuses anything that is not a sane package."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError(f"package is {len(data)} bytes, above the {MAX_PACKAGE_BYTES} limit")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise PackageError(f"package member {name!r} escapes the package folder")
            raw = json.loads(zf.read(MANIFEST_NAME))
    except KeyError as exc:
        raise PackageError(f"package has no {MANIFEST_NAME}") from exc
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"package is not a valid zip with a JSON manifest: {exc}") from exc
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise PackageError(_first_error(exc)) from exc
    return PackageInfo(manifest, raw, hashlib.sha256(data).hexdigest(), len(data))


def sign_bytes(data: bytes, key: Ed25519PrivateKey) -> str:
    """Base64 Ed25519 signature of a package's signed document."""
    info = inspect_package(data)
    return base64.b64encode(
        key.sign(signed_document(info.manifest_raw, info.sha256, info.size))
    ).decode()


def sign_file(path: Path, key_path: Path) -> dict[str, Any]:
    """Sign a package file; returns (and the CLI writes as ``<file>.sig``) the detached signature."""
    data = Path(path).read_bytes()
    key = load_private_key(key_path)
    info = inspect_package(data)
    return {
        "name": info.manifest.name,
        "version": info.manifest.version,
        "sha256": info.sha256,
        "size": info.size,
        "key_id": key_id(key.public_key()),
        "signature": sign_bytes(data, key),
    }


# ---------------------------------------------------------------------------------------------
# verify (on the node)
# ---------------------------------------------------------------------------------------------


def verify(
    data: bytes,
    signature_b64: str | None,
    trusted: list[Ed25519PublicKey],
    *,
    expect_name: str,
    expect_version: str,
    expect_sha256: str | None = None,
    floor: str | None = None,
) -> PackageInfo:
    """Every check a node makes before a package may run; raises PackageError with the reason."""
    if not signature_b64:
        raise PackageError("package is unsigned")
    if not trusted:
        raise PackageError("node trusts no signing key (configure --trusted-key)")
    info = inspect_package(data)
    if expect_sha256 and info.sha256 != expect_sha256:
        raise PackageError(
            f"sha256 mismatch: catalog says {expect_sha256[:12]}…, package is {info.sha256[:12]}…"
        )
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except ValueError as exc:
        raise PackageError("signature is not base64") from exc
    doc = signed_document(info.manifest_raw, info.sha256, info.size)
    for key in trusted:
        try:
            key.verify(sig, doc)
            break
        except InvalidSignature:
            continue
    else:
        raise PackageError("bad signature: not signed by a trusted key, or tampered")
    m = info.manifest
    if m.name != expect_name or m.version != expect_version:
        raise PackageError(
            f"package is {m.name} {m.version}, the assignment asks for {expect_name} {expect_version}"
        )
    if m.min_version and parse_version(m.version) < parse_version(m.min_version):
        raise PackageError(f"version {m.version} is below its own min_version {m.min_version}")
    if floor and parse_version(m.version) < parse_version(floor):
        raise PackageError(f"rollback refused: version {m.version} is older than allowed {floor}")
    return info


def rollback_floor(installed_version: str, installed_min_version: str | None) -> str:
    return installed_min_version or installed_version


def validate_params(schema: dict[str, Any], params: dict[str, Any], app: str) -> None:
    """Raises PackageError('failed') naming the offending parameter."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(params)"
        raise PackageError(f"app {app}: parameter '{where}': {err.message}", "failed")


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------


def extract(data: bytes, dest: Path) -> Path:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
    return dest


def module_name_for(name: str, version: str) -> str:
    """Unique per (app, version) so two versions can be imported side by side during a swap."""
    return "gridedge_app_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{name}__{version}")


def load_factory(root: Path, manifest: Manifest) -> Any:
    """Import the package's entry module under a unique name and return its factory."""
    module_path, _, attr = manifest.entry_point.partition(":")
    top, *rest = module_path.split(".")
    unique = module_name_for(manifest.name, manifest.version)
    if unique in sys.modules:
        mod = sys.modules[unique]
    else:
        pkg_dir = root / top
        if (pkg_dir / "__init__.py").is_file():
            spec = importlib.util.spec_from_file_location(
                unique, pkg_dir / "__init__.py", submodule_search_locations=[str(pkg_dir)]
            )
        elif (root / f"{top}.py").is_file():
            spec = importlib.util.spec_from_file_location(unique, root / f"{top}.py")
        else:
            raise PackageError(f"entry module {top!r} not found in the package", "failed")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[unique] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:
            sys.modules.pop(unique, None)
            raise PackageError(
                f"importing {manifest.entry_point} failed: {type(exc).__name__}: {exc}", "failed"
            ) from exc
    for part in rest:
        mod = importlib.import_module(f"{mod.__name__}.{part}")
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise PackageError(
            f"entry point {manifest.entry_point}: {attr!r} is not callable", "failed"
        )
    return factory


def unload(name: str, version: str) -> None:
    unique = module_name_for(name, version)
    for mod in [m for m in sys.modules if m == unique or m.startswith(unique + ".")]:
        sys.modules.pop(mod, None)
