"""Group log messages into patterns: the same text with its variable parts replaced by placeholders.

``timeout after 31 ms for user 123`` and ``timeout after 7 ms for user 9`` are one
pattern, ``timeout after <num> ms for user <num>``. Pure functions, no I/O.

Placeholders, applied in this order (earlier rules win, so an IP is never two
numbers and a UUID never a hex id):

==============  ==========================================================
placeholder     replaces
==============  ==========================================================
``<email>``     ``name@host.tld``
``<uuid>``      ``8-4-4-4-12`` hex UUIDs
``<ip>``        IPv4 addresses, with an optional ``:port``
``<str>``       text in double quotes, or in single quotes opened after a
                non-word character (so ``don't`` stays a word)
``<hex>``       ``0x``-prefixed numbers
``<num>``       digit runs that start a word (``42``, ``3.5``, ``1,000``),
                keeping a unit suffix of up to 3 letters (``31ms`` ->
                ``<num>ms``); inside paths too (``/users/42`` ->
                ``/users/<num>``)
``<hex>``       what is left of words made of hex digits containing a digit
                (``8f3a2b9c``, ``a1b2``), i.e. hashes and generated ids
==============  ==========================================================

Words that merely contain digits after letters (``ipv4``, ``http2``, ``user123``)
are kept: they are usually names, not values. Different words never merge.

The same rules exist twice, once for Python's :mod:`re` (:func:`message_pattern`)
and once as a polars expression (:func:`pattern_expr`, run in Rust over a whole
column). Both use only syntax the two regex engines share (no look-around), and
the tests check they agree.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

# (regex, replacement with "{1}" for the first group). One table for both engines.
_RULES: Final[tuple[tuple[str, str], ...]] = (
    (r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", "<email>"),
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "<uuid>",
    ),
    (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?\b", "<ip>"),
    (r'"[^"\n]*"', "<str>"),
    (r"(^|[^\w])'[^'\n]*'", "{1}<str>"),
    (r"\b0[xX][0-9a-fA-F]+\b", "<hex>"),
    (r"\b\d+(?:[.,]\d+)*([A-Za-z]{0,3})\b", "<num>{1}"),
    (r"\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b", "<hex>"),
)

_COMPILED: Final = tuple((re.compile(rx), repl.replace("{1}", r"\g<1>")) for rx, repl in _RULES)


def message_pattern(message: str) -> str:
    """Return the pattern of one message: numbers, ids, IPs, emails and quoted values as placeholders."""
    for rx, repl in _COMPILED:
        message = rx.sub(repl, message)
    return message


def pattern_expr(messages: pl.Expr | str = "message") -> pl.Expr:
    """Return a polars expression computing :func:`message_pattern` of every value of ``messages``."""
    expr = pl.col(messages) if isinstance(messages, str) else messages
    for rx, repl in _RULES:
        expr = expr.str.replace_all(rx, repl.replace("{1}", "${1}"))
    return expr


def message_patterns(messages: pl.Series) -> pl.Series:
    """Return the pattern of every message of a string Series (vectorised, same name)."""
    return messages.to_frame("m").select(pattern_expr("m").alias(messages.name)).to_series()


def top_messages(lf: pl.LazyFrame, *, limit: int = 20) -> pl.DataFrame:
    """Return the ``limit`` most frequent message patterns of ``lf``, most frequent first.

    Columns: ``pattern``, ``count`` (events), ``example`` (the most frequent
    concrete message of the pattern), ``services`` (sorted list),
    ``first_seen`` / ``last_seen`` (event times). ``lf`` needs the columns
    ``message``, ``service`` and ``timestamp`` (the lake schema has them);
    filter it first (time, levels, service) to choose what is counted.
    """
    # Messages repeat a lot: patterning each distinct message once, then merging
    # the per-message groups, runs the regexes over far fewer rows.
    per_message = lf.group_by("message").agg(
        n=pl.len(),
        services=pl.col("service").unique(),
        first_seen=pl.col("timestamp").min(),
        last_seen=pl.col("timestamp").max(),
    )
    return (
        per_message.with_columns(pattern=pattern_expr("message"))
        .group_by("pattern")
        .agg(
            count=pl.col("n").sum(),
            example=pl.col("message").sort_by("n", descending=True).first(),
            services=pl.col("services").explode().unique().sort(),
            first_seen=pl.col("first_seen").min(),
            last_seen=pl.col("last_seen").max(),
        )
        .sort(["count", "pattern"], descending=[True, False])
        .head(limit)
        .select(
            pl.col("pattern"),
            pl.col("count").cast(pl.Int64),
            "example",
            "services",
            "first_seen",
            "last_seen",
        )
        .collect()
    )
