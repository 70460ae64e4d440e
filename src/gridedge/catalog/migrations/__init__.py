"""Alembic migrations of the catalog store, shipped inside the package and run at start-up."""
