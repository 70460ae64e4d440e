"""Storage on SQLite and PostgreSQL: migrations create the schema, rows round-trip."""

from __future__ import annotations

from sqlalchemy import inspect, text

from gridedge.catalog.store import Store


def test_migrations_create_schema_and_are_idempotent(db_url: str) -> None:
    store = Store(db_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"devices", "topologies", "app_packages", "app_states", "alembic_version"} <= tables
    with store.engine.connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar() == "0001"
    store.close()
    Store(db_url).close()  # a second start must not fail on an existing schema
