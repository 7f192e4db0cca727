"""Figures for notebook 15: the toy server's timeline, throughput against latency, V3's
decode on paper, EPLB's GPU loads and the day's economics."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, HEIGHT, SEQUENCE, TEMPLATE, WIDTH, figure

PHASES = (("waiting", COLORS["neutral"]), ("prefill", COLORS["secondary"]),
          ("decoding", COLORS["primary"]))


def _phases(result) -> dict:
    """Per request: (start, length) of waiting, prefill and decoding, in ms."""
    reqs = result.requests
    ms = lambda v: [1e3 * x for x in v]  # noqa: E731
    return dict(
        y=[f"#{r.rid}" for r in reqs],
        waiting=(ms([r.arrival for r in reqs]), ms([r.admitted - r.arrival for r in reqs])),
        prefill=(ms([r.admitted for r in reqs]), ms([r.first_token - r.admitted for r in reqs])),
        decoding=(ms([r.first_token for r in reqs]), ms([r.finish - r.first_token
                                                         for r in reqs])))


def _memory(result) -> tuple[list, list, list]:
    t = [1e3 * (s.start + s.seconds) for s in result.steps]
    return t, [s.used_tokens for s in result.steps], [s.reserved_tokens for s in result.steps]


def server_timeline(result, title: str = "The toy server, request by request") -> go.Figure:
    """Top: one row per request (waiting, prefill, decoding against measured time).
    Bottom: KV-cache tokens held and reserved, and the budget."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                        vertical_spacing=0.06)
    p = _phases(result)
    for name, color in PHASES:
        base, length = p[name]
        fig.add_bar(y=p["y"], x=length, base=base, orientation="h", name=name,
                    marker_color=color, row=1, col=1,
                    hovertemplate="%{y}: %{base:.0f} to %{x:.0f} ms long<extra>" + name
                    + "</extra>")
    t, used, reserved = _memory(result)
    fig.add_scatter(x=t, y=used, mode="lines", name="cache tokens in use", row=2, col=1,
                    line=dict(color=COLORS["good"], shape="hv"))
    fig.add_scatter(x=t, y=reserved, mode="lines", name="reserved", row=2, col=1,
                    line=dict(color=COLORS["accent"], dash="dot", shape="hv"))
    fig.add_scatter(x=[0, max(t)], y=[result.budget_tokens] * 2, mode="lines",
                    name="budget", row=2, col=1, line=dict(color=COLORS["bad"], dash="dash"))
    fig.update_layout(template=TEMPLATE, title=title, barmode="overlay", height=560,
                      width=WIDTH, legend=dict(orientation="h", y=-0.12))
    fig.update_yaxes(autorange="reversed", showticklabels=False, title_text="requests",
                     row=1, col=1)
    fig.update_yaxes(title_text="KV tokens", row=2, col=1)
    fig.update_xaxes(title_text="time on this machine (ms)", row=2, col=1)
    return fig


def update_timeline(fig: go.FigureWidget, result) -> None:
    """Redraw `server_timeline` in place for a new result."""
    p = _phases(result)
    for trace, (name, _) in zip(fig.data[:3], PHASES):
        trace.y, (trace.base, trace.x) = p["y"], p[name]
    t, used, reserved = _memory(result)
    fig.data[3].x, fig.data[3].y = t, used
    fig.data[4].x, fig.data[4].y = t, reserved
    fig.data[5].x, fig.data[5].y = [0, max(t)], [result.budget_tokens] * 2


def tradeoff(rows: list[dict], title: str = "Bigger batches: more tokens/s, slower tokens"
             ) -> go.Figure:
    """Aggregate output tokens/s (x) against mean time per output token and mean time to
    first token (y, ms), one labelled point per batch cap."""
    fig = figure(title, "output tokens/s (all requests, measured)", "milliseconds")
    x = [r["output_tokens_per_s"] for r in rows]
    labels = [f"cap {r['max_batch']}" for r in rows]
    fig.add_scatter(x=x, y=[1e3 * r["mean_tpot_s"] for r in rows], mode="lines+markers+text",
                    text=labels, textposition="top left", name="time per output token",
                    line=dict(color=COLORS["primary"]))
    fig.add_scatter(x=x, y=[1e3 * r["mean_ttft_s"] for r in rows], mode="lines+markers",
                    name="time to first token", line=dict(color=COLORS["secondary"], dash="dot"))
    fig.update_yaxes(type="log")
    return fig


