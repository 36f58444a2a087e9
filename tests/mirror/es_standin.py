"""A STAND-IN for Elasticsearch, for tests only: NOT Elasticsearch, not a search engine.

No Elasticsearch server can be installed on the build machine, so the mirror's
integration tests run against this small HTTP server. It speaks the subset of the
Elasticsearch REST API the mirror and its tests use, and it is strict where that
subset is: request bodies are validated the way Elasticsearch validates them, and
rejected with Elasticsearch's error types and statuses.

Supported: ``GET|HEAD /`` (version), ``GET /_cluster/health``,
``PUT|POST [/<index>]/_bulk`` (NDJSON; index/create/delete; per-item results),
``PUT|GET|DELETE /_index_template/<name>``, ``GET|POST [/<index>]/_count`` and
``_search`` (queries ``match_all term terms match range bool ids exists``; ``sort``,
``from``/``size``, ``track_total_hits``, ``terms`` aggregations), ``_refresh``,
``HEAD|GET|DELETE /<index>``. Index expressions may be comma lists and wildcards.

Dynamic mapping as Elasticsearch: the first value seen for a field fixes its type
(string -> text + keyword, or date when it looks like one; integer -> long; float
-> float; boolean; object); a later value of another type fails that one item with
``400 mapper_parsing_exception`` and does not change the mapping. Documents are
searchable at once (no refresh interval).

Knobs for failure tests: :attr:`ElasticStandin.down` (``"refuse"``: connections are
closed, like a dead node; ``"503"``: a proxy answering 503), :attr:`delay_s` (slow
answers), :attr:`reject` (a predicate failing chosen documents with a 400 mapping
error), :attr:`item_status` (inject per-item statuses such as 429).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "9.0.0"
_ACTIONS = ("create", "delete", "index", "update")
_ACTION_PARAMS = {
    "_index",
    "_id",
    "routing",
    "if_seq_no",
    "if_primary_term",
    "version",
    "version_type",
    "pipeline",
    "require_alias",
    "dynamic_templates",
    "op_type",
    "require_data_stream",
    "list_executed_pipelines",
    "retry_on_conflict",
    "_source",
}
_FIELD_TYPES = {
    "keyword",
    "text",
    "long",
    "integer",
    "float",
    "double",
    "boolean",
    "date",
    "date_nanos",
    "object",
    "flattened",
    "ip",
    "match_only_text",
    "wildcard",
}
_DATE_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_BAD_INDEX_CHARS = set(' "*\\<|,>/?#:')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATES = ("date", "date_nanos")


class EsError(Exception):
    """An Elasticsearch error answer: status, type and reason."""

    def __init__(self, status: int, etype: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.etype, self.reason, self.extra = status, etype, reason, extra

    def body(self) -> dict[str, Any]:
        """Return the error as Elasticsearch's ``{"error": {...}, "status": n}`` body."""
        err = {"type": self.etype, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [dict(err)], **err}, "status": self.status}

    def item(self) -> dict[str, Any]:
        """Return the error as a bulk item's ``error`` object."""
        return {"type": self.etype, "reason": self.reason, **self.extra}


