"""Catalog fixtures: every catalog test runs on SQLite and on PostgreSQL (marked ``postgres``).

``catalog_url`` is an empty database per test (for migration tests). ``engine`` is a
migrated, empty catalog: a fresh SQLite file per test, or one PostgreSQL database
per session that is emptied (TRUNCATE) before each test, because creating and
migrating a PostgreSQL database per test costs about a second on this machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from tests.conftest import PG_ADMIN_URL
from workbench.catalog.db import dispose_engine, get_engine, init_db, session_scope

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalog database URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    try:
        yield url
    finally:
        # Before the PostgreSQL fixture drops the database: close our pooled connections.
        dispose_engine(url)


@pytest.fixture(scope="session")
def shared_postgres_catalog() -> Iterator[str]:
    """The URL of one migrated PostgreSQL catalog for the session (dropped at the end)."""
    name = f"wb_catalog_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - only when the server is missing
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for this test: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        init_db(get_engine(url))
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty catalog engine (SQLite file, or the shared PostgreSQL catalog)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        eng = get_engine(url)
        init_db(eng)
        yield eng
        dispose_engine(url)
        return
    eng = get_engine(request.getfixturevalue("shared_postgres_catalog"))
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    yield eng


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session in one transaction, committed at the end of the test."""
    with session_scope(engine) as s:
        yield s
