"""Initial mirror state schema: the cursor (``files``), ``failures`` and ``meta``.

The same tables the state created before it had migrations (``CREATE TABLE IF
NOT EXISTS``); such a file is stamped at this revision when first opened.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    """CREATE TABLE files (
    path TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    rows INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    mirrored_at REAL NOT NULL,
    covers TEXT
)""",
    "CREATE INDEX files_day ON files(day)",
    """CREATE TABLE failures (
    event_id TEXT PRIMARY KEY,
    index_name TEXT NOT NULL,
    file TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    attempts INTEGER NOT NULL
)""",
    """CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT
)""",
)


def upgrade() -> None:
    """Apply this revision."""
    for statement in _TABLES:
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    for table in ("meta", "failures", "files"):
        op.drop_table(table)
