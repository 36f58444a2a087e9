"""What the servers write to their own log: lines a person can act on, not library noise.

* :func:`uvicorn_log_config` is uvicorn's logging configuration plus
  :class:`ClientDisconnectFilter`: a client that closes its connection before
  sending the whole body (a killed shipper, a timeout on its side) is one INFO
  line, not uvicorn's 60-line ``ERROR: Exception in ASGI application``: the
  server did nothing wrong and nothing was stored (the client is told nothing,
  it is gone; it retries or not).
* :func:`quiet_notebook_runs` keeps a scheduled notebook run to the scheduler's
  own line per tick: papermill's INFO lines (``Input Notebook`` twice, ``Output
  Notebook``, ``Executing notebook``) and Alembic's per-start migration notes
  are raised to WARNING. The kernel's own start-up and shutdown notices (TCP
  without encryption, ``KeyboardInterrupt caught in kernel``, ``Parent appears
  to have exited``) are silenced where the kernel starts, by
  :data:`KERNEL_QUIET_ARGUMENTS`. A failure still reaches the log through the
  scheduler's one-line ``tick ... failed`` (and the run's record).
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


#: Arguments for the notebook kernel: its log (written straight to the scheduler's
#: stderr) only for critical errors. A failing cell is reported by papermill instead.
KERNEL_QUIET_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def quiet_notebook_runs() -> None:
    """Raise papermill's and Alembic's loggers to WARNING: one line per tick is the scheduler's."""
    for name in ("papermill", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
