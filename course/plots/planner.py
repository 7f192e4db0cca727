"""Figures for notebook 13: per-GPU memory against capacity, step time, tokens per dollar."""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

GIB = 2**30


def memory_bars(labels, memories: list[dict], capacities_bytes,
                title: str = "Memory per GPU") -> go.Figure:
    """Stacked bars of per-GPU memory by part (GiB) for each plan, capacity as a marker."""
    fig = figure(title, "", "GiB per GPU", barmode="stack")
    parts = list(memories[0]) if memories else []
    for i, part in enumerate(parts):
        fig.add_bar(x=list(labels), y=[m[part] / GIB for m in memories], name=part,
                    marker_color=SEQUENCE[i % len(SEQUENCE)])
    fig.add_scatter(x=list(labels), y=[c / GIB for c in capacities_bytes], mode="markers",
                    name="GPU memory", marker=dict(symbol="line-ew-open", size=40,
                                                   color=COLORS["bad"], line=dict(width=3)))
    return fig


def step_bars(labels, compute_s, comm_s, title: str = "One training step") -> go.Figure:
    """Grouped bars: compute and communication seconds per step for each plan."""
    fig = figure(title, "", "seconds per step", barmode="group")
    fig.add_bar(x=list(labels), y=list(compute_s), name="compute",
                marker_color=COLORS["primary"])
    fig.add_bar(x=list(labels), y=list(comm_s), name="communication",
                marker_color=COLORS["secondary"])
    return fig


def tokens_per_dollar(labels, training, serving,
                      title: str = "Tokens per dollar (log scale)") -> go.Figure:
    """Grouped bars of training and serving tokens per dollar."""
    fig = figure(title, "", "tokens per $", barmode="group")
    fig.add_bar(x=list(labels), y=list(training), name="training (tokens seen)",
                marker_color=COLORS["primary"])
    fig.add_bar(x=list(labels), y=list(serving), name="serving (tokens generated, bound)",
                marker_color=COLORS["good"])
    fig.update_yaxes(type="log")
    return fig
