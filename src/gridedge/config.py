"""Settings read from the environment, shared by the CLI of every role.

Everything has an embedded default so one laptop needs no configuration; a deployment sets URLs.

| variable | meaning | default |
|---|---|---|
| GRIDEDGE_DATA_DIR | folder for SQLite files, records, generated keys | ./data |
| GRIDEDGE_DATA_BROKER | data-plane broker URL (mqtt:// or mqtts://) | spawn Mosquitto |
| GRIDEDGE_MGMT_BROKER | management-plane broker URL | spawn Mosquitto |
| GRIDEDGE_BROKER_CA | CA file for mqtts:// brokers | system CAs |
| GRIDEDGE_CATALOG_URL | where nodes find the catalog | http://127.0.0.1:8000 |
| GRIDEDGE_CATALOG_DB | SQLAlchemy URL of the catalog store | sqlite:///$DATA_DIR/catalog.db |
| GRIDEDGE_ADMIN_TOKEN | operator token; generated and saved in DATA_DIR when unset | — |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass
class Config:
    data_dir: Path = field(default_factory=lambda: Path(_env("GRIDEDGE_DATA_DIR") or "data"))
    data_broker: str | None = field(default_factory=lambda: _env("GRIDEDGE_DATA_BROKER"))
    mgmt_broker: str | None = field(default_factory=lambda: _env("GRIDEDGE_MGMT_BROKER"))
    broker_ca: str | None = field(default_factory=lambda: _env("GRIDEDGE_BROKER_CA"))
    catalog_url: str = field(
        default_factory=lambda: _env("GRIDEDGE_CATALOG_URL") or "http://127.0.0.1:8000"
    )
    catalog_db: str | None = field(default_factory=lambda: _env("GRIDEDGE_CATALOG_DB"))
    admin_token: str | None = field(default_factory=lambda: _env("GRIDEDGE_ADMIN_TOKEN"))

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def catalog_db_url(self) -> str:
        return self.catalog_db or f"sqlite:///{self.ensure_data_dir() / 'catalog.db'}"

    def admin_token_value(self) -> str:
        """The operator token: from the environment, else generated once and kept (mode 600)."""
        if self.admin_token:
            return self.admin_token
        path = self.ensure_data_dir() / "admin-token"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
        self.admin_token = path.read_text().strip()
        return self.admin_token
