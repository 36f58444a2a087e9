"""Dashboard fixtures: a seeded catalog and lake in the test's data directory, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.browser_helpers import browser
from tests.dashboard.seed import Seeded, seed_catalog
from workbench.catalog.db import dispose_engine
from workbench.config import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

__all__ = ["browser"]  # Chromium for the kernel-lifetime tests, defined once


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock stopped at NOW."""
    return lambda: NOW


@pytest.fixture
def world(settings: Settings) -> Iterator[Seeded]:
    """Rules, channels, three incidents, a fresh evaluation run and a small lake, at NOW."""
    try:
        yield seed_catalog(settings, NOW)
    finally:
        dispose_engine(settings.database_url)


@pytest.fixture
def empty(settings: Settings) -> Iterator[Settings]:
    """The settings of an empty data directory (no lake, empty catalog)."""
    try:
        yield settings
    finally:
        dispose_engine(settings.database_url)
