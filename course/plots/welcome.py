"""Figures for notebook 00: the two-knob line fit."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, TEMPLATE

X_LINE = np.array([-2.2, 2.2])


def line_fit_figure(x: np.ndarray, y: np.ndarray) -> go.Figure:
    """Points, the current line, and the loss history (updated in place by the widget)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                        subplot_titles=("the points and your line", "loss as you turn the knobs"))
    fig.add_scatter(x=x, y=y, mode="markers", name="points", row=1, col=1,
                    marker=dict(color=COLORS["neutral"], size=7))
    fig.add_scatter(x=X_LINE, y=X_LINE * 0, mode="lines", name="your line", row=1, col=1,
                    line=dict(color=COLORS["primary"], width=3))
    fig.add_scatter(x=[], y=[], mode="lines+markers", name="loss", row=1, col=2,
                    line=dict(color=COLORS["secondary"]))
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_yaxes(title_text="y", range=[-5, 7], row=1, col=1)
    fig.update_xaxes(title_text="update number", row=1, col=2)
    fig.update_yaxes(title_text="mean squared error", type="log", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=380, width=820, showlegend=False,
                      margin=dict(t=60))
    return fig


def draw_line_fit(fig: go.BaseFigure, w: float, b: float, history: list[float]) -> None:
    fig.data[1].y = w * X_LINE + b
    fig.data[2].x = list(range(len(history)))
    fig.data[2].y = list(history)
    fig.layout.title = f"w = {w:.2f}, b = {b:.2f}: loss {history[-1]:.3f}"
