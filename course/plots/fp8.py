"""Figures for notebook 10 (FP8): number lines, scaling error, accumulation error, loss
curves and GEMM throughput. Every number drawn comes from course.fp8 / course.fp8_accum."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.fp8 import SCALINGS
from course.plots import COLORS, SEQUENCE, figure

SCALING_COLORS = [COLORS["bad"], COLORS["good"], COLORS["secondary"]]
PRECISION_COLORS = {"fp32": COLORS["neutral"], "bf16": COLORS["primary"],
                    "fp8": COLORS["secondary"]}


def number_line(values: dict, lo: float = 2.0 ** -18, hi: float = 2.0 ** 17,
                title: str = "Every positive number each format can store") -> go.Figure:
    """One row of tick marks per format. values: {label: positive values (array)}; only
    values within [lo, hi] are drawn (BF16 continues far beyond both ends)."""
    fig = figure(title, "value (log scale)", "", height=300)
    for i, (label, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=float)
        v = v[(v >= lo) & (v <= hi)]
        fig.add_scatter(x=v, y=[label] * len(v), mode="markers", name=label,
                        marker=dict(symbol="line-ns-open", size=14, color=SEQUENCE[i]),
                        hovertemplate="%{x:.6g}<extra>" + label + "</extra>")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_layout(showlegend=False)
    return fig


def scaling_error(outliers, errors: dict, title: str = "Quantisation error against the "
                  "size of one outlier") -> go.Figure:
    """Lines of mean relative error (%) against outlier magnitude, one per scaling.
    errors: {scaling label: array of rel_error}."""
    fig = figure(title, "outlier magnitude (log scale)", "mean relative error of an entry (%)")
    for (label, e), color in zip(errors.items(), SCALING_COLORS):
        fig.add_scatter(x=list(outliers), y=100 * np.asarray(e), mode="lines+markers",
                        name=label, line=dict(color=color, width=3))
    fig.update_xaxes(type="log", exponentformat="power")
    return fig


def scaling_bars(result: dict | None = None, title: str = "One tensor, three ways to scale "
                 "it") -> go.Figure:
    """Bars of typical-entry error and underflow (%) for each scaling.
    result: {scaling label: quantization_error dict}."""
    labels = list(SCALINGS)
    result = result or {k: {"rel_error": 0.0, "underflow": 0.0} for k in labels}
    fig = figure(title, "", "% of entries", barmode="group")
    fig.add_bar(x=labels, y=[100 * result[k]["rel_error"] for k in labels],
                name="mean relative error", marker_color=COLORS["primary"])
    fig.add_bar(x=labels, y=[100 * result[k]["underflow"] for k in labels],
                name="flushed to zero", marker_color=COLORS["bad"])
    return fig


def accumulation_error(ks, curves: dict, report: float | None = 0.02,
                       title: str = "Error of a length-K dot product in a narrow "
                       "accumulator") -> go.Figure:
    """Log-log lines of max relative error (%) against K. curves: {label: errors}; a
    dotted line marks the report's "nearly 2%" at K = 4096."""
    fig = figure(title, "K, the length of the sum (log scale)", "max relative error (%)")
    colors = [COLORS["bad"], COLORS["good"], COLORS["accent"]]
    for (label, e), color in zip(curves.items(), colors):
        fig.add_scatter(x=list(ks), y=100 * np.asarray(e), mode="lines+markers", name=label,
                        line=dict(color=color, width=3))
    if report is not None:
        fig.add_scatter(x=[4096], y=[100 * report], mode="markers+text", name="report (K=4096)",
                        text=["report: ≈2%"], textposition="top left",
                        marker=dict(symbol="star", size=14, color=COLORS["neutral"]))
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def loss_curves(losses: dict, gaps: dict | None = None,
                title: str = "The same model trained in three precisions") -> go.Figure:
    """Overlaid training-loss curves. losses: {precision: (steps,)}; gaps: relative gap
    to BF16, shown in the legend."""
    fig = figure(title, "step", "training loss (cross-entropy)")
    for p, loss in losses.items():
        name = p.upper() + (f" ({gaps[p]:+.2%} vs BF16)" if gaps and p != "bf16" else "")
        fig.add_scatter(y=np.asarray(loss), mode="lines", name=name,
                        line=dict(color=PRECISION_COLORS.get(p), width=2,
                                  dash="dot" if p == "fp32" else None))
    return fig


def gemm_bars(result: dict, peaks: dict | None = None,
              title: str = "An n×n×n GEMM: BF16 against FP8") -> go.Figure:
    """Achieved TFLOP/s for BF16 and FP8 (from fp8_accum.gemm_benchmark), with peaks."""
    labels = ["BF16", "FP8"]
    achieved = [result["bf16_tflops"], result["fp8_tflops"]]
    fig = figure(f"{title} (n = {result['n']})", "", "TFLOP/s", barmode="overlay")
    if peaks:
        fig.add_bar(x=labels, y=[peaks["bf16"], peaks["fp8"]], name="dense peak",
                    marker_color=COLORS["neutral"], opacity=0.35)
    fig.add_bar(x=labels, y=achieved, name="achieved", width=0.5,
                marker_color=[COLORS["primary"], COLORS["secondary"]],
                text=[f"{a:.0f}" for a in achieved], textposition="outside")
    return fig
