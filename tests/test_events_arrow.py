"""The Arrow fast lane (``workbench.events_arrow``) against the general path it stands in for.

Property: whenever :func:`decode_plain_lines` or :func:`decode_plain_array` answers (instead of handing the
batch to the general path), the general path rejects nothing in that batch and
accepts exactly the same events with exactly the same stored values (event time,
service, level, message, meta text), in the same order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import json_values
from workbench.events import (
    Limits,
    ndjson_lines,
    parse_json,
    parse_ndjson,
    validate_batch,
)
from workbench.events_arrow import decode_plain_array, decode_plain_lines
from workbench.ids import IdGenerator
from workbench.lake.records import Event

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rows(columns: pa.RecordBatch) -> list[Event]:
    """Return fast-lane columns as the general path's Event tuples."""
    ts = columns.column("timestamp").cast(pa.int64()).to_pylist()
    return list(
        zip(
            ts,
            columns.column("service").to_pylist(),
            columns.column("level").to_pylist(),
            columns.column("message").to_pylist(),
            columns.column("meta").to_pylist(),
            strict=True,
        )
    )


def _both_ndjson(body: bytes, limits: Limits) -> tuple[pa.RecordBatch | None, Any]:
    lines = ndjson_lines(body)
    fast = decode_plain_lines(lines, now=NOW, limits=limits)
    items = parse_ndjson(body)
    general = validate_batch(items, now=NOW, limits=limits) if items else None
    return fast, general


def _assert_same(fast: pa.RecordBatch | None, general: Any) -> None:
    if fast is None:
        return
    assert general is not None
    assert general.rejected == []
    assert _rows(fast) == general.accepted


_ints = st.integers(min_value=-(10**20), max_value=10**20)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.none() | st.booleans() | _ints | _floats | st.text(max_size=8)
_nested = json_values(_scalars, max_size=3, key_size=4, max_leaves=8)
_flat_meta = st.dictionaries(
    st.text(max_size=6),
    st.none() | st.booleans() | st.integers(0, 10**19) | st.text(max_size=10),
    max_size=4,
)
_moments = st.datetimes(
    min_value=datetime(2025, 11, 1), max_value=datetime(2026, 11, 26, 11), timezones=st.just(UTC)
)
_offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))
_timestamps = st.one_of(
    st.builds(lambda d, off: d.astimezone(timezone(off)).isoformat(), _moments, _offsets),
    _moments.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    _moments.map(lambda d: d.replace(tzinfo=None).isoformat()),  # naive: means UTC
    st.sampled_from(
        [
            "2026-11-26T11:00:00Z",
            "2026-11-26T11:00:00.5Z",
            "2026-11-26T11:00:00.1234567Z",
            "2026-02-30T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T23:59:60Z",
            "2026-11-26",
            "2026-11-26 11:00:00+01:00",
            "2016-11-26T11:00:00Z",  # too old
            "2027-11-26T11:00:00Z",  # too far ahead
            "2026-11-26T11:00:00z",
            "soon",
        ]
    ),
    st.none(),
    _ints,
)
_good_service = st.sampled_from(["api", "auth-service", "Ωmega", " api "])
_odd_service = st.sampled_from(["\u2003", "", "s" * 9]) | st.text(max_size=6)
_good_level = st.sampled_from(
    ["info", "INFO", "Info", "warn", "error", "Fatal", "DEBUG", "warning", "CRITICAL", "Err"]
)
_odd_level = st.sampled_from(["wArN", "İNFO", "trace", "info ", "wArNiNg", "warning "])


