"""Figures for notebook 04: what each GPU holds and sends."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, TEMPLATE
from course.plots.memory import COMPONENTS

MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations")


def per_gpu(memory: dict[str, float], comm: dict[str, float], gpu_gb: float = 80,
            title: str = "One GPU's share") -> go.Figure:
    """Left: stacked GB one GPU holds, against its capacity. Right: GB it sends per step,
    by collective. Trace count is fixed so widgets can update it in place."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.35, 0.65],
                        subplot_titles=("memory per GPU", "sent per GPU per step"))
    for part in MEMORY_PARTS:
        fig.add_bar(name=part, x=["per GPU"], y=[memory.get(part, 0) / 1e9],
                    marker_color=COMPONENTS[part], row=1, col=1)
    fig.add_bar(name="communication", x=list(comm), y=[v / 1e9 for v in comm.values()],
                marker_color=COLORS["neutral"], showlegend=False, row=1, col=2)
    fig.add_hline(y=gpu_gb, line_dash="dash", line_color=COLORS["bad"], row=1, col=1,
                  annotation_text=f"{gpu_gb:g} GB")
    fig.update_layout(template=TEMPLATE, title=title, barmode="stack", height=420, width=820)
    fig.update_yaxes(title_text="GB", row=1, col=1)
    fig.update_yaxes(title_text="GB per step", row=1, col=2)
    return fig


def bytes_measured_vs_predicted(rows: list[tuple[str, float, float]],
                                title: str = "Bytes sent by rank 0") -> go.Figure:
    """Grouped bars from (label, measured bytes, predicted bytes) rows."""
    fig = go.Figure()
    labels = [r[0] for r in rows]
    fig.add_bar(name="measured", x=labels, y=[r[1] for r in rows],
                marker_color=COLORS["primary"])
    fig.add_bar(name="predicted", x=labels, y=[r[2] for r in rows],
                marker_color=COLORS["secondary"])
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", height=380, width=720,
                      yaxis_title="bytes")
    return fig
