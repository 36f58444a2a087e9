"""What an ingest body holds: its format, bounded inflation and counting, then its events.

The helper of :func:`workbench.ingest.ingest` (the one ingest call; the HTTP
route only reads the bytes and sends its answer): every decision about the
bytes lives here, where it is tested without a server:

* :func:`body_format` - ``json`` or ``ndjson`` for a ``Content-Type``, None (415) for
  anything else, ``text/plain`` above all (a cross-site form can send that);
  ``application/x-www-form-urlencoded`` is JSON (what ``curl -d`` sends; a browser
  form percent-encodes ``{`` and ``"``, so it cannot forge JSON that way);
* :func:`inflate` - gzip or deflate (identity passes), never past ``max_body_bytes`` (413);
* :func:`bounded_lines` / :func:`check_array_items` - items counted before any is
  parsed, so a body of more than ``max_batch_events`` is 413 without an object each;
* :func:`decode_body` - Arrow columns (the fast lane), one event, or a batch's
  accepted and rejected items. Bodies over :data:`OFF_LOOP_BYTES` are worth a
  worker thread (:func:`workbench.ingest.ingest` runs them in one).
"""

from __future__ import annotations

import itertools
import re
import zlib
from datetime import datetime

import pyarrow as pa

from workbench.errors import PayloadTooLarge, ValidationError
from workbench.events import (
    BatchResult,
    Event,
    Limits,
    check_body_size,
    ndjson_lines,
    parse_json,
    parse_lines,
    validate_batch,
    validate_event,
)
from workbench.events_arrow import decode_plain_array, decode_plain_lines

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)
# Treated as JSON: curl's default for -d; browsers' forms cannot produce JSON in it.
_JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded"})
ENCODINGS = ("identity", "gzip", "deflate")
# Bodies at least this large are parsed and validated in a worker thread (a 10 MB
# body holds the loop for about a second); smaller ones stay on the loop, where a
# thread hop would cost more than the parse.
OFF_LOOP_BYTES = 256 * 1024
# One match per non-blank line (ASCII whitespace, as bytes.isspace()).
_NON_BLANK_LINE = re.compile(rb"[^\s][^\n]*")
# Strings (skipped whole, escapes included) and the structural characters of JSON.
_JSON_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_ARRAY_START = re.compile(rb"\s*\[")
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_COMMA = ord(",")


def body_format(content_type: str) -> str | None:
    """Return ``"json"`` or ``"ndjson"`` for a ``Content-Type`` value, None if it is refused."""
    media = content_type.partition(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        return "ndjson"
    if media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    return None


def inflate(body: bytes, encoding: str, limits: Limits) -> bytes:
    """Return ``body`` decompressed (gzip or deflate; ``identity`` returns it as it is), at most
    ``max_body_bytes`` of it (else 413)."""
    if encoding == "identity":
        return body
    # Bounded inflation: a small gzip bomb must not get past the body limit.
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limits.max_body_bytes + 1)
    except zlib.error as exc:
        raise ValidationError(
            f"Body is not valid {encoding}", {"body": [f"not valid {encoding}: {exc}"]}
        ) from exc
    check_body_size(len(out), limits)
    return out


def bounded_lines(body: bytes, limits: Limits) -> list[bytes]:
    """Return the non-blank lines of an NDJSON body; 413 past ``max_batch_events`` of them.

    Counted before anything is split off or parsed: line breaks in C
    (``bytes.count``), and only when there are more than the limit allows, the
    non-blank lines up to one past it. A body of a million ``{}`` lines never
    becomes a million objects.
    """
    most = limits.max_batch_events
    if body.count(b"\n") >= most:
        counted = sum(1 for _ in itertools.islice(_NON_BLANK_LINE.finditer(body), most + 1))
        if counted > most:
            raise _too_many(most)
    return ndjson_lines(body)


def check_array_items(body: bytes, limits: Limits) -> None:
    """Raise PayloadTooLarge (413) if a JSON array body holds more than ``max_batch_events`` items.

    Counts the top-level commas of a token scan (strings skipped whole) and stops
    one past the limit, so ``[{},{},...]`` is refused after ``max_batch_events``
    tokens instead of becoming millions of dicts. Only the general path calls
    it, and only when the body has that many commas at all.
    """
    most = limits.max_batch_events
    depth = 0
    items = 1
    for token in _JSON_STRUCTURE.finditer(body):
        char = token.group()[0]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif char == _COMMA and depth == 1:
            items += 1
            if items > most:
                raise _too_many(most)


def _too_many(most: int) -> PayloadTooLarge:
    message = f"batch: more than {most} events (max_batch_events)"
    return PayloadTooLarge(message, {"batch": [message]})


def decode_body(
    body: bytes, ndjson: bool, now: datetime, limits: Limits
) -> pa.RecordBatch | Event | BatchResult:
    """Return a body's events: Arrow columns (every one plain and valid), one event (a JSON
    object), or the batch's accepted and rejected items; ValidationError/PayloadTooLarge if none."""
    lines = bounded_lines(body, limits) if ndjson else []
    # The fast lane: a batch of plain events goes straight into Arrow columns;
    # anything unusual (including every rejection) takes the general path below.
    if ndjson:
        columns = decode_plain_lines(lines, now=now, limits=limits)
    else:
        columns = decode_plain_array(body, now=now, limits=limits) if body[:1] == b"[" else None
    if columns is not None:
        return columns
    if ndjson:
        items = parse_lines(lines)
    else:
        if body.count(b",") >= limits.max_batch_events and _ARRAY_START.match(body):
            check_array_items(body, limits)
        parsed = parse_json(body)
        if type(parsed) is dict:
            return validate_event(parsed, now=now, limits=limits)
        if type(parsed) is not list:
            raise ValidationError(
                "Invalid log event",
                {"body": ["body: must be a JSON object (one event) or an array of events"]},
            )
        items = parsed
    if not items:
        raise ValidationError("Empty batch", {"body": ["body: the batch holds no events"]})
    return validate_batch(items, now=now, limits=limits)