def _mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from ``usual`` four times in five, else from ``odd``."""
    return st.integers(0, 4).flatmap(lambda k: odd if k == 0 else usual)


# Mostly valid fields, so that many batches are accepted whole and both paths answer.
_event = st.fixed_dictionaries(
    {
        "service": _mostly(_good_service, _odd_service),
        "level": _mostly(_good_level, _odd_level),
        "message": _mostly(st.text(min_size=1, max_size=8), st.text(max_size=12)),
    },
    optional={
        "timestamp": _mostly(_moments.map(lambda d: d.isoformat()), _timestamps),
        "meta": _mostly(_flat_meta, _nested),
        "extra": _scalars,
    },
)
_items = _mostly(_event, _scalars)
_dumps = st.sampled_from(
    [
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
        lambda v: json.dumps(v),  # spaces after ":" and ",", \u escapes
        lambda v: json.dumps(v, ensure_ascii=False, indent=None, separators=(", ", ": ")),
    ]
)
_limits = st.sampled_from(
    [
        Limits(),
        Limits(max_service_chars=5, max_message_chars=8, max_meta_bytes=40, max_meta_depth=2),
        Limits(max_meta_depth=1),
        Limits(max_meta_depth=0),
        Limits(max_future_skew_s=60, max_past_age_s=86_400),
    ]
)


@EXAMPLES
@given(
    items=st.lists(_items, min_size=1, max_size=4),
    dumps=_dumps,
    newline=st.sampled_from([b"\n", b"\r\n"]),
    tail=st.sampled_from([b"", b"\n", b"\n\n", b"  "]),
    limits=_limits,
)
def test_fast_lane_answers_only_what_the_general_path_accepts_whole(
    items: list[Any], dumps: Any, newline: bytes, tail: bytes, limits: Limits
) -> None:
    body = newline.join(dumps(i).encode() for i in items) + tail
    fast, general = _both_ndjson(body, limits)
    _assert_same(fast, general)
    array = b"[" + b",".join(dumps(i).encode() for i in items) + b"]"
    fast = decode_plain_array(array, now=NOW, limits=limits)
    parsed = parse_json(array)
    assert isinstance(parsed, list)
    _assert_same(fast, validate_batch(parsed, now=NOW, limits=limits))


@EXAMPLES
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "service": st.sampled_from(["api", "auth-service", "Ωmega"]),
                "level": st.sampled_from(
                    ["info", "WARN", "Error", "fatal", "debug", "warning", "Critical", "ERR"]
                ),
                "message": st.text(min_size=1, max_size=30),
            },
            optional={
                "timestamp": _moments.map(lambda d: d.isoformat().replace("+00:00", "Z")),
                "meta": _flat_meta | st.none(),
            },
        ),
        min_size=1,
        max_size=50,
    )
)
def test_plain_batches_take_the_fast_lane(events: list[dict[str, Any]]) -> None:
    # What shippers send (compact JSON, flat meta, timestamps with Z) must not fall
    # back: the fast lane is only worth having if plain batches take it.
    body = b"\n".join(
        json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in events
    )
    fast, general = _both_ndjson(body, Limits())
    assert fast is not None
    _assert_same(fast, general)


_E = b'{"service":"a","level":"info","message":"m"}'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            b'{"service":"a","level":"info","message":"m"},{"service":"a","level":"info","message":"m"}',
            "two events on one line",
        ),
        (
            b'{"service":"a","level":"info","message":"m","host":"h"}',
            "a key the lake has no column for",
        ),
        (
            b'{"service":"a","level":"info","message":"m"}\n{"service":"a","level":"loud","message":"m"}',
            "one rejected event",
        ),
        (b'{"service":5,"level":"info","message":"m"}', "a number for service"),
        (
            b'{"service":"a","level":"info","message":"m"}\n{"service":"a","level":"info"',
            "a line cut short",
        ),
        (b'{"service":"\\ud800","level":"info","message":"m"}', "a lone surrogate"),
        (
            _E[:-2] + b'\ny"}\n' + _E + b"," + _E,
            "a string over a line break, made up for by two events on one line",
        ),
        (
            _E[:-1] + b',"meta":{"x":[1\n2]}}\n' + _E + b"," + _E,
            "an array over a line break, made up for by two events on one line",
        ),
        (b'{"service":"a","level":"info","message":"\xff"}', "bytes that are not UTF-8"),
    ],
)
def test_unusual_batches_take_the_general_path(body: bytes, why: str) -> None:
    fast, general = _both_ndjson(body, Limits())
    assert fast is None, why


@pytest.mark.parametrize(
    ("meta", "stored"),
    [
        ('{"a":"x","b":1,"c":true,"d":null}', '{"a":"x","b":1,"c":true,"d":null}'),  # as sent
        ('{"a": 1, "b": "x"}', '{"a":1,"b":"x"}'),  # spaces: rewritten
        ('{"a":1.50,"b":-2}', '{"a":1.5,"b":-2}'),  # numbers orjson rewrites
        ('{"a":123456789012345678901}', '{"a":1.2345678901234568e+20}'),  # beyond 64 bits
        ('{"a":"\\u00e9\\n"}', '{"a":"é\\n"}'),  # escapes
        ('{"a":{"b":[1,2]}}', '{"a":{"b":[1,2]}}'),  # nested
        ("{}", "{}"),
        ("null", None),
    ],
)
def test_meta_text_is_stored_as_the_general_path_writes_it(meta: str, stored: str | None) -> None:
    body = b'{"service":"a","level":"info","message":"m","meta":%b}' % meta.encode()
    fast, general = _both_ndjson(body, Limits())
    assert fast is not None
    _assert_same(fast, general)
    assert fast.column("meta").to_pylist() == [stored]


def test_timestamps_with_offsets_and_without_are_read_as_the_general_path_reads_them() -> None:
    stamps = ["2026-11-26T11:00:00+02:00", "2026-11-26T11:00:00.25Z", None, "2026-11-26T11:00:00"]
    body = b"\n".join(
        json.dumps({"service": "a", "level": "info", "message": "m", "timestamp": t}).encode()
        for t in stamps
    )
    fast, general = _both_ndjson(body, Limits())
    assert fast is not None
    _assert_same(fast, general)
    assert fast.column("timestamp").cast(pa.int64()).to_pylist()[2] == general.accepted[2][0]


def test_id_array_matches_the_ids_one_by_one_across_the_sequence_wrap() -> None:
    one, many = IdGenerator(node=0xABCDEF01), IdGenerator(node=0xABCDEF01)
    one._seq = many._seq = 0xFFFFFFFFFFFF - 2
    expected = one.new_ids(5, 1_764_000_000_000) + one.new_ids(3, 1_764_000_000_001)
    got = many.new_id_array(5, 1_764_000_000_000).to_pylist()
    got += many.new_id_array(3, 1_764_000_000_001).to_pylist()
    assert got == expected
    assert len(set(got)) == 8


@pytest.mark.parametrize(
    ("stamps", "same_shape"),
    [
        (["2026-11-26T11:00:00Z", "2026-11-26T12:30:59Z"], True),
        (["2026-11-26T11:00:00.123+02:00", "2025-01-01T00:00:00.999+05:30"], True),
        (["2026-11-26T11:00:00Z", "2026-11-26T11:00:00+00:00"], False),  # shapes differ
        (["2026-11-26T11:00:00Z", "2026-11-26T11:00:0xZ"], False),  # a letter for a digit
        (["2026-11-26T11:00:00Z", "2026-11-26 11:00:00Z"], False),  # another separator
        (["2026-11-26T11:00:00Z", "2026-11-26T11:00:0Z", "2026-11-26T11:00:000Z"], False),
        (["2026-11-26T11:00:00", "2026-11-26T11:00:01"], False),  # no offset: not the form
        (["2026-11-26T11:00:00Z", "2026-11-26T11:00:0éZ"], False),  # same length in characters
    ],
)
def test_timestamps_of_one_shape_are_checked_at_once(stamps: list[str], same_shape: bool) -> None:
    from workbench.events_arrow import _one_iso_shape

    assert _one_iso_shape(pa.array(stamps, pa.string())) is same_shape


def test_level_aliases_take_the_fast_lane_and_are_stored_as_ours() -> None:
    body = b"\n".join(
        b'{"service":"a","level":"%s","message":"m"}' % spelling
        for spelling in (b"warning", b"WARNING", b"Critical", b"err")
    )
    fast, general = _both_ndjson(body, Limits())
    assert fast is not None
    assert fast.column("level").to_pylist() == ["warn", "warn", "fatal", "error"]
    _assert_same(fast, general)
