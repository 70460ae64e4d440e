"""The Device Catalog ("DeC" of seeds 001 §III-A and 003 §II): registry, self-configuration,
auto-update, liveness, topology store and pushes on the management plane.

Modules: ``api`` (FastAPI routes and the check-in fast path), ``service`` (behaviour, in memory
with write-through), ``entry`` (a device and its row), ``store``/``models``/``migrations``
(SQLAlchemy + alembic), ``portion`` (grid portions), ``pushes`` (management-broker publisher),
``security`` (tokens), ``server``/``cli`` (running it), ``client`` (httpx clients for devices and
operators), ``testing`` (a real catalog for tests), ``protocol_doc`` (docs/protocol.md).
"""
