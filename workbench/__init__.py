"""Log Workbench: logs in a Parquet lake, threshold alerting, notebooks as the dashboard.

For analysts in JupyterLab::

    import workbench
    lf = workbench.logs()                       # polars.LazyFrame over the whole lake
    lf.filter(pl.col("level") == "error").group_by("service").len().collect()
    workbench.search(service="auth-service", text="timeout", limit=20)
    workbench.error_trend(service="auth-service", range="24h")

Every helper reads the same configuration as the servers (``workbench.config``),
so a notebook opened beside a running system sees its data.
"""

from __future__ import annotations

from workbench.api import error_trend, logs, search
from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError

__all__ = [
    "Settings",
    "WorkbenchError",
    "error_trend",
    "get_settings",
    "logs",
    "search",
]
__version__ = "0.1.0"
