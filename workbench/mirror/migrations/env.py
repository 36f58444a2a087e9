"""Alembic environment for the mirror state database (``$WORKBENCH_DATA_DIR/mirror/state.db``).

``workbench.mirror.state.MirrorState`` runs these migrations through
``workbench.catalog.db.migrate``, which passes its connection in
``config.attributes``. There is no autogenerate: the state is plain SQLite
tables, written by hand in ``versions/``.
"""

from __future__ import annotations

from alembic import context


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit("the mirror state migrations run from workbench.mirror.state only")
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