def _parse_date(value: Any) -> int:
    """Return epoch microseconds of an ISO string or epoch-millis number; raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"failed to parse date field [{value}]")
    if isinstance(value, int | float):
        return int(value * 1000)
    if isinstance(value, str) and _DATE_RE.match(value):
        v = value.replace(" ", "T").replace(",", ".").replace("Z", "+00:00")
        if "." in v:  # Python accepts at most 6 fraction digits
            head, _, tail = v.partition(".")
            m = re.match(r"(\d+)(.*)", tail)
            assert m
            v = f"{head}.{m.group(1)[:6].ljust(6, '0')}{m.group(2)}"
        dt = datetime.fromisoformat(v)
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        return (dt - _EPOCH) // timedelta(microseconds=1)
    raise ValueError(
        f"failed to parse date field [{value}] with format [strict_date_optional_time||epoch_millis]"
    )


def _date_key(ftype: str | None, value: Any) -> int:
    """Return the indexed value of a date: milliseconds for ``date``, nanoseconds for ``date_nanos``."""
    us = _parse_date(value)
    return us * 1000 if ftype == "date_nanos" else us // 1000


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class Index:
    """One index: its mapping (a properties tree) and its documents."""

    def __init__(self, name: str, mappings: dict[str, Any]) -> None:
        self.name = name
        self.uuid = uuid.uuid4().hex[:22]
        self.mappings = json.loads(json.dumps(mappings or {"properties": {}}))
        self.mappings.setdefault("properties", {})
        self.docs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.seq = 0

    # -- mapping --------------------------------------------------------------

    def field(self, path: str) -> dict[str, Any] | None:
        """Return the mapping of a dotted field path (``message.keyword`` included)."""
        props = self.mappings["properties"]
        parts = path.split(".")
        node: dict[str, Any] | None = None
        for i, p in enumerate(parts):
            if props is None or p not in props:
                if (
                    node is not None
                    and "fields" in node
                    and p in node["fields"]
                    and i == len(parts) - 1
                ):
                    sub: dict[str, Any] = node["fields"][p]
                    return sub
                return None
            node = props[p]
            props = node.get("properties") if node.get("type", "object") == "object" else None
        return node

    def apply(self, doc_id: str, source: dict[str, Any]) -> None:
        """Check ``source`` against the mapping, adding dynamic fields; raise EsError on conflict."""
        added: list[tuple[dict[str, Any], str]] = []
        try:
            self._walk(
                self.mappings["properties"],
                _expand_dots(source, doc_id),
                "",
                doc_id,
                self.mappings.get("dynamic", True),
                added,
            )
        except EsError:
            # A rejected document leaves the mapping as it was (Elasticsearch
            # applies a document's dynamic mapping update only if it parses).
            for props, key in reversed(added):
                props.pop(key, None)
            raise

    def _walk(
        self,
        props: dict[str, Any],
        obj: dict[str, Any],
        prefix: str,
        doc_id: str,
        dynamic: Any,
        added: list[tuple[dict[str, Any], str]],
    ) -> None:
        for key, value in obj.items():
            path = f"{prefix}{key}"
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is None:
                    continue
                mapping = props.get(key)
                if mapping is None:
                    if dynamic in (False, "false"):
                        continue
                    if dynamic == "strict":
                        raise EsError(
                            400,
                            "strict_dynamic_mapping_exception",
                            f"[{prefix.rstrip('.') or '_doc'}] object mapping does not "
                            f"allow dynamic fields; field [{path}] is not allowed",
                        )
                    mapping = props[key] = _dynamic_type(v)
                    added.append((props, key))
                _check(mapping, v, path, doc_id)
                if isinstance(v, dict):
                    sub = mapping.setdefault("properties", {})
                    self._walk(sub, v, f"{path}.", doc_id, mapping.get("dynamic", dynamic), added)

    # -- reading --------------------------------------------------------------

    def values(self, source: dict[str, Any], path: str) -> list[Any]:
        """Return the values of a field path in a document (``x.keyword`` reads ``x``)."""
        node: Any = _expand_dots(source, "")
        parts = path.split(".")
        mapping = self.field(path)
        if len(parts) > 1:  # a multi-field such as message.keyword reads message
            parent = self.field(".".join(parts[:-1])) or {}
            if parts[-1] in parent.get("fields", {}):
                parts = parts[:-1]
        cur: list[Any] = [node]
        for p in parts:
            nxt: list[Any] = []
            for c in cur:
                items = c if isinstance(c, list) else [c]
                for it in items:
                    if isinstance(it, dict) and p in it:
                        nxt.append(it[p])
            cur = nxt
        flat: list[Any] = []
        for c in cur:
            flat.extend(c if isinstance(c, list) else [c])
        flat = [v for v in flat if v is not None]
        above = (mapping or {}).get("ignore_above")
        if above is not None:
            flat = [v for v in flat if not (isinstance(v, str) and len(v) > above)]
        return flat


def _expand_dots(obj: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """Return the object with dotted keys expanded to objects, as Elasticsearch indexes them."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if not key.strip() or key.startswith(".") or key.endswith(".") or ".." in key:
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"failed to parse: field name cannot contain only whitespace or "
                f"empty dot-separated parts: ['{key}']"
                if key.strip()
                else "failed to parse: field name cannot be an empty string",
            )
        if isinstance(value, dict):
            value = _expand_dots(value, doc_id)
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise EsError(
                    400,
                    "mapper_parsing_exception",
                    f"failed to parse: object mapping for [{p}] tried to parse "
                    "field as object, but found a concrete value",
                )
            node = nxt
        last = parts[-1]
        if isinstance(node.get(last), dict) and isinstance(value, dict):
            node[last].update(value)
        else:
            node[last] = value
    return out


