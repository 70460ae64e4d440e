"""``gridedge bench dashboard``: the same benchmark as ``gridedge dashboard bench`` (time from the
demo command to a ready dashboard, API latency, historian ingest), listed with the others."""

from gridedge.dashboard.cli import bench as run

__all__ = ["run"]
