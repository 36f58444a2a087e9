"""Log Workbench: logs in a Parquet lake, threshold alerting, notebooks as the dashboard.

For analysts in JupyterLab::

    import polars as pl
    import workbench

    lf = workbench.logs("7d")                   # polars.LazyFrame over the lake
    lf.filter(pl.col("level") == "error").group_by("service").len().collect()
    workbench.search(service="auth-service", text="timeout", limit=20)
    workbench.error_trend(service="auth-service", range="24h")
    workbench.top_messages("24h")               # error patterns, most frequent first
    workbench.incidents(status="open")          # the catalog as DataFrames
    workbench.backtest("my rule", "7d", threshold=20)
    workbench.plots.trend_figure(workbench.error_trend())

Every helper reads the same configuration as the servers (``workbench.config``),
so a notebook opened beside a running system sees its data. The reference page
is ``docs/analyst.md``. Importing ``workbench`` is cheap: the catalog, plotly and
the query modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.api import (
        backtest,
        compare_thresholds,
        error_counts,
        error_trend,
        find_rule,
        incident,
        incident_window,
        incidents,
        logs,
        rules,
        search,
        top_messages,
    )
    from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError

__all__ = [
    "Settings",
    "WorkbenchError",
    "backtest",
    "compare_thresholds",
    "error_counts",
    "error_trend",
    "find_rule",
    "get_settings",
    "incident",
    "incident_window",
    "incidents",
    "logs",
    "plots",
    "rules",
    "search",
    "top_messages",
]
__version__ = "0.1.0"


#: Names loaded on first use, so ``import workbench`` (and with it ``workbench --help``)
#: imports neither polars (``workbench.api`` needs it) nor pydantic-settings.
_LAZY = {name: "workbench.api" for name in __all__ if name not in {"WorkbenchError", "plots"}}
_LAZY.update(Settings="workbench.config", get_settings="workbench.config", plots="workbench.plots")


def __getattr__(name: str) -> Any:
    # ``workbench.plots`` without an explicit import, still without importing plotly up front.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    import importlib

    loaded = importlib.import_module(module)
    value = loaded if name == "plots" else getattr(loaded, name)
    globals()[name] = value
    return value
