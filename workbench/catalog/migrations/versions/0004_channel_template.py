"""Channels carry an optional text template: ``notification_channels.template`` (issue 15).

Revision ID: 0004_channel_template
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_channel_template"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("notification_channels")}
    if "template" in columns:
        return
    op.add_column("notification_channels", sa.Column("template", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("template")
