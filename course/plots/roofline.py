"""Roofline figures (notebooks 05 and 11): log-log attainable TFLOP/s against arithmetic
intensity, the ridge marked, operations as labelled points.

Whether a point is compute- or memory-bound is said in words (its label and hover) and by
its marker shape (circle: memory-bound, diamond: compute-bound), never by colour alone.
Every number drawn comes from `course.roofline` (`placed`, `roof`, `Machine`).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

X_RANGE = (0.1, 1e5)  # FLOP/B
SYMBOL = {"memory": "circle", "compute": "diamond"}
_X = np.logspace(np.log10(X_RANGE[0]), np.log10(X_RANGE[1]), 121)


def _line(m) -> dict:
    return dict(x=_X, y=np.minimum(m.tflops, _X * m.tb_s))


def _ridge_text(m) -> str:
    return f"{m.name} ridge: {m.ridge:,.0f} FLOP/B"


def _y_range(machines) -> list[float]:
    peak = max(m.tflops for m in machines)
    low = min(m.tb_s * X_RANGE[0] for m in machines)
    return [np.log10(low) - 0.2, np.log10(peak) + 0.4]


def point_text(p: dict) -> str:
    """Hover text of a placed op: what it is, where it sits, what limits it."""
    return (f"<b>{p['label']}</b><br>{p['intensity']:,.1f} FLOP/B<br>"
            f"attainable {p['tflops']:,.3g} TFLOP/s ({p['share_of_peak']:.0%} of peak)<br>"
            f"<b>{p['bound']}-bound</b>")


def short_label(p: dict, i: int) -> str:
    return f"{tag(i)} · {p['label']}: {p['bound']}-bound"


def tag(i: int) -> str:
    """The letter that marks point i on the plot (its full label is in the legend)."""
    return "ABCDEFGHIJ"[i]


def roofline(machines, points=(), measured=(), title: str = "The roofline",
             height: int = 460) -> go.Figure:
    """One roof per machine (`course.roofline.Machine`), its ridge as a dotted vertical
    line, `points` (dicts from `roofline.placed` on the first machine) as labelled
    markers, `measured` as (intensity, achieved TFLOP/s, label) crosses.

    Trace order (the widget relies on it): one roof and one ridge per machine, then one
    trace per point, then the measured crosses."""
    machines = list(machines)
    fig = figure(title, "arithmetic intensity (FLOP per byte moved)",
                 "attainable TFLOP/s", height=height)
    y0, y1 = _y_range(machines)
    for i, m in enumerate(machines):
        color = COLORS["neutral"] if i == 0 else SEQUENCE[4 + i]
        fig.add_scatter(**_line(m), mode="lines", name=f"{m.name} roof",
                        line=dict(color=color, width=3, dash="solid" if i == 0 else "dash"),
                        hovertemplate="%{x:,.1f} FLOP/B → %{y:,.3g} TFLOP/s<extra>"
                                      + m.name + "</extra>")
        fig.add_scatter(x=[m.ridge, m.ridge], y=[10**y0, m.tflops], mode="lines+text",
                        name=_ridge_text(m), text=[f"ridge {m.ridge:,.0f} FLOP/B", ""],
                        textposition="top right", line=dict(color=color, dash="dot"),
                        hoverinfo="name")
    for i, p in enumerate(points):
        fig.add_scatter(x=[p["intensity"]], y=[p["tflops"]], mode="markers+text",
                        name=short_label(p, i), text=[tag(i)],
                        textposition="top center" if i % 2 else "bottom center",
                        hovertext=[point_text(p)], textfont=dict(size=14),
                        hoverinfo="text",
                        marker=dict(size=13, color=SEQUENCE[i % 4], symbol=SYMBOL[p["bound"]],
                                    line=dict(width=1, color="white")))
    fig.add_scatter(x=[q[0] for q in measured], y=[q[1] for q in measured],
                    mode="markers", name="measured on this machine",
                    text=[q[2] for q in measured], hovertemplate="%{text}<br>%{x:,.1f} "
                    "FLOP/B, measured %{y:,.3g} TFLOP/s<extra></extra>",
                    marker=dict(size=11, symbol="x", color=COLORS["bad"]),
                    visible=bool(measured))
    fig.update_xaxes(type="log", range=[np.log10(X_RANGE[0]), np.log10(X_RANGE[1])])
    fig.update_yaxes(type="log", range=[y0, y1])
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0),
                      margin=dict(b=120))
    return fig


def update(fig, machines, points, measured=()) -> None:
    """Redraw `fig` (built by `roofline` with the same number of machines and points) in
    place."""
    machines = list(machines)
    y0, y1 = _y_range(machines)
    for i, m in enumerate(machines):
        roof, ridge = fig.data[2 * i], fig.data[2 * i + 1]
        roof.x, roof.y = _line(m)["x"], _line(m)["y"]
        roof.name = f"{m.name} roof"
        ridge.x, ridge.y = [m.ridge, m.ridge], [10**y0, m.tflops]
        ridge.name, ridge.text = _ridge_text(m), [f"ridge {m.ridge:,.0f} FLOP/B", ""]
    base = 2 * len(machines)
    for i, p in enumerate(points):
        tr = fig.data[base + i]
        tr.x, tr.y = [p["intensity"]], [p["tflops"]]
        tr.name, tr.hovertext = short_label(p, i), [point_text(p)]
        tr.marker.symbol = SYMBOL[p["bound"]]
    last = fig.data[base + len(points)]
    last.x, last.y = [q[0] for q in measured], [q[1] for q in measured]
    last.text, last.visible = [q[2] for q in measured], bool(measured)
    fig.layout.yaxis.range = [y0, y1]


def time_budget(budget: dict, title: str = "Where a training step's time goes") -> go.Figure:
    """One stacked horizontal bar: the shares of `compute.time_budget`, labelled in text."""
    fig = figure(title, "share of the step's time", "", height=230,
                 barmode="stack")
    colors = [COLORS["primary"], COLORS["accent"], COLORS["secondary"], COLORS["bad"],
              COLORS["neutral"]]
    for (label, share), color in zip(budget.items(), colors):
        fig.add_bar(x=[share], y=["step"], orientation="h", name=f"{label}: {share:.1%}",
                    text=[f"{share:.0%}" if share >= 0.04 else ""], textposition="inside",
                    marker_color=color, hovertemplate=f"{label}: {share:.1%}<extra></extra>")
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(legend=dict(orientation="h", y=-0.45, x=0), margin=dict(b=90))
    return fig


def layer_shares(shares: list[dict], title: str = "One MoE layer at the roofline: "
                 "FLOPs vs time") -> go.Figure:
    """Grouped bars per op: its share of the FLOPs and of the (perfect-kernel) time; the
    op's name says whether it is compute- or memory-bound."""
    labels = [f"{s['label']} ({s['bound']}-bound)" for s in shares]
    fig = figure(title, "share", "", height=420, barmode="group")
    fig.add_bar(y=labels, x=[s["flops_share"] for s in shares], orientation="h",
                name="share of FLOPs", marker_color=COLORS["primary"])
    fig.add_bar(y=labels, x=[s["time_share"] for s in shares], orientation="h",
                name="share of time at the roofline", marker_color=COLORS["secondary"])
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(margin=dict(l=330))
    return fig
