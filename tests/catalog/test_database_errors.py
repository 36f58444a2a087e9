"""A catalog database that is missing, unreachable or spelled another way: one line that says the fix.

``postgres://`` and ``postgresql://`` (what Heroku, docker-compose files and
``psql`` use) are read as ``postgresql+psycopg://``; anything else the catalog
cannot use, or a database that is not there, stops the command with one line
naming ``DATABASE_URL`` and what to do, instead of a SQLAlchemy traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL
from tests.live_server import free_port
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.errors import ConfigError, StorageError

_SERVER = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]  # postgres@127.0.0.1:5432
MISSING_DB_URL = f"postgresql+psycopg://{_SERVER}/does_not_exist_xyz"


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_and_postgresql_urls_are_read_as_psycopg(postgres_url: str, scheme: str) -> None:
    url = f"{scheme}://" + postgres_url.split("://", 1)[1]
    try:
        engine = get_engine(url)
        init_db(engine)
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        dispose_engine(url)


@pytest.mark.parametrize(
    "url",
    ["mysql://root@127.0.0.1/logs", "postgresql+psycopg2://u@127.0.0.1/logs", "not a url"],
)
def test_a_url_the_catalog_cannot_use_names_the_variable_and_the_forms_it_takes(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_engine(url)
    message = str(info.value)
    assert "DATABASE_URL" in message
    assert "postgresql+psycopg://" in message
    assert "sqlite:///" in message
    assert "\n" not in message


@pytest.mark.postgres
def test_a_missing_database_says_how_to_create_it() -> None:
    try:
        with pytest.raises(StorageError) as info:
            init_db(get_engine(MISSING_DB_URL))
    finally:
        dispose_engine(MISSING_DB_URL)
    message = str(info.value)
    assert "does_not_exist_xyz" in message
    assert "createdb" in message
    assert "\n" not in message


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = f"postgresql+psycopg://wb:s3cret@127.0.0.1:{free_port()}/logs"
    try:
        with pytest.raises(StorageError) as info:
            init_db(get_engine(url))
    finally:
        dispose_engine(url)
    message = str(info.value)
    assert "cannot connect" in message
    assert "127.0.0.1" in message
    assert "s3cret" not in message
    assert "\n" not in message


def _run(args: list[str], data_dir: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir), "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("command", ["serve", "evaluate"])
@pytest.mark.parametrize(
    ("url", "fix"),
    [
        (MISSING_DB_URL, "createdb"),
        ("mysql://root@127.0.0.1/logs", "postgresql+psycopg://"),
    ],
    ids=["missing-database", "unsupported-scheme"],
)
def test_commands_stop_with_a_short_message_naming_the_fix(
    data_dir: Path, command: str, url: str, fix: str
) -> None:
    args = [command, "--port", str(free_port())] if command == "serve" else [command]
    done = _run(args, data_dir, url)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 3, done.stderr
    assert "Traceback" not in done.stderr
    assert fix in done.stderr
