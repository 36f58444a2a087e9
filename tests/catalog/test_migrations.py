"""Migrations: init_db builds the schema, is idempotent, keeps data, upgrades, matches the models."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from tests.catalog.conftest import NOW
from workbench.catalog import models
from workbench.catalog.db import (
    alembic_config,
    get_engine,
    init_db,
    session_scope,
)
from workbench.catalog.models import AlertRule

ALL_TABLES = {t.name for t in SQLModel.metadata.sorted_tables}
HEAD_REVISION = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
def engine(catalog_url: str) -> sa.Engine:
    """A freshly migrated catalog of its own (these tests downgrade and extend the schema)."""
    eng = get_engine(catalog_url)
    init_db(eng)
    return eng


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _add_rule(engine: sa.Engine, service: str = "auth-service") -> uuid.UUID:
    with session_scope(engine) as s:
        rule = AlertRule(
            service=service, threshold=5, window_minutes=10, created_at=NOW, updated_at=NOW
        )
        s.add(rule)
        s.flush()
        return rule.id


def test_init_db_creates_every_table_at_head(engine: sa.Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())
    assert tables >= ALL_TABLES
    assert "alembic_version" in tables
    assert _revision(engine) == HEAD_REVISION


def test_partial_unique_index_is_created(engine: sa.Engine) -> None:
    indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("alert_incidents")}
    assert indexes["uq_incident_active_fingerprint"]["unique"]


def test_models_and_migrations_do_not_drift(engine: sa.Engine) -> None:
    """What `alembic check` does: autogenerate against the migrated DB finds nothing to do."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, SQLModel.metadata) == []


def test_second_init_db_is_a_noop_and_keeps_data(engine: sa.Engine) -> None:
    rule_id = _add_rule(engine)
    init_db(engine)
    init_db(engine)
    assert _revision(engine) == HEAD_REVISION
    with session_scope(engine) as s:
        assert s.get(AlertRule, rule_id) is not None


def test_database_from_create_all_is_adopted(catalog_url: str) -> None:
    """A catalog built before migrations existed (create_all) is stamped, not rebuilt."""
    engine = get_engine(catalog_url)
    SQLModel.metadata.create_all(engine)
    rule_id = _add_rule(engine)
    init_db(engine)
    assert _revision(engine) == HEAD_REVISION
    with session_scope(engine) as s:
        assert s.get(AlertRule, rule_id) is not None


def test_downgrade_to_base_and_up_again(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
        conn.commit()
    assert not ALL_TABLES & set(sa.inspect(engine).get_table_names())
    init_db(engine)
    assert set(sa.inspect(engine).get_table_names()) >= ALL_TABLES


_TEST_MIGRATION = '''
"""Test-only revision: add a column, to prove upgrades keep existing rows."""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("team", sa.String(64), nullable=False, server_default="core"))


def downgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("team")
'''


def test_upgrade_with_a_new_revision_keeps_rows(engine: sa.Engine, tmp_path: Path) -> None:
    """A database at head with rows survives a later revision (batch mode on SQLite)."""
    rule_id = _add_rule(engine)
    extra = tmp_path / "extra_versions"
    extra.mkdir()
    migration = textwrap.dedent(_TEST_MIGRATION).replace("{head}", str(HEAD_REVISION))
    (extra / "9999_test_team.py").write_text(migration)
    with engine.connect() as conn:
        cfg = alembic_config(connection=conn)
        locations = cfg.get_main_option("version_locations")
        cfg.set_main_option("version_locations", f"{locations}{os.pathsep}{extra}")
        command.upgrade(cfg, "head")
        conn.commit()
    assert _revision(engine) == "9999"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT service, team FROM alert_rules WHERE id = :id"),
            {"id": rule_id if engine.dialect.name == "postgresql" else rule_id.hex},
        ).one()
    assert tuple(row) == ("auth-service", "core")


_CONCURRENT_INIT = """
import sys
from workbench.catalog.db import get_engine, init_db
init_db(get_engine(sys.argv[1]))
"""


@pytest.mark.slow
def test_concurrent_init_db_from_two_processes(catalog_url: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_INIT, catalog_url],
            cwd=repo,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    engine = get_engine(catalog_url)
    assert _revision(engine) == HEAD_REVISION
    assert set(sa.inspect(engine).get_table_names()) >= ALL_TABLES


def test_naive_datetime_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive"), session_scope(engine) as s:
        s.add(
            AlertRule(
                service="x",
                threshold=1,
                window_minutes=1,
                created_at=NOW.replace(tzinfo=None),
                updated_at=NOW,
            )
        )
        s.flush()


def test_models_module_lists_the_invariant_index() -> None:
    names = {i.name for i in models.AlertIncident.__table__.indexes}  # type: ignore[attr-defined]
    assert "uq_incident_active_fingerprint" in names
