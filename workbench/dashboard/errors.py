"""What went wrong, in words a person can act on: field messages and one sentence per failure.

Pages show these instead of tracebacks; a database URL loses its password on the way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workbench.config import Settings
from workbench.dashboard.format import truncate
from workbench.errors import NotFound, StorageError, ValidationError, WorkbenchError


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _person_message(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind == "missing":
        return "is required"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return msg.replace("Input should be", "must be").replace("String should have", "must have")


def validation_messages(exc: Exception) -> dict[str, list[str]]:
    """Return ``{field (snake_case): [messages]}`` from a pydantic or workbench ValidationError."""
    if isinstance(exc, ValidationError):
        return {_snake(k): list(v) for k, v in exc.details.items()} or {"": [exc.message]}
    errors = getattr(exc, "errors", None)
    if callable(errors):
        out: dict[str, list[str]] = {}
        for err in errors():
            loc = err.get("loc") or ("",)
            name = _snake(str(loc[0])) if loc else ""
            out.setdefault(name, []).append(_person_message(err))
        return out
    return {"": [str(exc)]}


def friendly_error(exc: BaseException, settings: Settings | None = None) -> str:
    """Return a sentence a person can act on for an exception (no stack trace)."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if isinstance(exc, ValidationError):
        parts = [f"{k}: {'; '.join(v)}" if k else "; ".join(v) for k, v in exc.details.items()]
        return "Invalid input — " + (", ".join(parts) if parts else exc.message)
    if isinstance(exc, NotFound):
        return f"Not found: {text}. It may have been deleted; the list has been refreshed."
    if isinstance(exc, WorkbenchError) and not isinstance(exc, StorageError):
        return text
    module = type(exc).__module__
    if module.startswith("sqlalchemy") or name in {"OperationalError", "DatabaseError"}:
        where = _redact(settings.database_url) if settings else "the catalog database"
        return (
            f"The catalog database ({where}) is unreachable or not ready: {truncate(text, 200)}. "
            "Check that it is running and that DATABASE_URL is right; the page retries on refresh."
        )
    if module.startswith(("polars", "pyarrow")) or isinstance(exc, (OSError, StorageError)):
        where = settings.lake_url if settings else "the log lake"
        return (
            f"The log lake ({where}) cannot be read: {truncate(text, 200)}. "
            "Check WORKBENCH_LAKE_URL and the disk or object store; the page retries on refresh."
        )
    return f"Something went wrong ({name}): {truncate(text, 300)}"


def _redact(url: str) -> str:
    """Return a database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
