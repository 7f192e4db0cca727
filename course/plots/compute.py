"""Figures for notebook 05: training days against GPU count, and MFU bars."""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, figure


def days_vs_gpus(gpu_counts, days, marks: dict | None = None,
                 title: str = "Training time against cluster size") -> go.Figure:
    """A log-log line of days against GPUs, with published runs as labelled markers.

    `marks`: {label: (n_gpus, days)}.
    """
    fig = figure(title, "GPUs", "training time (days)")
    fig.add_scatter(x=list(gpu_counts), y=list(days), mode="lines", name="your settings",
                    line=dict(color=COLORS["primary"], width=3))
    for i, (label, (n, d)) in enumerate((marks or {}).items()):
        fig.add_scatter(x=[n], y=[d], mode="markers+text", name=label, text=[label],
                        textposition="top center",
                        marker=dict(size=11, color=[COLORS["secondary"], COLORS["good"],
                                                    COLORS["accent"]][i % 3]))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def mfu_bars(labels, achieved_tflops, peak_tflops,
             title: str = "Achieved vs peak TFLOP/s per GPU") -> go.Figure:
    """Grouped bars: achieved and peak throughput for each run or measurement."""
    fig = figure(title, "", "TFLOP/s per GPU", barmode="overlay")
    fig.add_bar(x=list(labels), y=list(peak_tflops), name="peak",
                marker_color=COLORS["neutral"], opacity=0.35)
    text = [f"{a / p:.0%} MFU" for a, p in zip(achieved_tflops, peak_tflops)]
    fig.add_bar(x=list(labels), y=list(achieved_tflops), name="achieved", text=text,
                textposition="outside", marker_color=COLORS["primary"], width=0.5)
    return fig
