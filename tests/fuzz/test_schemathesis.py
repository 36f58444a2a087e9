"""Property-based fuzzing of the HTTP API from its OpenAPI schema (schemathesis).

The whole app runs in-process (ASGI) on an isolated data directory with its
lifespan (ingestor, catalog) started. For every operation, schemathesis
generates requests from the schema (valid and invalid) and checks: no 5xx
answer, and the answers conform to the schema (status code documented,
content type, body shape).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from ingest_api.app import create_app
from workbench.config import Settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with its lifespan running (so the ingestor and catalog are up)."""
    data: Path = tmp_path_factory.mktemp("schemathesis") / "data"
    data.mkdir()
    application = create_app(Settings(WORKBENCH_DATA_DIR=data))  # type: ignore[call-arg]
    with TestClient(application):
        yield application


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the OpenAPI schema is invalid: {result.err()}")
        operations.append(result.ok())
    return operations


def test_api_fuzz_no_5xx_and_schema_conformance(app: Any) -> None:
    """Every operation: bounded generated requests, no 5xx, responses match the schema."""
    failures: list[str] = []
    for operation in _operations(app):

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ]
            )

        try:
            run()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises a FailureGroup
            # Collect every operation's failure, then report them all.
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    assert not failures, "\n\n".join(failures)
