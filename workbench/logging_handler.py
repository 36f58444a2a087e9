"""``workbench.logging_handler``: the shipping client's handler under its historical name.

The implementation is ``workbench_client`` (``clients/python``, the light
distribution ``log-workbench-client``; the server's install carries it too).
``from workbench.logging_handler import WorkbenchHandler`` keeps working and,
like ``import workbench_client``, loads neither polars nor httpx.
"""

from workbench_client import EMIT_BOUND_S, WorkbenchHandler, level_name

__all__ = ["EMIT_BOUND_S", "WorkbenchHandler", "level_name"]
