"""Flap control and re-notify (issue 15): rule ``pending_minutes``, ``repeat_minutes``,
``recovery_threshold`` and the pending state ``pending_since``; incident ``last_notified_at``.

Every new column is nullable: existing rules behave as before (no pending period, no
repeat, recovery at the threshold); existing incidents count repeats from ``triggered_at``.

Revision ID: 0006_flap_control
Revises: 0005_rule_kinds
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_flap_control"
down_revision: str | None = "0005_rule_kinds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rule_columns() -> list[sa.Column]:
    return [
        sa.Column("pending_minutes", sa.Integer(), nullable=True),
        sa.Column("repeat_minutes", sa.Integer(), nullable=True),
        sa.Column("recovery_threshold", sa.Float(), nullable=True),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
    ]


def _incident_columns() -> list[sa.Column]:
    return [sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True)]


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
