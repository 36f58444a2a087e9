"""One engine cache: ``catalog_engine`` migrates a catalog once per process and URL."""

from __future__ import annotations

import threading

import pytest
from alembic import command

from workbench.catalog import db
from workbench.catalog.db import catalog_engine, dispose_engine, get_engine


def _count_upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = command.upgrade

    def counting(cfg, revision, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(revision)
        return real(cfg, revision, *args, **kwargs)

    monkeypatch.setattr(command, "upgrade", counting)
    return calls


def test_catalog_engine_migrates_once_per_url(
    catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrades = _count_upgrades(monkeypatch)
    engines = []
    barrier = threading.Barrier(8)

    def open_it() -> None:
        barrier.wait()
        engines.append(catalog_engine(catalog_url))

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    catalog_engine(catalog_url)
    assert upgrades == ["head"]
    assert {id(e) for e in engines} == {id(get_engine(catalog_url))}


def test_dispose_forgets_the_migration(catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrades = _count_upgrades(monkeypatch)
    catalog_engine(catalog_url)
    dispose_engine(catalog_url)
    catalog_engine(catalog_url)
    assert upgrades == ["head", "head"]


def test_no_other_engine_cache_in_the_callers() -> None:
    import ingest_api.routes.alerts as alerts
    import workbench.dashboard.store as store

    for module in (alerts, store):
        assert not [n for n in vars(module) if n in ("_ready", "_migrated", "engine_for")]
    assert db.catalog_engine is catalog_engine
