"""The page base: its context's clock, the query-string parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workbench import clock
from workbench.config import Settings
from workbench.dashboard.page import PageContext, request_params

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_a_page_without_its_own_clock_reads_the_workbench_clock(settings: Settings) -> None:
    ctx = PageContext(settings=settings)
    with clock.frozen(T):
        assert ctx.now() == T


def test_request_params_reads_the_query_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUERY_STRING", "incident=abc&range=7d")
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    assert request_params({"incident": "", "status": ""}) == {
        "incident": "abc", "status": "", "range": "7d"
    }
