"""initial catalog schema: devices, topologies, app packages, app states

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("hardware", sa.String(256)),
        sa.Column("firmware", sa.String(256)),
        sa.Column("location", sa.JSON, nullable=False),
        sa.Column("capabilities", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("endpoints", sa.JSON, nullable=False),
        sa.Column("apps", sa.JSON, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("update_period_s", sa.Double, nullable=False),
        sa.Column("liveness_timeout_s", sa.Double),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_since", sa.Double),
        sa.Column("last_seen", sa.Double),
        sa.Column("provisioned_at", sa.Double),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("settings_version", sa.Integer, nullable=False),
        sa.Column("settings_etag", sa.String(64), nullable=False),
        sa.Column("settings_issued_at", sa.Double, nullable=False),
        sa.Column("portion", sa.JSON),
    )
    op.create_index("ix_devices_kind", "devices", ["kind"])
    op.create_index("ix_devices_status", "devices", ["status"])
    op.create_table(
        "topologies",
        sa.Column("grid", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("stored_at", sa.Double, nullable=False),
    )
    op.create_table(
        "app_packages",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("info", sa.JSON, nullable=False),
        sa.Column("data", sa.LargeBinary),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "app_states",
        sa.Column("device_id", sa.String(128), primary_key=True),
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("app_states")
    op.drop_table("app_packages")
    op.drop_table("topologies")
    op.drop_index("ix_devices_status", "devices")
    op.drop_index("ix_devices_kind", "devices")
    op.drop_table("devices")
