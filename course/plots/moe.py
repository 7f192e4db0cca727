"""Figures for notebooks 08-09: expert load over training, MaxVio, EP ranks, routing bias."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, WIDTH, figure


def load_heatmap(load, title: str = "Share of routed tokens per expert") -> go.Figure:
    """Heat map of load (steps, E): one column per training step, one row per expert."""
    load = np.asarray(load)
    fig = figure(title, "training step", "expert", height=380)
    fig.add_heatmap(z=load.T, x=np.arange(1, len(load) + 1), y=np.arange(load.shape[1]),
                    colorscale="Blues", zmin=0, colorbar=dict(title="share", tickformat=".0%"),
                    hovertemplate="step %{x}<br>expert %{y}<br>%{z:.1%}<extra></extra>")
    fig.update_yaxes(dtick=1 if load.shape[1] <= 16 else 4)
    return fig


def lines(curves: dict, title: str, y_title: str, x_title: str = "training step",
          smooth: int = 1, log_y: bool = False) -> go.Figure:
    """One line per {label: values (steps,)}, optionally a running mean over `smooth` steps."""
    fig = figure(title, x_title, y_title)
    for i, (label, y) in enumerate(curves.items()):
        y = np.asarray(y, dtype=float)
        if smooth > 1:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        x = np.arange(len(y)) + (smooth + 1) // 2
        fig.add_scatter(x=x, y=y, mode="lines", name=label,
                        line=dict(color=SEQUENCE[i % len(SEQUENCE)], width=2.5))
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def ep_bars(tokens_per_rank, title: str = "Tokens each GPU must process") -> go.Figure:
    """Bars of tokens per expert-parallel rank, with the balanced level as a dashed line."""
    tokens = np.asarray(tokens_per_rank, dtype=float)
    fig = figure(title, "EP rank (GPU)", "tokens this step")
    worst = int(tokens.argmax())
    colors = [COLORS["bad"] if i == worst else COLORS["primary"] for i in range(len(tokens))]
    fig.add_bar(x=np.arange(len(tokens)), y=tokens, marker_color=colors, name="tokens")
    fig.add_hline(y=tokens.mean(), line_dash="dash", line_color=COLORS["neutral"],
                  annotation_text="balanced", annotation_position="top left")
    fig.update_xaxes(dtick=1)
    return fig


def bias_traces(bias, title: str = "Routing bias of each expert") -> go.Figure:
    """One thin line per expert: bias (steps, E) after each step."""
    bias = np.asarray(bias)
    fig = figure(title, "training step", "bias b_i", showlegend=False)
    for e in range(bias.shape[1]):
        fig.add_scatter(x=np.arange(1, len(bias) + 1), y=bias[:, e], mode="lines",
                        line=dict(width=1.2, color=SEQUENCE[e % len(SEQUENCE)]),
                        name=f"expert {e}")
    return fig


def capacity_curves(sweeps: dict, title: str = "Capacity factor: what is dropped, what it "
                    "costs") -> go.Figure:
    """Two panels for {label: moe.CapacitySweep}: share of routing slots dropped, and the
    share of the routed experts' gain in held-out loss given up, against the factor."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "routing slots dropped", "loss gain of the experts given up"))
    for i, (label, s) in enumerate(sweeps.items()):
        color = SEQUENCE[i % len(SEQUENCE)]
        for col, y in ((1, s.dropped), (2, s.loss_share_lost)):
            fig.add_scatter(x=s.factors, y=y, mode="lines+markers", name=label,
                            legendgroup=label, showlegend=col == 1, row=1, col=col,
                            line=dict(color=color, width=2.5),
                            hovertemplate="factor %{x}<br>%{y:.1%}<extra>" + label + "</extra>")
        fig.add_vline(x=s.no_drop_factor, line_dash="dot", line_color=color, row=1, col=1)
    fig.update_layout(template=figure().layout.template, title=title, height=380, width=WIDTH)
    fig.update_xaxes(title_text="capacity factor (× the balanced share)", type="log")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def seed_bars(spec, title: str = "Specialisation and balance over seeds") -> go.Figure:
    """For a `moe.Comparison`: per method, I(kind; expert) and held-out MaxVio, each a
    bar at the mean over seeds with a min–max error bar."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "I(word kind; expert), bits", "held-out MaxVio"))
    for col, values in ((1, spec.mi), (2, spec.max_vio)):
        mean = values.mean(1)
        fig.add_bar(x=spec.methods, y=mean, row=1, col=col, showlegend=False,
                    marker_color=[SEQUENCE[i % len(SEQUENCE)] for i in range(len(mean))],
                    error_y=dict(type="data", symmetric=False, array=values.max(1) - mean,
                                 arrayminus=mean - values.min(1)),
                    hovertemplate="%{x}: mean %{y:.3f}<extra></extra>")
    fig.update_layout(template=figure().layout.template, height=380, width=WIDTH,
                      title=f"{title} ({len(spec.seeds)} seeds, {spec.steps} steps; "
                            "bars: mean, whiskers: min–max)")
    return fig


def kind_expert_heatmap(joint, kinds, title: str = "Where each kind of word goes"
                        ) -> go.Figure:
    """Heat map of a (kinds, E) table of routing slots, each row as shares of that kind."""
    joint = np.asarray(joint, dtype=float)
    share = joint / np.maximum(joint.sum(1, keepdims=True), 1)
    fig = figure(title, "expert", "", height=380)
    fig.add_heatmap(z=share, x=np.arange(joint.shape[1]), y=list(kinds), colorscale="Blues",
                    zmin=0, colorbar=dict(title="share", tickformat=".0%"),
                    hovertemplate="%{y} → expert %{x}: %{z:.0%}<extra></extra>")
    fig.update_xaxes(dtick=1)
    return fig
