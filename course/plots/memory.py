"""Figures for notebook 03: where the gigabytes go."""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

#: Components in stacking order, with one colour each.
COMPONENTS = {"weights": COLORS["primary"], "gradients": COLORS["secondary"],
              "optimizer": COLORS["accent"], "activations": COLORS["good"],
              "kv_cache": COLORS["neutral"]}


def stacked_gb(scenarios: dict[str, dict[str, float]], title: str = "Memory per replica",
               gpu_gb: float | None = None) -> go.Figure:
    """Stacked bars: one bar per scenario, one segment per component (bytes -> GB)."""
    fig = figure(title, "", "memory (GB)", barmode="stack")
    names = list(scenarios)
    for comp, colour in COMPONENTS.items():
        if any(comp in parts for parts in scenarios.values()):
            fig.add_bar(name=comp, x=names, marker_color=colour,
                        y=[scenarios[n].get(comp, 0) / 1e9 for n in names])
    if gpu_gb:
        fig.add_hline(y=gpu_gb, line_dash="dash", line_color=COLORS["bad"],
                      annotation_text=f"one {gpu_gb:g} GB GPU")
    return fig


def param_parts(by_part: dict[str, int], active_by_part: dict[str, int],
                title: str = "Parameters by part") -> go.Figure:
    """Grouped bars: total vs active parameters (billions) of each part."""
    fig = figure(title, "", "parameters (billions)", barmode="group")
    parts = [p for p in by_part if by_part[p]]
    fig.add_bar(name="total", x=parts, y=[by_part[p] / 1e9 for p in parts],
                marker_color=COLORS["primary"])
    fig.add_bar(name="active per token", x=parts, y=[active_by_part[p] / 1e9 for p in parts],
                marker_color=COLORS["secondary"])
    return fig


def activations_vs_seq(seq_lens: list[int], series: dict[str, list[float]],
                       title: str = "Activation memory vs sequence length") -> go.Figure:
    """One line per recomputation policy: GB of saved activations against tokens."""
    fig = figure(title, "sequence length (tokens)", "activations (GB)")
    for (name, ys), colour in zip(series.items(), SEQUENCE):
        fig.add_scatter(name=name, x=seq_lens, y=[y / 1e9 for y in ys], mode="lines+markers",
                        line_color=colour)
    return fig


def measured_vs_predicted(measured: dict[str, float], predicted: dict[str, float],
                          title: str = "Toy model: measured vs predicted") -> go.Figure:
    """Grouped bars of bytes measured from torch next to the calculator's prediction."""
    keys = list(predicted)
    fig = figure(title, "", "bytes", barmode="group")
    fig.add_bar(name="measured (torch)", x=keys, y=[measured[k] for k in keys],
                marker_color=COLORS["primary"])
    fig.add_bar(name="predicted", x=keys, y=[predicted[k] for k in keys],
                marker_color=COLORS["secondary"])
    return fig
