"""Fixtures of the mirror tests: an Elasticsearch URL (a real one, or the stand-in), clients, settings.

``ELASTIC_URL`` set in the environment: the tests run unchanged against that real
cluster (with ``ELASTIC_API_KEY`` / ``ELASTIC_USERNAME`` / ``ELASTIC_PASSWORD`` /
``ELASTIC_CA_CERTS`` as the mirror reads them), each test in its own index prefix
and template, deleted afterwards. Otherwise each test gets a fresh stand-in server
(``tests/mirror/es_standin.py``, not Elasticsearch) on 127.0.0.1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.mirror.es_standin import ElasticStandin
from workbench.config import Settings
from workbench.mirror.elastic import MirrorSettings, make_client

REAL_URL = os.environ.get("ELASTIC_URL") or None


@pytest.fixture
def standin() -> Iterator[ElasticStandin | None]:
    """A fresh stand-in server, or None when the tests run against a real ``ELASTIC_URL``."""
    if REAL_URL:
        yield None
        return
    server = ElasticStandin()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def knobs(standin: ElasticStandin | None) -> ElasticStandin:
    """The stand-in, for tests that make Elasticsearch fail on purpose (skipped on a real server)."""
    if standin is None:
        pytest.skip(
            "needs the stand-in's failure knobs (down/slow/reject); "
            "ELASTIC_URL points at a real server that cannot be told to fail"
        )
    return standin


@pytest.fixture
def elastic_url(standin: ElasticStandin | None) -> str:
    """``ELASTIC_URL`` when set (a real Elasticsearch), else the stand-in's URL."""
    return REAL_URL or (standin.url if standin else "")


@pytest.fixture
def index_prefix() -> str:
    """The daily index prefix: the real one on the stand-in, a unique one on a shared real cluster."""
    return f"wbtest-{uuid.uuid4().hex[:8]}-app-logs-" if REAL_URL else "app-logs-"


@pytest.fixture
def mirror_config(elastic_url: str, index_prefix: str) -> MirrorSettings:
    """Mirror settings for the test server with small batches and short waits."""
    return MirrorSettings(  # type: ignore[call-arg]
        ELASTIC_URL=elastic_url,
        ELASTIC_INDEX_PREFIX=index_prefix,
        WORKBENCH_MIRROR_POLL_SECONDS=0.02,
        WORKBENCH_MIRROR_BATCH_EVENTS=200,
        WORKBENCH_MIRROR_MAX_BACKOFF_SECONDS=0.2,
        ELASTIC_REQUEST_TIMEOUT_SECONDS=5,
    )


@pytest.fixture
def es(mirror_config: MirrorSettings) -> Iterator[Elasticsearch]:
    """A client of the test server; on a real cluster the test's indices and template are removed after."""
    client = make_client(mirror_config)
    try:
        yield client
    finally:
        if REAL_URL:
            # Wildcard deletes are refused by default (action.destructive_requires_name):
            # resolve the test's own indices, then delete them by name.
            resp = client.options(ignore_status=404).indices.get(
                index=f"{mirror_config.index_prefix}*", allow_no_indices=True
            )
            names = list(resp.body) if resp.meta.status == 200 else []
            if names:
                client.indices.delete(index=",".join(names))
            client.options(ignore_status=404).indices.delete_index_template(
                name=mirror_config.template_name
            )
        client.close()


@pytest.fixture
def mirror_env(data_dir: Path, elastic_url: str) -> Settings:
    """Workbench settings rooted in the test's data directory, with ``ELASTIC_URL`` set."""
    return Settings(WORKBENCH_DATA_DIR=data_dir, ELASTIC_URL=elastic_url)  # type: ignore[call-arg]