def _dynamic_type(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return {"type": "object", "properties": {}}
    if isinstance(v, bool):
        return {"type": "boolean"}
    if isinstance(v, int):
        return {"type": "long"}
    if isinstance(v, float):
        return {"type": "float"}
    if isinstance(v, str):
        try:
            _parse_date(v)
            return {"type": "date"}
        except ValueError:
            pass
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    raise EsError(400, "mapper_parsing_exception", f"failed to parse value [{v!r}]")


def _check(mapping: dict[str, Any], v: Any, path: str, doc_id: str) -> None:
    """Raise the item error Elasticsearch gives when ``v`` does not fit the field's type."""
    ftype = mapping.get("type", "object")
    preview = json.dumps(v)[:40]

    def fail(cause_type: str, cause: str) -> EsError:
        return EsError(
            400,
            "document_parsing_exception",
            f"[1:1] failed to parse field [{path}] of type [{ftype}] in document with id "
            f"'{doc_id}'. Preview of field's value: '{preview}'",
            caused_by={"type": cause_type, "reason": cause},
        )

    if ftype == "object":
        if not isinstance(v, dict):
            raise EsError(
                400,
                "document_parsing_exception",
                f"[1:1] object mapping for [{path}] tried to parse field "
                f"[{path.rsplit('.', 1)[-1]}] as object, but found a concrete value",
            )
        return
    if isinstance(v, dict):
        raise fail("illegal_state_exception", "Can't get text on a START_OBJECT")
    if ftype in ("keyword", "text", "match_only_text", "wildcard"):
        return
    if ftype in ("long", "integer"):
        if isinstance(v, bool):
            raise fail("illegal_argument_exception", "Current token (VALUE_TRUE) not numeric")
        if isinstance(v, int | float):
            return
        try:
            float(v)
        except (TypeError, ValueError):
            raise fail("number_format_exception", f'For input string: "{v}"') from None
        return
    if ftype in ("float", "double"):
        if isinstance(v, bool):
            raise fail("illegal_argument_exception", "Current token (VALUE_TRUE) not numeric")
        try:
            float(v)
        except (TypeError, ValueError):
            raise fail("number_format_exception", f'For input string: "{v}"') from None
        return
    if ftype == "boolean":
        if isinstance(v, bool) or v in ("true", "false", ""):
            return
        raise fail(
            "illegal_argument_exception",
            f"Failed to parse value [{v}] as only [true] or [false] are allowed.",
        )
    if ftype in _DATES:
        try:
            _parse_date(v)
        except ValueError as exc:
            raise fail("illegal_argument_exception", str(exc)) from None


def _check_mappings(props: dict[str, Any], prefix: str = "") -> None:
    for name, m in props.items():
        if not isinstance(m, dict):
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"Expected map for property [fields] on field [{prefix}{name}]",
            )
        ftype = m.get("type", "object")
        if ftype not in _FIELD_TYPES:
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"No handler for type [{ftype}] declared on field [{prefix}{name}]",
            )
        if "properties" in m:
            _check_mappings(m["properties"], f"{prefix}{name}.")
        for sub in m.get("fields", {}).values():
            _check_mappings({"_": sub}, f"{prefix}{name}.")


class ElasticStandin:
    """The stand-in server (NOT Elasticsearch): state, knobs, and a thread serving 127.0.0.1."""

    def __init__(self, *, keep_documents: bool = True) -> None:
        """Create a stopped stand-in; ``keep_documents=False`` validates and maps but stores nothing
        (benchmarks: memory stays flat; counts and searches then see no documents)."""
        self.keep_documents = keep_documents
        self.lock = threading.RLock()
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.down: str | None = None
        self.delay_s = 0.0
        self.reject: Callable[[str, str, dict[str, Any]], str | None] | None = None
        self.item_status: Callable[[str, str, dict[str, Any]], int | None] | None = None
        self.requests: list[tuple[str, str]] = []
        self.last_headers: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL clients use."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start serving on 127.0.0.1 (a free port the first time, the same port after); return the URL."""
        standin = self

        class Handler(_Handler):
            server_state = standin

        server = _Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="es-standin",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the listening socket (clients get connection refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def go_down(self, mode: str = "refuse") -> None:
        """Make the server unavailable: ``refuse`` (connections refused/closed) or ``503``."""
        self.down = mode
        if mode == "refuse":
            self.stop()

    def come_back(self) -> None:
        """Make the server available again (same port, same data)."""
        was = self.down
        self.down = None
        if was == "refuse" and self._server is None:
            self.start()

    # -- operations -----------------------------------------------------------

    def resolve(
        self, expr: str, *, ignore_unavailable: bool = False, allow_no_indices: bool = True
    ) -> list[Index]:
        """Return the indices of an index expression (comma list, wildcards, ``_all``)."""
        out: dict[str, Index] = {}
        for part in [p for p in expr.split(",") if p] or ["_all"]:
            if part in ("_all", "*"):
                out.update(self.indices)
            elif "*" in part or "?" in part:
                matched = {n: i for n, i in self.indices.items() if fnmatch.fnmatchcase(n, part)}
                if not matched and not allow_no_indices:
                    raise _not_found(part)
                out.update(matched)
            elif part in self.indices:
                out[part] = self.indices[part]
            elif not ignore_unavailable:
                raise _not_found(part)
        return list(out.values())

    def get_or_create(self, name: str) -> Index:
        """Return an index, creating it from the best matching template (auto-create)."""
        idx = self.indices.get(name)
        if idx is not None:
            return idx
        _validate_index_name(name)
        best: dict[str, Any] | None = None
        for t in self.templates.values():
            if any(fnmatch.fnmatchcase(name, p) for p in t["index_patterns"]) and (
                best is None or t.get("priority", 0) > best.get("priority", 0)
            ):
                best = t
        mappings = (best or {}).get("template", {}).get("mappings", {})
        idx = self.indices[name] = Index(name, mappings)
        return idx

    def count(self, expr: str = "_all", query: dict[str, Any] | None = None) -> int:
        """Return how many documents match (a helper for tests, no HTTP)."""
        with self.lock:
            return sum(
                1
                for i in self.resolve(expr, ignore_unavailable=True)
                for d in i.docs.values()
                if _matches(i, d, query or {"match_all": {}})
            )


def _not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        **{"resource.type": "index_or_alias", "resource.id": name},
    )


