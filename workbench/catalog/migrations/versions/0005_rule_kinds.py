"""Rule kinds (issue 14): ``alert_rules.kind`` and its fields, ``alert_incidents`` kind/value/baseline.

Existing rows become ``threshold`` rules and incidents (the server default), unchanged.

Revision ID: 0005_rule_kinds
Revises: 0004_channel_template
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_rule_kinds"
down_revision: str | None = "0004_channel_template"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rule_columns() -> list[sa.Column]:
    return [
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="threshold"),
        sa.Column("min_events", sa.Integer(), nullable=True),
        sa.Column("match", sa.String(length=500), nullable=True),
        sa.Column("baseline_days", sa.Integer(), nullable=True),
        sa.Column("sensitivity", sa.Float(), nullable=True),
    ]


def _incident_columns() -> list[sa.Column]:
    return [
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="threshold"),
        sa.Column("observed_value", sa.Float(), nullable=True),
        sa.Column("baseline_value", sa.Float(), nullable=True),
    ]


def _add(table: str, columns: list[sa.Column]) -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for column in columns:
        if column.name not in present:
            op.add_column(table, column)


def upgrade() -> None:
    """Apply this revision."""
    _add("alert_rules", _rule_columns())
    _add("alert_incidents", _incident_columns())


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("alert_incidents") as batch:
        for column in _incident_columns():
            batch.drop_column(column.name)
    with op.batch_alter_table("alert_rules") as batch:
        for column in _rule_columns():
            batch.drop_column(column.name)
