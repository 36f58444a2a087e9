"""Fixtures of the API tests: the app on an isolated data directory, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from workbench.config import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the whole app; its lifespan (ingestor included) runs for the test."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
