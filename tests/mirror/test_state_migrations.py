"""The mirror state database is under Alembic migrations; a file made before them is adopted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from workbench.mirror.state import FileRecord, MirrorState

# The schema that workbench.mirror.state created before it had migrations (verbatim).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    rows INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    mirrored_at REAL NOT NULL,
    covers TEXT
);
CREATE INDEX IF NOT EXISTS files_day ON files(day);
CREATE TABLE IF NOT EXISTS failures (
    event_id TEXT PRIMARY KEY,
    index_name TEXT NOT NULL,
    file TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
"""


def _version(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def test_new_state_is_created_by_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "mirror" / "state.db"
    state = MirrorState(path)
    state.commit_batch([FileRecord("day=2026-11-20/a.parquet", "2026-11-20", 3, True)], [])
    state.close()
    assert _tables(path) >= {"files", "files_day", "failures", "meta", "alembic_version"}
    assert _version(path) == ["0001"]


def test_a_state_file_from_before_migrations_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO files VALUES ('day=2026-11-20/a.parquet', '2026-11-20', 7, 1, 1.5, NULL)"
        )
        conn.execute(
            "INSERT INTO failures VALUES ('e1', 'logs-x', 'a.parquet', 400, 'mapper', 'bad', 1, 2, 3)"
        )
        conn.execute("INSERT INTO meta VALUES ('heartbeat', '12.5')")
    state = MirrorState(path)
    try:
        assert state.mirrored() == {"day=2026-11-20/a.parquet": 7}
        assert [f.event_id for f in state.failures()] == ["e1"]
        assert state.failures()[0].attempts == 3
        assert state.meta() == {"heartbeat": "12.5"}
    finally:
        state.close()
    assert _version(path) == ["0001"]


def test_reopening_a_current_state_runs_no_migration(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Status and /health open the state often: at head, opening only reads the version."""
    path = tmp_path / "state.db"
    MirrorState(path).close()
    calls: list[str] = []
    for name in ("stamp", "upgrade"):
        monkeypatch.setattr(command, name, lambda cfg, rev, *a, _n=name, **k: calls.append(_n))
    state = MirrorState(path)
    state.set_meta(heartbeat=1.0)
    state.close()
    assert calls == []
    assert _version(path) == ["0001"]


def test_the_migrations_ship_with_the_package() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["workbench"]
    assert "mirror/migrations/**/*" in patterns
    assert (root / "workbench" / "mirror" / "migrations" / "versions").is_dir()
