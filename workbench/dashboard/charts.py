"""Plotly figures of the dashboard and how they are put on a page (offline, no CDN)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def trend_figure(
    points: Sequence[Any], *, title: str = "", height: int = 320, marker: datetime | None = None
) -> go.Figure:
    """Return a line chart of ``points`` (``.time``, ``.count``), every bucket drawn, zeros too."""
    xs = [p.time for p in points]
    ys = [p.count for p in points]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers" if len(xs) <= 200 else "lines",
            line={"color": "#dc2626", "width": 2, "shape": "hv"},
            marker={"size": 4},
            fill="tozeroy",
            fillcolor="rgba(220,38,38,0.08)",
            name="errors",
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y} errors<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}} if title else None,
        height=height,
        margin={"l": 40, "r": 16, "t": 36 if title else 12, "b": 36},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        showlegend=False,
        xaxis={"gridcolor": "#f3f4f6", "title": None},
        yaxis={"gridcolor": "#f3f4f6", "rangemode": "tozero", "title": "errors", "tickformat": "d"},
    )
    if marker is not None:
        fig.add_shape(
            type="line", x0=marker, x1=marker, y0=0, y1=1, yref="paper",
            line={"color": "#2563eb", "dash": "dot", "width": 2},
        )
    return fig


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """Return the display bundle of a figure for plotly's mime renderer (bundled with plotly)."""
    spec = json.loads(fig.to_json())
    # Not "responsive": with it, plotly sizes the chart to 100% of a container whose
    # height comes from the chart itself, and a nested Output collapses to 0 px.
    spec["config"] = {"displaylogo": False}
    return {PLOTLY_MIME: spec, "text/plain": f"<plotly figure: {len(spec.get('data', []))} trace(s)>"}


def show_figure(out: widgets.Output, fig: go.Figure) -> None:
    """Replace what ``out`` displays with ``fig`` (works from callbacks and timers alike)."""
    outputs = ({"output_type": "display_data", "data": figure_bundle(fig), "metadata": {}},)
    if out.outputs != outputs:  # a timed refresh with unchanged data does not redraw
        out.outputs = outputs
