"""Text and HTML helpers of the pages: ages, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbench.dashboard.format import ago, esc, fmt_age

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
