"""Formatting, error wording and the timed refresh shared by the pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from workbench.catalog.schemas import RuleCreate
from workbench.config import Settings
from workbench.dashboard.common import (
    AutoRefresher,
    EnableToggle,
    ErrorBox,
    ago,
    esc,
    fmt_age,
    friendly_error,
    request_params,
    validation_messages,
)
from workbench.errors import ValidationError

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "seconds,text", [(0, "0 s"), (40, "40 s"), (300, "5 min"), (7200, "2 h"), (3 * 86400, "3 d")]
)
def test_fmt_age_reads_like_a_person(seconds: int, text: str) -> None:
    assert fmt_age(timedelta(seconds=seconds)) == text


def test_ago_handles_none_and_future() -> None:
    assert ago(None, NOW) == "never"
    assert ago(NOW + timedelta(seconds=5), NOW) == "just now"
    assert ago(NOW - timedelta(seconds=40), NOW) == "40 s ago"


def test_esc_turns_markup_into_text() -> None:
    assert esc("<script>alert(1)</script> & \"x\"") == (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"
    )


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


def test_error_box_shows_and_hides_escaped_text() -> None:
    box = ErrorBox()
    box.show("<b>boom</b>")
    assert "&lt;b&gt;boom" in box.widget.value and box.widget.layout.display is None
    box.clear()
    assert box.widget.layout.display == "none" and box.message == ""


def test_auto_refresher_does_not_start_without_a_running_loop() -> None:
    r = AutoRefresher(lambda: None, 1)
    assert r.start() is False
    assert AutoRefresher(lambda: None, 0).start() is False


def test_auto_refresher_ticks_on_the_running_loop() -> None:
    calls: list[int] = []

    async def main() -> None:
        r = AutoRefresher(lambda: calls.append(1), 0.01)
        assert r.start() is True
        await asyncio.sleep(0.08)
        r.stop()

    asyncio.run(main())
    assert len(calls) >= 2


def test_request_params_reads_the_query_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUERY_STRING", "incident=abc&range=7d")
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    assert request_params({"incident": "", "status": ""}) == {
        "incident": "abc", "status": "", "range": "7d"
    }


def test_enable_toggle_persists_clicks_and_reverts_a_failed_one() -> None:
    """A click is persisted; a failing one goes back to the old state and is reported; show() persists nothing."""
    stored: list[bool] = []
    failures: list[BaseException] = []

    def persist(enabled: bool) -> None:
        if len(stored) == 1:
            raise RuntimeError("catalog down")
        stored.append(enabled)

    toggle = EnableToggle(True, "wb-x-toggle", persist=persist, failed=failures.append)
    assert toggle.button.description == "Enabled" and "wb-x-toggle" in toggle.button._dom_classes
    toggle.button.value = False
    assert stored == [False] and failures == []
    toggle.show(False)
    assert toggle.button.description == "Disabled"
    toggle.button.value = True  # persist fails now
    assert toggle.button.value is False and toggle.button.description == "Disabled"
    assert [str(e) for e in failures] == ["catalog down"]
    toggle.show(True)  # a refresh: drawn, not persisted
    assert stored == [False] and toggle.button.value is True
