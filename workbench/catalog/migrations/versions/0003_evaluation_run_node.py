"""Evaluation runs name their node: ``evaluation_runs.node`` (issue 13, HA scheduling).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("evaluation_runs")}
    if "node" in columns:
        return
    op.add_column("evaluation_runs", sa.Column("node", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("evaluation_runs") as batch:
        batch.drop_column("node")
