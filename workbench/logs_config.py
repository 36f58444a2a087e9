"""What the servers write to their own log: lines a person can act on, not library noise.

* :func:`uvicorn_log_config` is uvicorn's logging configuration plus
  :class:`ClientDisconnectFilter`: a client that closes its connection before
  sending the whole body (a killed shipper, a timeout on its side) is one INFO
  line, not uvicorn's 60-line ``ERROR: Exception in ASGI application``: the
  server did nothing wrong and nothing was stored (the client is told nothing,
  it is gone; it retries or not).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

_DISCONNECT_MESSAGE = (
    "a client disconnected before sending its whole request body; nothing was stored"
)


class ClientDisconnectFilter(logging.Filter):
    """Turn uvicorn's ERROR traceback for a client that went away mid-request into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ClientDisconnect":
            record.levelno = logging.INFO
            record.levelname = "INFO"
            record.msg = _DISCONNECT_MESSAGE
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """Return uvicorn's default logging configuration with :class:`ClientDisconnectFilter`."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["client_disconnect"] = {
        "()": f"{__name__}.ClientDisconnectFilter"
    }
    error_logger = config["loggers"].setdefault("uvicorn.error", {"level": "INFO"})
    error_logger["filters"] = [*error_logger.get("filters", []), "client_disconnect"]
    return config
