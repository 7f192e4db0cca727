"""Figures for notebook 02: the computation graph of a scalar expression, the two-knob
loss surface with optimizer trajectories, optimizer-state bytes and forward/backward time."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

TRAJECTORY_COLORS = {"sgd": SEQUENCE[0], "momentum": SEQUENCE[1], "adam": SEQUENCE[2]}


def graph_figure(nodes, edges, depths, title: str = "") -> go.Figure:
    """Nodes of a `course.autograd` graph placed by depth, labelled with data and grad.

    nodes: Values in topological order; edges: (parent, child) indices; depths: per node.
    """
    rows: dict[int, int] = {}
    xy = []
    for d in depths:  # stack nodes of equal depth vertically
        xy.append((d, rows.get(d, 0)))
        rows[d] = rows.get(d, 0) + 1
    fig = figure(title or "The computation graph: data (forward) and grad (backward)",
                 "", "", height=360, showlegend=False)
    for a, b in edges:
        fig.add_scatter(x=[xy[a][0], xy[b][0]], y=[xy[a][1], xy[b][1]], mode="lines",
                        line=dict(color=COLORS["neutral"], width=1), hoverinfo="skip")
    text = [f"{n.label or n.op}<br>{n.data:.3g}<br>grad {n.grad:.3g}" for n in nodes]
    fig.add_scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text",
                    text=text, textposition="middle center", textfont=dict(size=10),
                    marker=dict(size=58, color="#E8F1F8", line=dict(color=COLORS["primary"])))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def knob_figure(grid, trajectories: dict, knob=(0.0, 0.0), arrow=(0.0, 0.0),
                title: str = "") -> go.Figure:
    """Contour of the loss over the two knobs, each optimizer's path, the knob position
    and the downhill arrow. Trace order (widgets rely on it): contour, one line per
    optimizer, knob marker, arrow."""
    fig = figure(title or "The loss over two knobs, and three ways down",
                 "knob w (slope)", "knob b (offset)", height=480, width=700)
    fig.add_contour(x=grid.w, y=grid.b, z=np.log10(grid.loss), colorscale="Greys",
                    reversescale=True, ncontours=24, showscale=False, name="log10 loss",
                    hovertemplate="w %{x:.2f}, b %{y:.2f}<extra></extra>")
    for kind, tr in trajectories.items():
        fig.add_scatter(x=tr.knobs[:, 0], y=tr.knobs[:, 1], mode="lines+markers",
                        name=kind, marker=dict(size=4),
                        line=dict(color=TRAJECTORY_COLORS.get(kind), width=2))
    fig.add_scatter(x=[knob[0]], y=[knob[1]], mode="markers", name="knobs",
                    marker=dict(size=13, color=COLORS["bad"], symbol="x"))
    fig.add_scatter(x=[knob[0], arrow[0]], y=[knob[1], arrow[1]], mode="lines+markers",
                    name="−gradient", line=dict(color=COLORS["bad"], width=3),
                    marker=dict(symbol=["circle", "arrow"], angleref="previous", size=[1, 14]))
    fig.update_xaxes(range=[grid.w[0], grid.w[-1]])
    fig.update_yaxes(range=[grid.b[0], grid.b[-1]])
    return fig


def loss_curves(trajectories: dict, title: str = "") -> go.Figure:
    """Loss against step for each optimizer, on a log axis."""
    fig = figure(title or "Loss per step", "step", "loss (log scale)")
    for kind, tr in trajectories.items():
        fig.add_scatter(y=tr.loss, mode="lines", name=kind,
                        line=dict(color=TRAJECTORY_COLORS.get(kind)))
    fig.update_yaxes(type="log")
    return fig


def state_bytes_bars(by_optimizer: dict, title: str = "") -> go.Figure:
    """Stacked bars: parameters, gradients and optimizer state, per optimizer (bytes)."""
    names = list(by_optimizer)
    fig = figure(title or "Training memory of the tiny model", "optimizer", "bytes",
                 barmode="stack")
    fig.add_bar(x=names, y=[s.params for s in by_optimizer.values()], name="parameters",
                marker_color=SEQUENCE[0])
    fig.add_bar(x=names, y=[s.grads for s in by_optimizer.values()], name="gradients",
                marker_color=SEQUENCE[1])
    fig.add_bar(x=names, y=[s.optimizer for s in by_optimizer.values()],
                name="optimizer state", marker_color=SEQUENCE[2])
    return fig


def pass_time_bars(timing, title: str = "") -> go.Figure:
    """Measured forward and backward time with the FLOPs each one does."""
    fig = figure(title or "Forward vs backward of one MLP", "", "milliseconds",
                 width=480)
    fig.add_bar(x=["forward", "backward"], y=[timing.forward_s * 1e3, timing.backward_s * 1e3],
                marker_color=[SEQUENCE[0], SEQUENCE[1]],
                text=[f"{timing.forward_flops / 1e9:.2f} GFLOP",
                      f"{2 * timing.forward_flops / 1e9:.2f} GFLOP"], textposition="outside")
    return fig
