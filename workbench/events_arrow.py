"""Batches of plain events decoded straight into Arrow columns: the ingest fast lane.

:func:`workbench.events.validate_batch` judges one Python dict per event; at
hundreds of thousands of events per second those dicts (and the per-event
checks, ids and Arrow building after them) are most of the ingestor's CPU.
Here a batch whose every event is *plain* goes another way:

1. msgspec decodes each NDJSON line (or the array) into typed structs (C code;
   no dict per event): ``service``, ``level``, ``message`` must be strings,
   ``timestamp`` a string or null, ``meta`` is kept as its raw JSON text, and
   no other key is allowed;
2. the rules of :mod:`workbench.events` are checked on whole Arrow columns
   (lengths, level spellings, each distinct service by the general rule,
   timestamps of one shape at once then Arrow's ISO 8601 cast, a regex that
   recognises a flat, compact JSON object, once per distinct ``meta``);
3. the few values the column checks cannot vouch for (a timestamp without an
   offset, a meta with spaces or nesting) are judged one by one by the same
   code as the general path.

Whenever anything is unusual (a type mismatch, an extra key, a line that is
not JSON, an event the rules reject, a batch over ``max_batch_events``),
:func:`decode_plain_lines` (NDJSON) or :func:`decode_plain_array` returns
``None`` and the caller takes the general path, which words every rejection. So both paths accept the same events and
store the same values; ``tests/test_events_arrow.py`` checks that property
against generated batches.

A meta that passes the regex is stored as the client sent it: a flat object of
strings without escapes, short numbers, booleans and nulls with no spaces,
whose text is what orjson would have written (a repeated key is kept as sent;
every reader, like orjson, takes the last one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from workbench.events import LEVEL_SPELLINGS, Checker, Limits

_TS = pa.timestamp("us", tz="UTC")

# The level spellings the general path maps without lower-casing (aliases included);
# others go there.
_SPELLINGS = pa.array(list(LEVEL_SPELLINGS), pa.string())
_CANONICAL = pa.array(list(LEVEL_SPELLINGS.values()), pa.string())

# The ISO 8601 form Arrow's cast and datetime.fromisoformat agree on (with an offset).
_ISO_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_iso_utc = re.compile(_ISO_UTC)
_KEY = r'"[^"\\\x00-\x1f]*"'
_VALUE = r'("[^"\\\x00-\x1f]*"|(0|[1-9][0-9]{0,17})|true|false|null)'
# A flat JSON object exactly as orjson writes it: strings without escapes, integers
# orjson keeps as they are (no sign, no fraction, at most 18 digits), true, false,
# null; no spaces, no nesting. The general path rewrites anything else.
_FLAT_META = rf"\{{({_KEY}:{_VALUE}(,{_KEY}:{_VALUE})*)?\}}"
_flat_meta = re.compile(_FLAT_META)
# Arrow compiles a regex on every call (about 50 µs for this one): below this many
# distinct metas, Python's compiled one is cheaper.
_FEW_METAS = 32


class _Plain(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One event of a plain batch: the field types the general path accepts, nothing else."""

    service: str
    level: str
    message: str
    timestamp: str | None = None
    meta: msgspec.Raw = msgspec.Raw()


_decode_event = msgspec.json.Decoder(_Plain).decode
_decode_list = msgspec.json.Decoder(list[_Plain]).decode
_SERVICE, _LEVEL, _MESSAGE, _TIMESTAMP, _META = (
    attrgetter(name) for name in ("service", "level", "message", "timestamp", "meta")
)


class _Unusual(Exception):
    """Something in the batch needs the general path."""


def decode_plain_lines(
    lines: Sequence[bytes], *, now: datetime, limits: Limits
) -> pa.RecordBatch | None:
    """Return the accepted events of NDJSON lines (see :func:`workbench.events.ndjson_lines`)
    as Arrow columns, or None for the general path.

    Each line is decoded on its own (as the general path parses it), so a line
    must hold exactly one event. The columns are ``timestamp`` (timestamp[us, UTC]),
    ``service``, ``level`` (lower case), ``message``, ``meta`` (JSON text or null),
    in the order of the lines.
    """
    if not lines or len(lines) > limits.max_batch_events:
        return None
    try:
        events = list(map(_decode_event, lines))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return _accepted(events, now, limits)


def decode_plain_array(body: bytes, *, now: datetime, limits: Limits) -> pa.RecordBatch | None:
    """Return the accepted events of a JSON array body as Arrow columns, or None for the
    general path (see :func:`decode_plain_lines`)."""
    try:
        events = _decode_list(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not events or len(events) > limits.max_batch_events:
        return None
    return _accepted(events, now, limits)


def _accepted(events: list[_Plain], now: datetime, limits: Limits) -> pa.RecordBatch | None:
    try:
        return _columns(events, now, limits)
    except (_Unusual, pa.ArrowInvalid, UnicodeEncodeError, orjson.JSONDecodeError):
        return None


def _within(lengths: pa.Array, high: int) -> bool:
    """Return True if every length is between 1 and ``high``."""
    bounds = pc.min_max(lengths)
    return bool(bounds["min"].as_py() >= 1 and bounds["max"].as_py() <= high)


def _columns(events: list[_Plain], now: datetime, limits: Limits) -> pa.RecordBatch:
    service = pa.array(list(map(_SERVICE, events)), pa.string())
    message = pa.array(list(map(_MESSAGE, events)), pa.string())
    level_idx = pc.index_in(pa.array(list(map(_LEVEL, events)), pa.string()), _SPELLINGS)
    if level_idx.null_count or not _within(pc.utf8_length(message), limits.max_message_chars):
        raise _Unusual
    # A batch holds few distinct services: each is judged by the general rule itself.
    max_service = limits.max_service_chars
    for name in pc.unique(service).to_pylist():
        if not 0 < len(name) <= max_service or name.isspace():
            raise _Unusual
    checker = Checker(limits, now)
    timestamp = _timestamps(list(map(_TIMESTAMP, events)), checker)
    meta = _metas(list(map(_META, events)), checker)
    return pa.RecordBatch.from_arrays(
        [timestamp, service, pc.take(_CANONICAL, level_idx), message, meta],
        names=["timestamp", "service", "level", "message", "meta"],
    )


def _timestamps(values: list[str | None], checker: Checker) -> pa.Array:
    """Return the event times (``now`` where absent); raise _Unusual on any rejected one."""
    raw = pa.array(values, pa.string())
    if raw.null_count == len(raw):
        return pa.repeat(pa.scalar(checker.now_us, _TS), len(raw))
    parsed: pa.Array | None = None
    if (raw.null_count == 0 and _one_iso_shape(raw)) or pc.all(
        pc.match_substring_regex(raw, _ISO_UTC)  # nulls aside
    ).as_py():
        try:
            parsed = raw.cast(_TS)
        except pa.ArrowInvalid:  # e.g. 2026-02-30: let datetime word the error
            parsed = None
    if parsed is None:
        us: list[int] = []
        for value in values:
            if value is None:
                us.append(checker.now_us)
                continue
            moment, error = checker.timestamp(value)
            if error:
                raise _Unusual
            us.append(moment)
        return pa.array(us, pa.int64()).cast(_TS)
    as_int = parsed.cast(pa.int64())
    bounds = pc.min_max(as_int)
    if bounds["min"].as_py() < checker.lo_us or bounds["max"].as_py() > checker.hi_us:
        raise _Unusual
    if parsed.null_count:
        return pc.fill_null(as_int, checker.now_us).cast(_TS)
    return parsed


def _one_iso_shape(raw: pa.StringArray) -> bool:
    """Return True if every string has the shape of the first, and the first is ``_ISO_UTC``.

    Shippers format every timestamp alike, so instead of a regex per string (about
    80 ns each), compare them all at once with the first: the same length, the same
    characters where it has no digit, digits where it has one. A string of the same
    shape as one that matches the regex matches it too.
    """
    first = raw[0].as_py()
    if not _iso_utc.fullmatch(first):
        return False
    width = len(first)
    _, offsets_buf, data_buf = raw.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[raw.offset : raw.offset + len(raw) + 1]
    if not (np.diff(offsets) == width).all():
        return False
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    grid = data.reshape(len(raw), width)
    template = np.frombuffer(first.encode(), dtype=np.uint8)
    digit = (template >= ord("0")) & (template <= ord("9"))
    if not (grid[:, ~digit] == template[~digit]).all():
        return False
    digits = grid[:, digit]
    return bool(((digits >= ord("0")) & (digits <= ord("9"))).all())


def _metas(values: list[msgspec.Raw], checker: Checker) -> pa.Array:
    """Return the meta column (JSON text or null); raise _Unusual on any rejected meta."""
    n = len(values)
    limits = checker.limits
    # The raw texts side by side in one buffer, as Arrow lays out a string column.
    sizes = np.fromiter(map(len, values), dtype=np.int32, count=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    data = b"".join(values)
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = offsets[:-1]
    first = np.zeros(n, dtype=np.uint8)
    present = sizes > 0
    first[present] = buf[starts[present]]
    # Absent, or JSON null (the only 4-byte JSON value that starts with "n").
    absent = ~present | ((sizes == 4) & (first == ord("n")))
    if absent.all():
        return pa.nulls(n, pa.string())
    validity = pa.py_buffer(np.packbits(~absent, bitorder="little")) if absent.any() else None
    column = pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    column.validate(full=True)  # UTF-8, else ArrowInvalid: the general path words it
    # Metas repeat within a batch: each distinct text is checked once.
    distinct = pc.unique(column)
    as_sent = _storable_as_sent(distinct, limits) if limits.max_meta_depth >= 1 else set()
    if as_sent is None:
        return column
    # Some metas need the general rules (spaces, nesting, escapes): one by one.
    out: list[str | None] = []
    for text in column.to_pylist():
        if text is None or text in as_sent:
            out.append(text)
            continue
        meta_text, error = checker.meta(orjson.loads(text))
        if error:
            raise _Unusual
        out.append(meta_text)
    return pa.array(out, pa.string())


def _storable_as_sent(distinct: pa.Array, limits: Limits) -> set[str] | None:
    """Return the metas of ``distinct`` that are flat, compact and within ``max_meta_bytes``,
    or None when they all are."""
    if len(distinct) <= _FEW_METAS:
        fullmatch = _flat_meta.fullmatch
        texts = [text for text in distinct.to_pylist() if text is not None]
        fine = {
            text
            for text in texts
            if len(text.encode()) <= limits.max_meta_bytes and fullmatch(text)
        }
        return None if len(fine) == len(texts) else fine
    matches = pc.and_(
        pc.match_substring_regex(distinct, f"^{_FLAT_META}$"),
        pc.less_equal(pc.binary_length(distinct), limits.max_meta_bytes),
    )
    if pc.all(matches).as_py():  # nulls aside
        return None
    return set(distinct.filter(matches).to_pylist())
