"""``gridedge app …``: build, sign and publish third-party apps (docs/apps.md walks through it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console

from gridedge.node import packages
from gridedge.node.packages import PackageError

app = typer.Typer(help="Build, sign and publish app packages.", no_args_is_help=True)
console = Console()


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


@app.command()
def keygen(
    out: Path = typer.Option(
        ..., "--out", help="private key file to write (PEM); KEY.pub is its public key"
    ),
    force: bool = typer.Option(False, help="overwrite an existing key"),
) -> None:
    """Create an Ed25519 signing key pair."""
    if out.exists() and not force:
        _fail(f"{out} exists (use --force to overwrite)")
    priv, pub = packages.generate_key(out)
    key = packages.load_public_key(pub)
    console.print(
        f"private key {priv} (keep it secret), public key {pub} (id {packages.key_id(key)})"
    )
    console.print("Nodes trust it with: gridedge node run … --trusted-key " + str(pub))


@app.command()
def pack(
    src: Path = typer.Argument(..., help="app folder with manifest.json and the code"),
    out: Path = typer.Option(..., "--out", help="package file to write (.zip)"),
) -> None:
    """Zip an app folder into a package (checks the manifest first)."""
    try:
        m = packages.pack(src, out)
    except PackageError as exc:
        _fail(exc.reason)
    data = out.read_bytes()
    info = packages.inspect_package(data)
    console.print(f"packed {m.name} {m.version} → {out} ({info.size} bytes, sha256 {info.sha256})")


@app.command()
def sign(
    file: Path = typer.Argument(..., help="package file"),
    key: Path = typer.Option(..., "--key", help="Ed25519 private key (from `gridedge app keygen`)"),
    out: Path | None = typer.Option(None, "--out", help="signature file (default FILE.sig)"),
) -> None:
    """Write a detached Ed25519 signature over the manifest, sha256 and size of a package."""
    if not file.is_file():
        _fail(f"{file}: no such package file")
    try:
        sig = packages.sign_file(file, key)
    except PackageError as exc:
        _fail(exc.reason)
    target = out or file.with_name(file.name + ".sig")
    target.write_text(json.dumps(sig, indent=1) + "\n")
    console.print(f"signed {sig['name']} {sig['version']} with key {sig['key_id']} → {target}")


@app.command()
def verify(
    file: Path = typer.Argument(..., help="package file"),
    key: list[Path] = typer.Option(..., "--trusted-key", help="trusted public key(s)"),
    sig: Path | None = typer.Option(None, "--sig", help="signature file (default FILE.sig)"),
) -> None:
    """Check a package the way a node does (signature, hash, manifest)."""
    sig_path = sig or file.with_name(file.name + ".sig")
    try:
        doc = json.loads(sig_path.read_text())
        m = packages.inspect_package(file.read_bytes()).manifest
        packages.verify(
            file.read_bytes(),
            doc.get("signature"),
            [packages.load_public_key(k) for k in key],
            expect_name=m.name,
            expect_version=m.version,
        )
    except (OSError, ValueError) as exc:
        _fail(getattr(exc, "reason", str(exc)))
    console.print(f"[green]ok[/green]: {m.name} {m.version} is signed by a trusted key")


@app.command()
def publish(
    file: Path = typer.Argument(..., help="signed package file (FILE.sig beside it)"),
    catalog: str = typer.Option(
        ..., "--catalog", envvar="GRIDEDGE_CATALOG_URL", help="catalog URL"
    ),
    admin_token: str = typer.Option(..., "--admin-token", envvar="GRIDEDGE_ADMIN_TOKEN"),
    sig: Path | None = typer.Option(None, "--sig", help="signature file (default FILE.sig)"),
) -> None:
    """Register and upload a signed package in the catalog (assign it with a settings PATCH)."""
    from gridedge.catalog.client import CatalogAdmin, CatalogError
    from gridedge.contracts.catalog import AppPackageInfo

    sig_path = sig or file.with_name(file.name + ".sig")
    try:
        doc = json.loads(sig_path.read_text())
        data = file.read_bytes()
        pinfo = packages.inspect_package(data)
    except (OSError, ValueError) as exc:
        _fail(getattr(exc, "reason", str(exc)))
    info = AppPackageInfo(
        name=pinfo.manifest.name,
        version=pinfo.manifest.version,
        sha256=pinfo.sha256,
        size=pinfo.size,
        signature=doc["signature"],
        targets=pinfo.manifest.targets,
        manifest=pinfo.manifest_raw,
    )

    async def go() -> None:
        async with CatalogAdmin(catalog, admin_token) as admin:
            await admin.upload_app_package(info, data)

    try:
        asyncio.run(go())
    except CatalogError as exc:
        _fail(str(exc))
    console.print(f"published {info.name} {info.version} in {catalog}")


@app.command()
def assign(
    device: str = typer.Option(..., "--device", help="device id"),
    name: str = typer.Option(..., "--name", help="app name"),
    version: str = typer.Option(..., "--version", help="app version"),
    params: str = typer.Option("{}", "--params", help="parameters as a JSON object"),
    target: str = typer.Option("edge", "--target", help="edge | fog | cloud"),
    remove: bool = typer.Option(False, "--remove", help="unassign the app instead"),
    catalog: str = typer.Option(
        ..., "--catalog", envvar="GRIDEDGE_CATALOG_URL", help="catalog URL"
    ),
    admin_token: str = typer.Option(..., "--admin-token", envvar="GRIDEDGE_ADMIN_TOKEN"),
) -> None:
    """Assign (or update, or --remove) one app on one device; the node follows at once (push)."""
    from pydantic import ValidationError

    from gridedge.catalog.client import CatalogAdmin, CatalogError
    from gridedge.contracts.catalog import AppAssignment, SettingsUpdate

    try:
        p = json.loads(params)
        if not isinstance(p, dict):
            raise ValueError("must be a JSON object")
        wanted = AppAssignment(name=name, version=version, params=p, target=target)
    except (ValueError, ValidationError) as exc:
        _fail(f"--params/--name/--version: {exc}")

    async def go() -> int:
        async with CatalogAdmin(catalog, admin_token) as admin:
            rec = await admin.get_device(device)
            apps = [
                AppAssignment(name=a.name, version=a.version, params=a.params, target=a.target)
                for a in rec.apps
                if a.name != name
            ]
            if not remove:
                apps.append(wanted)
            s = await admin.patch_settings(device, SettingsUpdate(apps=apps))
            return s.version

    try:
        v = asyncio.run(go())
    except CatalogError as exc:
        _fail(str(exc))
    what = "removed" if remove else f"assigned {name} {version}"
    console.print(f"{device}: {what} (settings version {v})")
