"""A ``logging.Handler`` that ships a Python service's log records to Log Workbench.

The distribution ``log-workbench-client`` (``clients/python`` in the Log Workbench
repository): standard library only, Python 3.9+, nothing heavy on import. The
server's install carries it too, and ``workbench.logging_handler`` re-exports it.

::

    import logging
    from workbench_client import WorkbenchHandler

    logging.getLogger().addHandler(WorkbenchHandler("http://127.0.0.1:4000", service="billing"))

Guarantees, in the order they matter to the application:

* **It never blocks the application.** :meth:`WorkbenchHandler.emit` turns the
  record into an event dict and appends it to an in-memory buffer under a lock
  that the sender holds only to pop or re-queue a batch; no I/O happens in
  ``emit``. The documented bound is **50 ms per emit** (typical: tens of µs);
  the test suite checks that log calls return while a POST hangs.
* **It never crashes the application.** Every error in ``emit`` goes to
  ``Handler.handleError`` (which prints and continues, as ``logging`` does);
  the sender thread catches everything.
* **The buffer is bounded** (``max_buffer`` records). When it is full the
  **oldest** buffered record is dropped for the new one: during an outage the
  most recent logs are the ones an on-call engineer needs. Drops are counted
  (``stats()["dropped"]``), reported on stderr at most every 10 s, and reported
  to the server in ``meta.workbench_dropped`` (records dropped since the last
  report) of the first event of the next batch sent.
* **Delivery is at least once** for what it reports as ``sent``: a batch
  counts as sent only when the server answered 202, which it does only once the
  events are fsynced in its write-ahead log. A batch that failed (connection
  error, timeout, 429/5xx) goes back to the front of the buffer (still within
  the bound) and is retried with exponential backoff (0.1 s doubling to 5 s, or
  the server's ``Retry-After``). A server that dies after its fsync but before
  answering causes a duplicate, never a loss.
* Records the server refuses as invalid (400, or items listed as rejected in a
  202) are counted in ``rejected`` and not retried: retrying cannot fix them.
* **It flushes at exit** (``atexit``, and ``logging.shutdown`` calls
  :meth:`close`), for at most ``exit_timeout`` seconds, then gives up.

Record -> event: ``levelno`` -> ``level`` (DEBUG and below debug, INFO info,
WARNING warn, ERROR error, CRITICAL fatal), ``record.created`` -> ``timestamp``,
``getMessage()`` -> ``message``; ``meta`` holds ``logger``, ``module``,
``function``, ``line``, ``thread``, ``process``, every ``extra=`` field (values
JSON can not hold become their ``repr``; non-finite floats become ``null``), and
``exception`` / ``stack`` text for ``exc_info`` / ``stack_info``.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections import deque
from datetime import datetime, timezone
from typing import Any

__all__ = ["EMIT_BOUND_S", "WorkbenchHandler", "level_name"]
__version__ = "0.1.0"

#: The documented upper bound of one ``emit`` call, in seconds (see the module docstring).
EMIT_BOUND_S = 0.05

_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 5.0
_DROP_REPORT_EVERY_S = 10.0
_MAX_MESSAGE_CHARS = 32_000  # just under the server's default max_message_chars
_MAX_TEXT_CHARS = 8_000  # tracebacks: the server's meta limit is 16 KiB
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
#: An HTTP answer: status, headers (``.get`` ignores case), body.
_Answer = tuple[int, Any, bytes]
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def level_name(levelno: int) -> str:
    """Return the workbench level of a ``logging`` level number."""
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _jsonable(value: Any) -> Any:
    """Return ``value`` if JSON can hold it as is, else its ``repr`` (non-finite floats: None)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _ndjson(batch: list[dict[str, Any]]) -> bytes:
    """Return a batch as NDJSON bytes (a lone surrogate becomes ``?`` rather than an error)."""
    return "\n".join(_JSON.encode(e) for e in batch).encode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer (not followed, like a POST should not be)


_opener = urllib.request.build_opener(_NoRedirect)