def v3_decode(curve: dict, published: dict, title: str = "DeepSeek-V3 decode on paper "
              "(one H800 node of the EP144 unit)") -> go.Figure:
    """Left: tokens/s per node against requests per GPU. Right: the same points as tokens/s
    per request against tokens/s per node, with the published operating point."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "throughput against batch", "speed per request against throughput"))
    b = curve["batches"]
    for key, name, dash in (("serial", "roofline, all-to-all not hidden", "solid"),
                            ("overlap", "roofline, all-to-all hidden", "dot")):
        color = COLORS["primary"] if key == "serial" else COLORS["neutral"]
        fig.add_scatter(x=b, y=curve[key]["per_node"], mode="lines", name=name, row=1, col=1,
                        line=dict(color=color, dash=dash))
        fig.add_scatter(x=curve[key]["per_node"], y=curve[key]["per_request"], mode="lines",
                        name=name, showlegend=False, row=1, col=2,
                        line=dict(color=color, dash=dash))
    node = published["decode_tokens_per_s_per_node"]
    low, high = published["tokens_per_s_per_request"]
    fig.add_hline(y=node, line=dict(color=COLORS["bad"], dash="dash"), row=1, col=1,
                  annotation_text="published ~14.8k", annotation_position="bottom right")
    fig.add_scatter(x=[node, node], y=[low, high], mode="lines+markers", row=1, col=2,
                    name="published (20-22 tok/s per request)",
                    line=dict(color=COLORS["bad"], width=4), marker=dict(size=9))
    fig.update_layout(template=TEMPLATE, title=title, height=HEIGHT + 20, width=WIDTH + 180,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text="requests per GPU", type="log", row=1, col=1)
    fig.update_yaxes(title_text="output tokens/s per node", row=1, col=1)
    fig.update_xaxes(title_text="output tokens/s per node", row=1, col=2)
    fig.update_yaxes(title_text="tokens/s per request", type="log", row=1, col=2)
    return fig


def gpu_loads(before, after, title: str, labels=("one copy per expert", "EPLB")
              ) -> go.Figure:
    """Tokens each GPU serves, before and after balancing (bars), with the mean."""
    fig = figure(title, "GPU", "tokens routed to the GPU's experts")
    gpus = np.arange(len(after))
    if before is not None:
        fig.add_bar(x=gpus, y=before, name=labels[0], marker_color=COLORS["bad"], opacity=0.55)
    fig.add_bar(x=gpus, y=after, name=labels[1], marker_color=COLORS["good"])
    fig.add_hline(y=float(np.mean(after)), line=dict(color=COLORS["neutral"], dash="dash"),
                  annotation_text="mean (perfect balance)", annotation_position="top left")
    fig.update_layout(barmode="overlay", legend=dict(orientation="h", y=1.12))
    return fig


def imbalance_curve(sweeps: dict, marker: tuple | None = None,
                    title: str = "Redundant experts against the busiest GPU") -> go.Figure:
    """max / mean GPU load (y) against redundant experts (x), one line per layout."""
    fig = figure(title, "redundant expert slots", "busiest GPU / average GPU")
    for i, (name, s) in enumerate(sweeps.items()):
        fig.add_scatter(x=s["redundant"], y=s["imbalance"], mode="lines+markers", name=name,
                        line=dict(color=SEQUENCE[i]))
    fig.add_hline(y=1.0, line=dict(color=COLORS["neutral"], dash="dot"),
                  annotation_text="perfect balance", annotation_position="bottom right")
    if marker is not None:
        fig.add_scatter(x=[marker[0]], y=[marker[1]], mode="markers", name="your setting",
                        marker=dict(size=12, color="black"))
    return fig


def economics(s: dict, published: dict, title: str = "One day of serving: cost and revenue"
              ) -> go.Figure:
    """Bars: the published day and your scenario, cost against theoretical revenue ($)."""
    fig = figure(title, "", "dollars per day", height=HEIGHT)
    names = ["published day", "your scenario"]
    fig.add_bar(x=names, y=[published["cost"], s["cost"]], name="cost (GPU-hours x price)",
                marker_color=COLORS["bad"], text=[f"${v:,.0f}" for v in
                                                   (published["cost"], s["cost"])],
                textposition="outside")
    fig.add_bar(x=names, y=[published["revenue"], s["revenue"]], name="revenue if billed",
                marker_color=COLORS["good"], text=[f"${v:,.0f}" for v in
                                                    (published["revenue"], s["revenue"])],
                textposition="outside")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.12))
    fig.update_yaxes(rangemode="tozero")
    return fig
