"""What a node keeps on disk so that a reboot without the catalog still runs: its token, its
last known settings (with their ETag), verified package files, the anti-rollback ledger and the
outbox. Writes go to a temporary file first and are renamed, so a power cut leaves the previous
version intact rather than half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import ValidationError

from gridedge.contracts.catalog import DeviceSettings


def _atomic_write(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    tmp.replace(path)


class NodeState:
    def __init__(self, root: Path, durable: bool = True) -> None:
        # durable=False skips fsync: simulated fleets write 10,000 settings files at boot
        self.durable = durable
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    # -- token --------------------------------------------------------------------------------
    @property
    def token_path(self) -> Path:
        return self.root / "token"

    def load_token(self) -> str | None:
        try:
            return self.token_path.read_text().strip() or None
        except OSError:
            return None

    def save_token(self, token: str) -> None:
        _atomic_write(self.token_path, token.encode(), durable=self.durable)

    def forget_token(self) -> None:
        self.token_path.unlink(missing_ok=True)

    # -- settings -----------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    def load_settings(self) -> tuple[DeviceSettings | None, str | None]:
        """Last known settings and their HTTP ETag; (None, None) if absent or unreadable."""
        try:
            doc = json.loads(self.settings_path.read_text())
            return DeviceSettings.model_validate(doc["settings"]), doc.get("http_etag")
        except (OSError, ValueError, KeyError, ValidationError):
            return None, None

    def save_settings(self, settings: DeviceSettings, http_etag: str | None) -> None:
        doc = {"settings": settings.model_dump(mode="json"), "http_etag": http_etag}
        _atomic_write(self.settings_path, json.dumps(doc).encode(), durable=self.durable)

    # -- package cache ------------------------------------------------------------------------
    def package_path(self, name: str, version: str) -> Path:
        return self.root / "packages" / f"{name}-{version}.zip"

    def cached_package(self, name: str, version: str, sha256: str | None) -> bytes | None:
        """The cached zip if its hash matches the catalog's (the signature is checked again)."""
        path = self.package_path(name, version)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            return None
        return data

    def cache_package(self, name: str, version: str, data: bytes) -> None:
        _atomic_write(self.package_path(name, version), data, 0o644)

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"
