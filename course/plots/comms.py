"""Figures for notebook 06: collective times, the gloo fit, routing spread, DiLoCo runs."""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

LABELS = {"all_reduce": "all-reduce", "reduce_scatter": "reduce-scatter",
          "all_gather": "all-gather", "all_to_all": "all-to-all"}


def collective_bars(kinds, intra_s, inter_s, title: str = "One collective, split by link"
                    ) -> go.Figure:
    """Stacked bars of NVLink and InfiniBand time (ms) for each collective."""
    fig = figure(title, "", "time (ms)", barmode="stack")
    names = [LABELS.get(k, k) for k in kinds]
    fig.add_bar(x=names, y=[t * 1e3 for t in intra_s], name="NVLink (inside a node)",
                marker_color=COLORS["primary"])
    fig.add_bar(x=names, y=[t * 1e3 for t in inter_s], name="InfiniBand (across nodes)",
                marker_color=COLORS["secondary"])
    return fig


def gloo_fit(sizes, measured: dict, fitted: dict,
             title: str = "Real gloo collectives on this machine, and the alpha-beta fit"
             ) -> go.Figure:
    """Measured times as markers and the fitted model as lines, log-log, per collective."""
    fig = figure(title, "message size per rank (bytes)", "time (ms)")
    for i, kind in enumerate(measured):
        color = SEQUENCE[i % len(SEQUENCE)]
        fig.add_scatter(x=list(sizes), y=[t * 1e3 for t in measured[kind]], mode="markers",
                        name=f"{LABELS.get(kind, kind)} measured", marker=dict(color=color,
                                                                               size=9))
        fig.add_scatter(x=list(sizes), y=[t * 1e3 for t in fitted[kind]], mode="lines",
                        name=f"{LABELS.get(kind, kind)} fit", line=dict(color=color, dash="dot"))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def nodes_histogram(histograms: dict, title: str = "How many nodes does a token visit?"
                    ) -> go.Figure:
    """Grouped bars: share of tokens reaching 1..N nodes, one series per routing rule."""
    fig = figure(title, "nodes reached by one token", "share of tokens", barmode="group")
    for i, (label, hist) in enumerate(histograms.items()):
        fig.add_bar(x=list(range(1, len(hist) + 1)), y=list(hist), name=label,
                    marker_color=SEQUENCE[i % len(SEQUENCE)])
    return fig


def diloco_runs(runs, title: str = "Loss against bytes communicated") -> go.Figure:
    """Held-out loss against cumulative bytes sent per replica, one line per run."""
    fig = figure(title, "bytes sent per replica (MB)", "held-out loss (MSE)")
    for i, run in enumerate(runs):
        fig.add_scatter(x=[b / 1e6 for b in run.bytes_sent[1:]], y=list(run.loss[1:]),
                        mode="lines+markers", name=run.label,
                        line=dict(color=SEQUENCE[i % len(SEQUENCE)]), marker=dict(size=5))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig
