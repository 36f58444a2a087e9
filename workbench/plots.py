"""Plot helpers for notebooks: each returns a ``plotly.graph_objects.Figure``, ready to display.

They take what the analyst helpers return (:func:`workbench.error_trend` points,
a ``logs()`` LazyFrame, :func:`workbench.top_messages` or
:func:`workbench.error_counts` frames) and only draw: no queries of their own
beyond aggregating the frame they are given. Figures use plotly's default
renderer, which works offline in JupyterLab and Voilà.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: One colour per level, from calm to alarming, used by every figure.
LEVEL_COLORS: dict[str, str] = {
    "debug": "#9e9e9e",
    "info": "#4c78a8",
    "warn": "#f2a541",
    "error": "#e45756",
    "fatal": "#8b0000",
}


def _points_frame(points: Any) -> pl.DataFrame:
    """Return ``time, count`` from TrendPoints, dicts or a DataFrame with those columns."""
    if isinstance(points, pl.DataFrame):
        return points.select("time", "count")
    rows = [
        {"time": p["time"], "count": p["count"]}
        if isinstance(p, dict)
        else {"time": p.time, "count": p.count}
        for p in points
    ]
    return pl.DataFrame(rows, schema={"time": pl.Datetime("us", "UTC"), "count": pl.Int64})


def trend_figure(
    points: Any,
    *,
    title: str = "Errors over time",
    marks: Sequence[datetime] = (),
    shade: tuple[datetime, datetime] | None = None,
) -> go.Figure:
    """Return a bar chart of error counts per bucket (``error_trend`` points or ``time, count``).

    ``marks`` draws a vertical line at each time (e.g. incident triggers);
    ``shade`` highlights a ``(start, end)`` span (e.g. an incident's lifetime).
    """
    import plotly.graph_objects as go

    df = _points_frame(points)
    fig = go.Figure(
        go.Bar(x=df["time"].to_list(), y=df["count"].to_list(), marker_color=LEVEL_COLORS["error"])
    )
    for at in marks:
        fig.add_vline(x=at, line_dash="dash", line_color="black")
    if shade is not None:
        fig.add_vrect(x0=shade[0], x1=shade[1], fillcolor="orange", opacity=0.15, line_width=0)
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title="events", bargap=0.05)
    return fig


def levels_figure(lf: pl.LazyFrame | pl.DataFrame, *, every: str = "1h") -> go.Figure:
    """Return stacked bars of events per level per ``every`` bucket (a polars duration) of ``lf``."""
    import plotly.graph_objects as go

    frame = lf.lazy() if isinstance(lf, pl.DataFrame) else lf
    counts = (
        frame.group_by(pl.col("timestamp").dt.truncate(every).alias("time"), "level")
        .agg(pl.len().alias("count"))
        .sort("time")
        .collect()
    )
    fig = go.Figure()
    for level, color in LEVEL_COLORS.items():
        part = counts.filter(pl.col("level") == level)
        if part.height:
            fig.add_bar(
                x=part["time"].to_list(), y=part["count"].to_list(), name=level, marker_color=color
            )
    fig.update_layout(
        barmode="stack",
        title=f"Events per level ({every} buckets)",
        xaxis_title="time (UTC)",
        yaxis_title="events",
    )
    return fig


def patterns_figure(df: pl.DataFrame, *, title: str = "Top message patterns") -> go.Figure:
    """Return horizontal bars of pattern counts (a ``top_messages`` frame), most frequent on top."""
    import plotly.graph_objects as go

    rows = df.head(30)
    labels = [p if len(p) <= 80 else p[:77] + "..." for p in rows["pattern"].to_list()]
    hover = [
        f"example: {e}<br>services: {', '.join(s)}"
        for e, s in zip(rows["example"].to_list(), rows["services"].to_list(), strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=rows["count"].to_list()[::-1],
            y=labels[::-1],
            orientation="h",
            hovertext=hover[::-1],
            marker_color=LEVEL_COLORS["error"],
        )
    )
    fig.update_layout(title=title, xaxis_title="events", height=max(300, 28 * rows.height + 120))
    return fig


def services_figure(counts: pl.DataFrame, *, title: str = "Errors by service") -> go.Figure:
    """Return one line per service of an ``error_counts`` frame (``time, service, count``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for (service,), part in counts.sort("time").group_by("service", maintain_order=True):
        fig.add_scatter(
            x=part["time"].to_list(), y=part["count"].to_list(), name=str(service), mode="lines"
        )
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title="events")
    return fig


def thresholds_figure(
    comparison: pl.DataFrame, *, title: str = "Incidents per threshold"
) -> go.Figure:
    """Return bars of incidents and notifications per threshold (a ``compare_thresholds`` frame)."""
    import plotly.graph_objects as go

    x = [str(t) for t in comparison["threshold"].to_list()]
    fig = go.Figure()
    fig.add_bar(x=x, y=comparison["incidents"].to_list(), name="incidents")
    fig.add_bar(x=x, y=comparison["notifications"].to_list(), name="notifications")
    fig.update_layout(barmode="group", title=title, xaxis_title="threshold", yaxis_title="count")
    return fig


#: The y axis of a backtest figure per rule kind (the observed value's unit).
_BACKTEST_AXIS = {
    "ratio": "percent of the service's events",
    "absence": "events of the service in window",
    "new_pattern": "events of the largest new pattern in window",
    "anomaly": "matching events in window (baseline: median + k x MAD)",
}


def backtest_figure(result: Any, *, title: str = "Backtest") -> go.Figure:
    """Return the window count per tick of a ``backtest`` result, with the rule's openings marked.

    For ratio, absence, new_pattern and anomaly rules: the observed value per tick,
    and the baseline when the kind has one (ratio: the events of any level;
    anomaly: median + sensitivity x MAD).

    Vertical lines mark where an incident would have been created (solid) or
    reopened (dotted).
    """
    import plotly.graph_objects as go

    series = result.series
    kind = getattr(result, "kind", "threshold")
    if kind in ("threshold", "match") or "value" not in series.columns:
        fig = go.Figure(
            go.Scatter(
                x=series["at"].to_list(),
                y=series["count"].to_list(),
                mode="lines",
                name="window count",
            )
        )
    else:  # the other kinds: what the rule observed, and the baseline it compared with
        x = series["at"].to_list()
        fig = go.Figure(go.Scatter(x=x, y=series["value"].to_list(), mode="lines", name="observed"))
        if series["baseline"].drop_nulls().len():
            fig.add_scatter(
                x=x, y=series["baseline"].to_list(), mode="lines", name="baseline",
                line={"dash": "dash"},
            )
    for episode in result.incidents:
        fig.add_vline(
            x=episode.opened_at,
            line_color=LEVEL_COLORS["error"],
            line_dash="dot" if episode.reopened else "solid",
        )
    fig.update_layout(
        title=f"{title}: {len(result.incidents)} incidents, {len(result.notifications)} notifications",
        xaxis_title="time (UTC)",
        yaxis_title=_BACKTEST_AXIS.get(kind, "matching events in window"),
    )
    return fig
