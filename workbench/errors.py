"""The one exception tree of Log Workbench.

Every error the library raises on purpose derives from :class:`WorkbenchError`.
Entry points translate them: ``ingest_api`` to HTTP answers, the CLI to exit
codes and messages, the dashboard to a message on the page.

    WorkbenchError
    ├── ConfigError            a setting is invalid (names the variable)
    ├── ValidationError        input breaks a rule (names the field and the limit)
    │   └── PayloadTooLarge    the body or batch is over a size limit
    ├── NotFound               an id that does not exist
    ├── InvalidTransition      an incident action not allowed in its current state
    ├── Overloaded             the ingestor pushes back (carries retry_after seconds)
    ├── RateLimited            one API key is over its ingest rate (carries retry_after seconds)
    ├── StorageError           the lake, WAL or catalog failed
    ├── MirrorUnavailable      Elasticsearch cannot be reached (workbench.mirror.bulk)
    │   └── NotCovered         the mirror does not hold the queried range yet (workbench.mirror.search)
    ├── MirrorBusy             another mirror follower holds this data dir (workbench.mirror.follower)
    ├── NotebookFailed         a papermill run failed; names the executed copy (workbench.notebooks)
    ├── EvaluationLocked       another evaluation holds the lock: tick skipped (workbench.alerting.run)
    └── EvaluationFailed       the alert notebook run failed (workbench.alerting.run)

A webhook that cannot be delivered is not an exception: the outbox row records the
attempt and is retried (``workbench.alerting.notify``).
"""

from __future__ import annotations

from typing import Any


class WorkbenchError(Exception):
    """Base of every error raised on purpose by workbench."""


class ConfigError(WorkbenchError):
    """A configuration variable is invalid; the message names it."""


class ValidationError(WorkbenchError):
    """Input breaks a rule. ``details`` maps field name -> list of messages."""

    def __init__(self, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, list[str]] = details or {}


class PayloadTooLarge(ValidationError):
    """The request body or batch exceeds a configured size limit."""


class NotFound(WorkbenchError):
    """No entity with that id."""

    def __init__(self, kind: str, ident: Any) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class InvalidTransition(WorkbenchError):
    """The action is not allowed from the entity's current state."""

    def __init__(self, message: str, current_state: str) -> None:
        super().__init__(message)
        self.current_state = current_state


class Overloaded(WorkbenchError):
    """The ingestor is over its backlog limit; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(WorkbenchError):
    """One API key sends faster than its ingest rate; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(WorkbenchError):
    """The lake, the write-ahead log or the catalog failed."""
