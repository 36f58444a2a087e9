"""Error wording of the pages: field messages, one sentence per failure, no password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from workbench.catalog.schemas import RuleCreate
from workbench.config import Settings
from workbench.dashboard.errors import friendly_error, validation_messages
from workbench.errors import ValidationError


def test_validation_messages_name_fields_in_snake_case() -> None:
    with pytest.raises(Exception) as info:
        RuleCreate.model_validate({"service": "a", "threshold": "abc", "windowMinutes": 0})
    msgs = validation_messages(info.value)
    assert msgs["threshold"] == ["must be a whole number"]
    assert "window_minutes" in msgs
    wb = validation_messages(ValidationError("bad", {"target": ["must be http"]}))
    assert wb == {"target": ["must be http"]}


def test_friendly_error_for_an_unreachable_database_hides_the_password(settings: Settings) -> None:
    s = Settings(WORKBENCH_DATA_DIR=settings.data_dir,  # type: ignore[call-arg]
                 DATABASE_URL="postgresql+psycopg://bob:secret@127.0.0.1:1/x")
    exc = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    text = friendly_error(exc, s)
    assert "catalog database" in text and "unreachable" in text
    assert "secret" not in text and "bob:***@" in text
    assert "Traceback" not in text


def test_friendly_error_for_the_lake(settings: Settings) -> None:
    text = friendly_error(FileNotFoundError("no such file: /x/lake"), settings)
    assert "log lake" in text and settings.lake_url in text
