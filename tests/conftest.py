"""Shared fixtures: an isolated data directory and settings per test, and a PostgreSQL database.

Area-specific fixtures live in the ``conftest.py`` of each test folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.config import Settings

# The tests' webhook receivers listen on 127.0.0.1: allow private targets, as local
# development does (tests of the refusal pass allow_private=False themselves). Set
# before any Settings is built; server subprocesses inherit it.
os.environ.setdefault("WORKBENCH_ALLOW_PRIVATE_WEBHOOKS", "true")

PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory for one test."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Settings rooted in the test's own data directory (SQLite catalog, local lake)."""
    return Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A freshly created PostgreSQL database (dropped afterwards); its SQLAlchemy URL."""
    import sqlalchemy as sa

    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - only when the server is missing
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for this test: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