def _post_urllib(url: str, body: bytes, headers: dict[str, str], timeout: float) -> _Answer:
    """POST with the standard library; return (status, headers, body) for any HTTP answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:  # 3xx/4xx/5xx: an answer, not a transport failure
        with exc:
            return exc.code, exc.headers, exc.read()


def _post_transport(
    transport: Any, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> _Answer:
    """POST through an ``httpx`` transport (a test seam; httpx is imported only then)."""
    import httpx

    with httpx.Client(transport=transport, timeout=timeout) as client:
        response = client.post(url, content=body, headers=headers)
        return response.status_code, response.headers, response.content


class WorkbenchHandler(logging.Handler):
    """Batch log records in memory and POST them as NDJSON to ``{url}/api/logs`` from a thread."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:4000",
        *,
        service: str,
        api_key: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        timeout: float = 2.0,
        exit_timeout: float = 5.0,
        level: int = logging.NOTSET,
        transport: Any = None,
    ) -> None:
        """Start the sender thread.

        ``transport`` (an ``httpx`` transport, e.g. ``httpx.MockTransport``) is a seam for
        tests; without it requests go through ``urllib`` and httpx is never imported.
        """
        super().__init__(level)
        if not service:
            raise ValueError("service: required, a non-empty string")
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size and max_buffer must be at least 1")
        self.endpoint = url.rstrip("/") + "/api/logs"
        self.service = service
        self.batch_size = batch_size
        self._batch_limit = batch_size  # halved by a 413 until the buffer drains
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.exit_timeout = exit_timeout
        self._headers = {"Content-Type": "application/x-ndjson"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._transport = transport
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # guards the buffer and the counters, never held for I/O
        self._batch_ready = threading.Event()
        self._urgent = threading.Event()  # flush()/close(): skip the interval and the backoff
        self._stopping = threading.Event()
        self._idle = threading.Event()  # set when nothing is buffered or in flight
        self._idle.set()
        self._sent = 0
        self._dropped = 0
        self._rejected = 0
        self._failed_attempts = 0
        self._unreported_drops = 0
        self._last_error: str | None = None
        self._last_drop_warning = 0.0
        self._gave_up_at = -1e9
        self._thread = threading.Thread(
            target=self._run, name=f"workbench-handler-{service}", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    # -- the application side: never blocks --------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer ``record`` as an event (dropping the oldest buffered one when full); no I/O."""
        if threading.get_ident() == self._thread.ident:
            return  # the sender's own HTTP client logging: shipping it would feed itself
        try:
            event = self.to_event(record)
            with self._lock:
                if len(self._buffer) >= self.max_buffer:
                    self._buffer.popleft()
                    self._dropped += 1
                    self._unreported_drops += 1
                self._buffer.append(event)
                self._idle.clear()
                if len(self._buffer) >= self.batch_size:
                    self._batch_ready.set()
        except Exception:
            self.handleError(record)

    def to_event(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the raw event dict of a log record (see the module docstring's mapping)."""
        message = record.getMessage() or "(empty message)"
        meta: dict[str, Any] = {
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "thread": record.threadName,
            "process": record.process,
        }
        if len(message) > _MAX_MESSAGE_CHARS:
            message = message[:_MAX_MESSAGE_CHARS]
            meta["truncated"] = True
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                meta[key] = _jsonable(value)
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            meta["exception"] = text[-_MAX_TEXT_CHARS:]  # the end names the error
        elif record.exc_text:
            meta["exception"] = record.exc_text[-_MAX_TEXT_CHARS:]
        if record.stack_info:
            meta["stack"] = record.stack_info[-_MAX_TEXT_CHARS:]
        return {
            "service": self.service,
            "level": level_name(record.levelno),
            "message": message,
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "meta": meta,
        }

    def stats(self) -> dict[str, Any]:
        """Return the delivery figures: sent, dropped, rejected, failed_attempts, buffered, last_error."""
        with self._lock:
            return {
                "sent": self._sent,
                "dropped": self._dropped,
                "rejected": self._rejected,
                "failed_attempts": self._failed_attempts,
                "buffered": len(self._buffer),
                "last_error": self._last_error,
            }

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Send what is buffered now; return True once nothing is buffered or in flight.

        Waits at most ``timeout`` seconds (default ``exit_timeout``); while the
        server is down it returns False and the records stay buffered.
        """
        if not self._thread.is_alive():
            return self._idle.is_set()
        self._urgent.set()
        self._batch_ready.set()
        done = self._idle.wait(self.exit_timeout if timeout is None else timeout)
        if not done and timeout is None:
            self._gave_up_at = time.monotonic()
        return done

    def close(self) -> None:
        """Flush for at most ``exit_timeout`` seconds, then stop the sender thread."""
        if self._stopping.is_set():
            return
        # logging.shutdown() calls flush() then close(): do not wait out the server twice.
        if time.monotonic() - self._gave_up_at > self.exit_timeout:
            self.flush(self.exit_timeout)
        self._stopping.set()
        self._urgent.set()
        self._batch_ready.set()
        self._thread.join(timeout=1.0)
        atexit.unregister(self.close)
        super().close()

    # -- the sender thread -----------------------------------------------

    def _run(self) -> None:
        backoff = _BACKOFF_MIN_S
        while not self._stopping.is_set():
            self._batch_ready.wait(self.flush_interval)
            self._batch_ready.clear()
            while not self._stopping.is_set():
                batch = self._take_batch()
                if not batch:
                    self._urgent.clear()
                    break
                try:
                    retry_after = self._send(batch)
                except Exception as exc:  # the application must never see this
                    retry_after = 0.0
                    self._failed(batch, f"{type(exc).__name__}: {exc}")
                if retry_after is None:
                    backoff = _BACKOFF_MIN_S
                    continue
                self._warn_drops()
                delay = max(backoff, retry_after)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                if self._urgent.wait(delay):
                    # flush(): retry at once, but only once per request
                    self._urgent.clear()
            self._warn_drops()

    def _post(self, body: bytes) -> _Answer:
        if self._transport is not None:
            return _post_transport(
                self._transport, self.endpoint, body, self._headers, self._timeout
            )
        return _post_urllib(self.endpoint, body, self._headers, self._timeout)

    def _take_batch(self) -> list[dict[str, Any]]:
        with self._lock:
            n = min(self._batch_limit, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(n)]
            if not batch:
                self._batch_limit = self.batch_size
                # Under the lock: an emit racing with this sees the buffer, not a stale idle.
                self._idle.set()
            if batch and self._unreported_drops:
                first = batch[0] = dict(batch[0])
                first["meta"] = {**first["meta"], "workbench_dropped": self._unreported_drops}
                self._unreported_drops = 0
            return batch

    def _send(self, batch: list[dict[str, Any]]) -> float | None:
        """Post one batch; return None when done with it, else seconds to wait before a retry."""
        code, headers, content = self._post(_ndjson(batch))
        if code == 202:
            rejected = len(json.loads(content).get("rejected") or [])
            with self._lock:
                self._sent += len(batch) - rejected
                self._rejected += rejected
            return None
        if code == 413 and len(batch) > 1:
            # Over the server's body or batch limit: send halves, front first (the next
            # batches are no larger, so the halves are not merged again).
            with self._lock:
                self._batch_limit = max(1, len(batch) // 2)
            self._requeue(batch)
            return None
        if code in _RETRYABLE:
            self._failed(batch, f"HTTP {code}")
            header = headers.get("retry-after") or ""
            return float(header) if header.isdigit() else 0.0
        # 400/401/403/404/413-single: retrying can not help.
        with self._lock:
            self._rejected += len(batch)
            self._last_error = f"HTTP {code}: {content[:200].decode('utf-8', 'replace')}"
        return None

    def _failed(self, batch: list[dict[str, Any]], error: str) -> None:
        with self._lock:
            self._failed_attempts += 1
            self._last_error = error
        self._requeue(batch)

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        """Put a batch back at the front, dropping its oldest records if newer ones filled the buffer."""
        with self._lock:
            room = self.max_buffer - len(self._buffer)
            keep = batch[-room:] if room > 0 else []
            lost = len(batch) - len(keep)
            if lost:
                self._dropped += lost
                self._unreported_drops += lost
            self._buffer.extendleft(reversed(keep))

    def _warn_drops(self) -> None:
        now = time.monotonic()
        with self._lock:
            dropped = self._dropped
        if dropped and now - self._last_drop_warning >= _DROP_REPORT_EVERY_S:
            self._last_drop_warning = now
            # stderr, not logging: a log record about dropping logs would be buffered too.
            print(
                f"WorkbenchHandler({self.service}): {dropped} log records dropped so far "
                f"(buffer of {self.max_buffer} full; last error: {self._last_error})",
                file=sys.stderr,
            )
