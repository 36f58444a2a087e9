"""Security fixtures: a migrated SQLite catalog in the test's data directory, and key makers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from workbench.catalog.db import dispose_engine, get_engine, init_db, session_scope
from workbench.config import Settings
from workbench.security.keys import create_key

NOW = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)

MakeKey = Callable[..., str]


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The migrated catalog of ``settings`` (a fresh SQLite file)."""
    eng = get_engine(settings.database_url)
    init_db(eng)
    try:
        yield eng
    finally:
        dispose_engine(settings.database_url)


@pytest.fixture
def make_key(engine: Engine) -> MakeKey:
    """A function creating a key with the given scopes and returning its token."""

    def make(*scopes: str, name: str = "test") -> str:
        with session_scope(engine) as session:
            _, token = create_key(session=session, name=name, scopes=scopes, now=NOW)
        return token

    return make
