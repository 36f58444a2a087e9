"""Pattern grouping: which messages merge into one pattern, which stay apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.patterns import message_pattern, message_patterns, top_messages

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

MERGE = [
    ("timeout after 31 ms for user 123", "timeout after 7 ms for user 9"),
    ("GET /api/users/42/orders failed", "GET /api/users/7/orders failed"),
    ("connect to 10.0.0.5:5432 refused", "connect to 192.168.1.20 refused"),
    ("user bob@example.com not found", "user alice.smith@corp.example.org not found"),
    ('missing key "abc"', 'missing key "some other key"'),
    ("cannot open 'a.txt'", "cannot open 'b/c.log'"),
    (
        "request 550e8400-e29b-41d4-a716-446655440000 done",
        "request 123e4567-e89b-12d3-a456-426614174000 done",
    ),
    ("segfault at 0xdeadbeef", "segfault at 0x7f"),
    ("blob 8f3a2b9c not in cache", "blob a1b2c3d4e5 not in cache"),
    ("took 31ms", "took 1500ms"),
    ("processed 1,000 rows in 3.5 s", "processed 12 rows in 0.25 s"),
]

APART = [
    # Different words never merge, whatever the numbers.
    ("timeout after 31 ms for user 123", "timeout after 31 ms for order 123"),
    ("connection refused", "connection reset"),
    ("took 31ms", "took 31s"),  # the unit is part of the pattern
    ("retry 3 of 5", "retry 3 of 5 failed"),
    # Names containing digits are words, not ids.
    ("protocol ipv4 unsupported", "protocol ipv6 unsupported"),
    ("disk sda1 full", "disk sdb1 full"),
    # An apostrophe inside a word does not open a quoted value.
    ("can't connect to db", "can't connect to cache"),
]


@pytest.mark.parametrize(("a", "b"), MERGE)
def test_messages_differing_only_in_values_merge(a: str, b: str) -> None:
    assert message_pattern(a) == message_pattern(b)


@pytest.mark.parametrize(("a", "b"), APART)
def test_messages_with_different_words_stay_apart(a: str, b: str) -> None:
    assert message_pattern(a) != message_pattern(b)


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        ("timeout after 31 ms for user 123", "timeout after <num> ms for user <num>"),
        ("GET /api/users/42/orders/8f3a2b9c", "GET /api/users/<num>/orders/<hex>"),
        ("connect to 10.0.0.5:5432 refused", "connect to <ip> refused"),
        ("user bob@example.com not found", "user <email> not found"),
        ('key "abc" missing', "key <str> missing"),
        ("can't open 'x.txt'", "can't open <str>"),
        ("job 550e8400-e29b-41d4-a716-446655440000", "job <uuid>"),
        ("ptr 0xDEADbeef", "ptr <hex>"),
        ("took 31ms", "took <num>ms"),
        ("ipv4 http2 user123", "ipv4 http2 user123"),
        ("no variable parts", "no variable parts"),
        ("", ""),
    ],
)
def test_placeholders(message: str, pattern: str) -> None:
    assert message_pattern(message) == pattern


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab fx0129.:-@'\"/_,é٣")), max_size=40)))
def test_vectorised_version_agrees_with_scalar(messages: list[str]) -> None:
    patterns = message_patterns(pl.Series("message", messages, dtype=pl.String))
    assert patterns.to_list() == [message_pattern(m) for m in messages]


def _frame(rows: list[tuple[str, str, int]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "service": [r[0] for r in rows],
            "message": [r[1] for r in rows],
            "timestamp": [T0 + timedelta(minutes=r[2]) for r in rows],
        }
    )


def test_top_messages_counts_patterns_most_frequent_first() -> None:
    lf = _frame(
        [
            ("api", "timeout after 31 ms for user 123", 0),
            ("api", "timeout after 7 ms for user 9", 5),
            ("auth", "timeout after 7 ms for user 9", 9),
            ("auth", "timeout after 7 ms for user 9", 2),
            ("auth", "db down", 3),
        ]
    )
    df = top_messages(lf, limit=10)
    assert df.columns == ["pattern", "count", "example", "services", "first_seen", "last_seen"]
    first = df.row(0, named=True)
    assert first["pattern"] == "timeout after <num> ms for user <num>"
    assert first["count"] == 4
    assert first["example"] == "timeout after 7 ms for user 9"  # the most frequent variant
    assert first["services"] == ["api", "auth"]
    assert first["first_seen"] == T0
    assert first["last_seen"] == T0 + timedelta(minutes=9)
    assert df.row(1, named=True)["pattern"] == "db down"
    assert df.height == 2


def test_top_messages_limit_and_empty_input() -> None:
    lf = _frame([("api", f"word{i} failed", i) for i in range(5)])
    assert top_messages(lf, limit=3).height == 3
    empty = top_messages(lf.head(0))
    assert empty.height == 0
    assert empty.columns[:2] == ["pattern", "count"]