def _validate_index_name(name: str) -> None:
    if (
        name != name.lower()
        or name.startswith(("_", "-", "+"))
        or name in (".", "..")
        or any(c in _BAD_INDEX_CHARS for c in name)
        or len(name.encode()) > 255
    ):
        raise EsError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], must be lowercase and must not contain "
            'the characters [ , ", *, \\, <, |, ,, >, /, ?]',
            index=name,
        )


# -- queries ------------------------------------------------------------------


def _listify(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def _field_type(idx: Index, field: str) -> str | None:
    if field == "_id":
        return "keyword"
    m = idx.field(field)
    return None if m is None else m.get("type", "object")


def _eq(idx: Index, ftype: str | None, value: Any, query: Any) -> bool:
    if ftype == "text":
        return isinstance(value, str) and str(query) in _tokens(value)
    if ftype in ("long", "integer", "float", "double"):
        try:
            return float(value) == float(query)
        except (TypeError, ValueError):
            return False
    if ftype in _DATES:
        try:
            return _date_key(ftype, value) == _date_key(ftype, query)
        except ValueError:
            return False
    if ftype == "boolean":
        return str(value).lower() == str(query).lower()
    return isinstance(value, str | int | float | bool) and str(value) == str(query)


def _single(q: dict[str, Any], kind: str) -> tuple[str, Any]:
    if not isinstance(q, dict) or len(q) != 1:
        raise EsError(
            400,
            "parsing_exception",
            f"[{kind}] query doesn't support multiple fields, found {list(q)}",
        )
    return next(iter(q.items()))


_LEAF_QUERIES = {
    "match_all",
    "match_none",
    "ids",
    "exists",
    "term",
    "terms",
    "match",
    "match_phrase",
    "range",
    "prefix",
    "wildcard",
}


def _wildcard_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """Return the regex of an Elasticsearch wildcard pattern (``*``, ``?``, backslash escapes)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S | (re.I if case_insensitive else 0))


def _validate_query(q: Any) -> None:
    """Raise the parse error Elasticsearch gives for an unknown or malformed query (before any match)."""
    if not isinstance(q, dict) or len(q) != 1:
        raise EsError(
            400, "parsing_exception", "[_na] query malformed, no start_object after query name"
        )
    kind, body = next(iter(q.items()))
    if kind == "bool":
        if not isinstance(body, dict):
            raise EsError(400, "parsing_exception", "[bool] query malformed")
        for clause in ("must", "filter", "should", "must_not"):
            for sub in _listify(body.get(clause, [])):
                _validate_query(sub)
    elif kind not in _LEAF_QUERIES:
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]")
    elif not isinstance(body, dict):
        raise EsError(400, "parsing_exception", f"[{kind}] query malformed, no start_object")


def _matches(idx: Index, doc: dict[str, Any], q: dict[str, Any]) -> bool:
    if not isinstance(q, dict) or len(q) != 1:
        raise EsError(
            400, "parsing_exception", "[_na] query malformed, no start_object after query name"
        )
    kind: str
    body: Any
    kind, body = next(iter(q.items()))
    doc_id = doc["__id"]
    src = doc["__source"]
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "ids":
        return doc_id in [str(v) for v in body.get("values", [])]
    if kind == "exists":
        return bool(idx.values(src, body["field"]))
    if kind in ("term", "terms", "match", "match_phrase", "range", "prefix", "wildcard"):
        if kind == "terms":
            body = {k: v for k, v in body.items() if k != "boost"}
        field, spec = _single(body, kind)
        ftype = _field_type(idx, field)
        values = [doc_id] if field == "_id" else idx.values(src, field)
        if kind == "term":
            target = spec.get("value") if isinstance(spec, dict) else spec
            return any(_eq(idx, ftype, v, target) for v in values)
        if kind == "terms":
            return any(_eq(idx, ftype, v, t) for v in values for t in _listify(spec))
        if kind == "wildcard":
            if not isinstance(spec, dict):
                spec = {"value": spec}
            unknown = set(spec) - {"value", "wildcard", "case_insensitive", "boost", "rewrite"}
            if unknown:
                raise EsError(
                    400, "parsing_exception", f"[wildcard] query does not support [{unknown.pop()}]"
                )
            if ftype == "text":  # matches single analysed terms, not the whole text
                rx = _wildcard_regex(str(spec.get("value", spec.get("wildcard"))), True)
                return any(rx.fullmatch(t) for v in values for t in _tokens(str(v)))
            rx = _wildcard_regex(
                str(spec.get("value", spec.get("wildcard"))),
                bool(spec.get("case_insensitive", False)),
            )
            return any(isinstance(v, str) and rx.fullmatch(v) for v in values)
        if kind == "prefix":
            target = spec.get("value") if isinstance(spec, dict) else spec
            return any(isinstance(v, str) and v.startswith(str(target)) for v in values)
        if kind in ("match", "match_phrase"):
            text = spec.get("query") if isinstance(spec, dict) else spec
            if ftype != "text":
                return any(_eq(idx, ftype, v, text) for v in values)
            wanted = _tokens(str(text))
            op = (spec.get("operator", "or") if isinstance(spec, dict) else "or").lower()
            for v in values:
                toks = _tokens(str(v))
                if kind == "match_phrase":
                    n = len(wanted)
                    if any(toks[i : i + n] == wanted for i in range(len(toks) - n + 1)):
                        return True
                elif (all if op == "and" else any)(w in toks for w in wanted):
                    return True
            return False
        # range
        unknown = set(spec) - {"gt", "gte", "lt", "lte", "format", "time_zone", "boost"}
        if unknown:
            raise EsError(
                400, "parsing_exception", f"[range] query does not support [{unknown.pop()}]"
            )
        conv: Callable[[Any], Any]
        if ftype in _DATES:

            def conv(v: Any, ftype: str | None = ftype) -> Any:
                return _date_key(ftype, v)
        elif ftype in ("long", "integer", "float", "double"):
            conv = float
        else:
            conv = str
        for v in values:
            try:
                x: Any = conv(v)
                if (
                    ("gt" in spec and not x > conv(spec["gt"]))
                    or ("gte" in spec and not x >= conv(spec["gte"]))
                    or ("lt" in spec and not x < conv(spec["lt"]))
                    or ("lte" in spec and not x <= conv(spec["lte"]))
                ):
                    continue
            except ValueError as exc:
                raise EsError(400, "parse_exception", str(exc)) from None
            return True
        return False
    if kind == "bool":
        unknown = set(body) - {
            "must",
            "filter",
            "should",
            "must_not",
            "minimum_should_match",
            "boost",
        }
        if unknown:
            raise EsError(
                400, "x_content_parse_exception", f"[bool] unknown field [{unknown.pop()}]"
            )
        must = _listify(body.get("must", [])) + _listify(body.get("filter", []))
        should = _listify(body.get("should", []))
        if not all(_matches(idx, doc, c) for c in must):
            return False
        if any(_matches(idx, doc, c) for c in _listify(body.get("must_not", []))):
            return False
        msm = body.get("minimum_should_match", 0 if must else 1 if should else 0)
        return sum(_matches(idx, doc, c) for c in should) >= int(msm)
    raise EsError(400, "parsing_exception", f"unknown query [{kind}]")


# -- HTTP -----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (a killed follower, a test's
        # timeout) is normal here, not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: ElasticStandin

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def _send(self, status: int, body: Any, *, product: bool = True) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if product:
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        st = self.server_state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if st.down == "refuse":
            # A dead node: no answer, the connection just goes away.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if st.delay_s:
            time.sleep(st.delay_s)
        if st.down == "503":
            page = b"<html><body>503 Service Unavailable</body></html>"
            self.send_response(503)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        st.requests.append((self.command, url.path))
        st.last_headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            self._check_media_types(raw)
            with st.lock:
                status, body = _route(st, self.command, parts, params, raw)
        except EsError as exc:
            status, body = exc.status, exc.body()
        self._send(status, body)

    def _check_media_types(self, raw: bytes) -> None:
        for header in ("Content-Type", "Accept"):
            value = self.headers.get(header)
            if value is None or (header == "Content-Type" and not raw):
                continue
            for v in value.split(","):
                m = re.match(
                    r"\s*application/(?:vnd\.elasticsearch\+)?(json|x-ndjson)\s*(;.*)?$", v
                )
                if header == "Accept" and v.strip() in ("*/*", ""):
                    continue
                if not m:
                    raise EsError(
                        406 if header == "Accept" else 400,
                        "media_type_header_exception",
                        f"Invalid media-type value on headers [{header}]",
                    )
                compat = re.search(r"compatible-with=(\d+)", m.group(2) or "")
                if compat and compat.group(1) not in ("8", "9"):
                    raise EsError(
                        400,
                        "media_type_header_exception",
                        f"A compatible version is required on both Content-Type and "
                        f"Accept headers; version {compat.group(1)} is not supported",
                    )

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def _json_body(raw: bytes, *, required: bool = False) -> dict[str, Any]:
    if not raw.strip():
        if required:
            raise EsError(400, "parse_exception", "request body is required")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise EsError(
            400, "x_content_parse_exception", f"Failed to parse request body: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise EsError(400, "parse_exception", "request body must be a JSON object")
    return body


def _route(
    st: ElasticStandin, method: str, parts: list[str], params: dict[str, str], raw: bytes
) -> tuple[int, Any]:
    flag = {k: params.get(k, "false") in ("true", "") for k in ("ignore_unavailable",)}
    if not parts:
        if method in ("GET", "HEAD"):
            return 200, {
                "name": "standin",
                "cluster_name": "es-standin",
                "cluster_uuid": "standin",
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "build_type": "standin",
                    "lucene_version": "10.0.0",
                    "minimum_wire_compatibility_version": "8.18.0",
                    "minimum_index_compatibility_version": "8.0.0",
                },
                "tagline": "You Know, for Search (stand-in)",
            }
    elif parts == ["_cluster", "health"] and method == "GET":
        return 200, {
            "cluster_name": "es-standin",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": len(st.indices),
            "active_shards": len(st.indices),
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
        }
    elif parts[0] == "_index_template" and len(parts) == 2:
        return _template(st, method, parts[1], raw)
    elif parts[-1] == "_bulk" and len(parts) <= 2 and method in ("POST", "PUT"):
        return _bulk(st, raw, parts[0] if len(parts) == 2 else None, params)
    elif (
        parts[-1] in ("_count", "_search", "_refresh")
        and len(parts) <= 2
        and method in ("GET", "POST")
    ):
        indices = st.resolve(
            parts[0] if len(parts) == 2 else "_all",
            ignore_unavailable=flag["ignore_unavailable"],
            allow_no_indices=params.get("allow_no_indices", "true") != "false",
        )
        if parts[-1] == "_refresh":
            return 200, {
                "_shards": {"total": len(indices), "successful": len(indices), "failed": 0}
            }
        body = _json_body(raw)
        if parts[-1] == "_count":
            unknown = set(body) - {"query"}
            if unknown:
                raise EsError(
                    400, "parsing_exception", f"request does not support [{unknown.pop()}]"
                )
            q = body.get("query", {"match_all": {}})
            _validate_query(q)
            n = sum(1 for i in indices for d in i.docs.values() if _matches(i, d, q))
            return 200, {"count": n, "_shards": _shards(indices)}
        return 200, _search(indices, body, params)
    elif len(parts) == 1 and not parts[0].startswith("_"):
        if method in ("GET", "HEAD"):
            idx = st.resolve(parts[0])
            return 200, {
                i.name: {"aliases": {}, "mappings": i.mappings, "settings": {}} for i in idx
            }
        if method == "DELETE":
            if "*" in parts[0]:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    "Wildcard expressions or all indices are not allowed",
                )
            for i in st.resolve(parts[0]):
                del st.indices[i.name]
            return 200, {"acknowledged": True}
    raise EsError(
        400,
        "illegal_argument_exception",
        f"no handler found for uri [/{'/'.join(parts)}] and method [{method}]",
    )


def _shards(indices: list[Index]) -> dict[str, int]:
    return {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0}


def _template(st: ElasticStandin, method: str, name: str, raw: bytes) -> tuple[int, Any]:
    if method == "GET":
        if name not in st.templates and "*" not in name:
            raise EsError(
                404, "resource_not_found_exception", f"index template matching [{name}] not found"
            )
        return 200, {
            "index_templates": [
                {"name": n, "index_template": t}
                for n, t in st.templates.items()
                if fnmatch.fnmatchcase(n, name)
            ]
        }
    if method == "DELETE":
        if st.templates.pop(name, None) is None:
            raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
        return 200, {"acknowledged": True}
    if method not in ("PUT", "POST"):
        raise EsError(405, "illegal_argument_exception", f"method [{method}] not allowed")
    body = _json_body(raw, required=True)
    allowed = {
        "index_patterns",
        "template",
        "priority",
        "composed_of",
        "version",
        "_meta",
        "data_stream",
        "allow_auto_create",
        "ignore_missing_component_templates",
        "deprecated",
    }
    unknown = set(body) - allowed
    if unknown:
        raise EsError(
            400,
            "x_content_parse_exception",
            f"[index_template] unknown field [{sorted(unknown)[0]}]",
        )
    patterns = body.get("index_patterns")
    if not patterns:
        raise EsError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        )
    patterns = _listify(patterns)
    template = body.get("template", {})
    unknown = set(template) - {"mappings", "settings", "aliases", "lifecycle"}
    if unknown:
        raise EsError(
            400, "x_content_parse_exception", f"[template] unknown field [{unknown.pop()}]"
        )
    mappings = template.get("mappings", {})
    unknown = set(mappings) - {
        "properties",
        "dynamic",
        "dynamic_templates",
        "_source",
        "date_detection",
        "numeric_detection",
        "_meta",
        "runtime",
    }
    if unknown:
        raise EsError(
            400,
            "mapper_parsing_exception",
            f"Root mapping definition has unsupported parameters: [{unknown.pop()}]",
        )
    _check_mappings(mappings.get("properties", {}))
    priority = int(body.get("priority", 0))
    for other, t in st.templates.items():
        if (
            other != name
            and t.get("priority", 0) == priority
            and any(
                fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)
                for a in patterns
                for b in t["index_patterns"]
            )
        ):
            raise EsError(
                400,
                "illegal_argument_exception",
                f"index template [{name}] has index patterns {patterns} matching "
                f"patterns from existing templates [{other}] with the same priority",
            )
    st.templates[name] = {**body, "index_patterns": patterns, "priority": priority}
    return 200, {"acknowledged": True}


def _bulk(
    st: ElasticStandin, raw: bytes, default_index: str | None, params: dict[str, str]
) -> tuple[int, Any]:
    if not raw:
        raise EsError(400, "parse_exception", "request body is required")
    if not raw.endswith(b"\n"):
        raise EsError(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        )
    lines = raw.decode("utf-8").split("\n")[:-1]
    ops: list[tuple[str, dict[str, Any], Any]] = []
    i = 0
    while i < len(lines):
        line_no = i + 1
        if not lines[i].strip():
            i += 1
            continue
        try:
            action = json.loads(lines[i])
        except ValueError:
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[{line_no}:1] Malformed action/metadata line [{line_no}], expected START_OBJECT",
            ) from None
        if not isinstance(action, dict) or len(action) != 1:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected START_OBJECT "
                "or exactly one action",
            )
        op, meta = next(iter(action.items()))
        if op not in _ACTIONS:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected field [create], "
                f"[delete], [index] or [update] but found [{op}]",
            )
        if not isinstance(meta, dict):
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected START_OBJECT",
            )
        for key in meta:
            if key not in _ACTION_PARAMS:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]",
                )
        source: Any = None
        if op != "delete":
            if i + 1 >= len(lines):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    "The bulk request must be terminated by a newline [\\n]",
                )
            source = lines[i + 1]
            i += 2
        else:
            i += 1
        index = meta.get("_index", default_index)
        if not index:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            )
        if "_id" in meta and (not isinstance(meta["_id"], str) or len(meta["_id"].encode()) > 512):
            raise EsError(
                400,
                "action_request_validation_exception",
                f"Validation Failed: 1: id [{meta['_id']}] is too long, must be no "
                "longer than 512 bytes but was: " + str(len(str(meta["_id"]).encode())) + ";",
            )
        if op in ("delete", "update") and not meta.get("_id"):
            raise EsError(
                400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"
            )
        ops.append((op, {**meta, "_index": index}, source))
    if not ops:
        raise EsError(
            400, "action_request_validation_exception", "Validation Failed: 1: no requests added;"
        )
    items = [_bulk_item(st, op, meta, source) for op, meta, source in ops]
    errors = any("error" in next(iter(it.values())) for it in items)
    return 200, {"errors": errors, "took": 1, "items": items}


def _bulk_item(
    st: ElasticStandin, op: str, meta: dict[str, Any], raw_source: Any
) -> dict[str, Any]:
    index = meta["_index"]
    doc_id = meta.get("_id") or uuid.uuid4().hex[:20]
    head = {"_index": index, "_id": doc_id}
    try:
        if op == "update":
            raise EsError(400, "illegal_argument_exception", "the stand-in does not support update")
        if op == "delete":
            idx = st.indices.get(index)
            if idx is None or idx.docs.pop(doc_id, None) is None:
                return {op: {**head, "result": "not_found", "status": 404, "_version": 1}}
            return {op: {**head, "result": "deleted", "status": 200, "_version": 1}}
        try:
            source = json.loads(raw_source)
        except ValueError as exc:
            raise EsError(
                400, "document_parsing_exception", f"[1:1] failed to parse: {exc}"
            ) from None
        if not isinstance(source, dict):
            raise EsError(
                400,
                "document_parsing_exception",
                "[1:1] failed to parse: Root value of a document must be an object",
            )
        idx = st.get_or_create(index)
        if st.item_status is not None:
            status = st.item_status(index, doc_id, source)
            if status is not None:
                raise EsError(
                    status,
                    "es_rejected_execution_exception"
                    if status == 429
                    else "unavailable_shards_exception",
                    f"injected status {status}",
                )
        if st.reject is not None:
            reason = st.reject(index, doc_id, source)
            if reason:
                raise EsError(400, "document_parsing_exception", reason)
        if op == "create" and doc_id in idx.docs:
            raise EsError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists",
            )
        idx.apply(doc_id, source)
        created = doc_id not in idx.docs
        if st.keep_documents:
            idx.docs[doc_id] = {"__id": doc_id, "__source": source}
        idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1
        idx.seq += 1
        return {
            op: {
                **head,
                "_version": idx.versions[doc_id],
                "result": "created" if created else "updated",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": idx.seq,
                "_primary_term": 1,
                "status": 201 if created else 200,
            }
        }
    except EsError as exc:
        return {op: {**head, "status": exc.status, "error": {**exc.item(), "index": index}}}


def _search(indices: list[Index], body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    allowed = {
        "query",
        "size",
        "from",
        "sort",
        "aggs",
        "aggregations",
        "track_total_hits",
        "_source",
        "search_after",
    }
    unknown = set(body) - allowed
    if unknown:
        raise EsError(
            400, "parsing_exception", f"Unknown key for a START_OBJECT in [{unknown.pop()}]."
        )
    q = body.get("query", {"match_all": {}})
    _validate_query(q)
    hits = [(i, d) for i in indices for d in i.docs.values() if _matches(i, d, q)]
    sorts: list[tuple[str, str]] = []
    for spec in _listify(body.get("sort", [])):
        field, order = (spec, "asc") if isinstance(spec, str) else next(iter(spec.items()))
        if isinstance(order, dict):
            order = order.get("order", "asc")
        if field in ("_score", "_doc"):
            continue
        for i, _ in hits:
            if _field_type(i, field) == "text":
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Text fields are not optimised for operations that require per-document "
                    f"field data like aggregations and sorting, so these operations are "
                    f"disabled by default. Please use a keyword field instead. [{field}]",
                )
        sorts.append((field, str(order)))
    after = body.get("search_after")
    if after is not None and (not isinstance(after, list) or len(after) != len(sorts)):
        raise EsError(
            400,
            "illegal_argument_exception",
            "search_after has 1 value(s) but sort has " + str(len(sorts)) + ".",
        )

    def sort_values(h: tuple[Index, dict[str, Any]]) -> list[Any]:
        out = []
        for field, _ in sorts:
            vs = [h[1]["__id"]] if field == "_id" else h[0].values(h[1]["__source"], field)
            ft = _field_type(h[0], field)
            out.append(None if not vs else _date_key(ft, vs[0]) if ft in _DATES else vs[0])
        return out

    def compare(a: list[Any], b: list[Any]) -> int:
        for (_, order), x, y in zip(sorts, a, b, strict=True):
            if x == y:
                continue
            if x is None or y is None:  # missing values last, whatever the order
                return 1 if x is None else -1
            c = -1 if x < y else 1
            return -c if order == "desc" else c
        return 0

    # search_after narrows the page, not the total or the aggregations (as Elasticsearch).
    matched, all_hits = len(hits), hits
    if sorts:
        Pair = tuple[list[Any], tuple[Index, dict[str, Any]]]

        def by_values(p: Pair, q: Pair) -> int:
            return compare(p[0], q[0])

        decorated: list[Pair] = sorted(
            ((sort_values(h), h) for h in hits), key=functools.cmp_to_key(by_values)
        )
        if after is not None:
            decorated = [p for p in decorated if compare(p[0], after) > 0]
        hits = [h for _, h in decorated]
        sort_of: dict[int, list[Any]] = {id(h[1]): v for v, h in decorated}
    else:
        sort_of = {}
    start = int(body.get("from", params.get("from", 0)))
    size = int(body.get("size", params.get("size", 10)))
    if start + size > 10_000:
        raise EsError(
            400,
            "illegal_argument_exception",
            "Result window is too large, from + size must be less than or equal to: [10000]",
        )
    tth = body.get("track_total_hits", True if params.get("track_total_hits") == "true" else 10_000)
    total = {"value": matched, "relation": "eq"}
    if tth is not True and isinstance(tth, int) and matched > tth:
        total = {"value": tth, "relation": "gte"}
    out: dict[str, Any] = {
        "took": 1,
        "timed_out": False,
        "_shards": _shards(indices),
        "hits": {
            "total": total,
            "max_score": 1.0 if hits else None,
            "hits": [_hit(i, d, sort_of.get(id(d))) for i, d in hits[start : start + size]],
        },
    }
    aggs = body.get("aggs") or body.get("aggregations")
    if aggs:
        out["aggregations"] = {
            name: _terms_agg(all_hits, name, spec) for name, spec in aggs.items()
        }
    return out


def _hit(i: Index, d: dict[str, Any], sort: list[Any] | None) -> dict[str, Any]:
    hit = {"_index": i.name, "_id": d["__id"], "_score": 1.0, "_source": d["__source"]}
    if sort is not None:
        hit["sort"] = sort
    return hit


def _terms_agg(
    hits: list[tuple[Index, dict[str, Any]]], name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    kind, body = _single(spec, "aggregation")
    if kind != "terms":
        raise EsError(
            400, "parsing_exception", f"the stand-in does not support aggregation [{kind}]"
        )
    field = body["field"]
    counts: dict[Any, int] = {}
    for i, d in hits:
        if _field_type(i, field) == "text":
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Text fields are not optimised for operations that require per-document "
                f"field data like aggregations and sorting [{field}]",
            )
        for v in set(map(str, i.values(d["__source"], field))) if field != "_index" else {i.name}:
            counts[v] = counts.get(v, 0) + 1
    buckets = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    size = int(body.get("size", 10))
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(n for _, n in buckets[size:]),
        "buckets": [{"key": k, "doc_count": n} for k, n in buckets[:size]],
    }


def main() -> None:
    """Serve a stand-in on 127.0.0.1 until stdin closes (for benchmarks: dies with its parent).

    ``--discard``: validate and answer like the normal stand-in but keep no documents.
    """
    import sys

    server = ElasticStandin(keep_documents="--discard" not in sys.argv)
    print(server.start(), flush=True)
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or exited
    finally:
        server.stop()


if __name__ == "__main__":
    main()
