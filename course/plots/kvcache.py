"""Figures for notebook 11: cache size, latent-rank trade-off, decode timings, roofline."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

PATH_NAMES = {"mha": "MHA-style cache (expanded K, V)", "naive": "MLA naive (re-expand)",
              "absorbed": "MLA absorbed"}
PATH_COLORS = {"mha": COLORS["bad"], "naive": COLORS["secondary"], "absorbed": COLORS["good"]}


def per_token_bars(names: list[str], kib: list[float], title: str) -> go.Figure:
    """Horizontal bars: KV cache per token (KiB) for several models or counterfactuals."""
    fig = figure(title, "KV cache per token (KiB, all layers)", "", height=90 + 45 * len(names))
    fig.add_bar(y=names, x=kib, orientation="h", marker_color=SEQUENCE[: len(names)],
                text=[f"{v:,.1f} KiB" for v in kib], textposition="auto")
    fig.update_yaxes(autorange="reversed")
    return fig


def cache_growth(contexts, series: dict[str, np.ndarray], gpu_lines: dict[str, float],
                 title: str = "KV cache against context length") -> go.Figure:
    """Cache GB (y) against context tokens (x, log) per series, with GPU memory lines."""
    fig = figure(title, "context length (tokens)", "KV cache (GB)")
    for i, (name, gb) in enumerate(series.items()):
        fig.add_scatter(x=contexts, y=gb, mode="lines", name=name,
                        line=dict(color=SEQUENCE[i], width=3 if i == 0 else 2,
                                  dash="solid" if i == 0 else "dot"))
    for name, gb in gpu_lines.items():
        fig.add_hline(y=gb, line=dict(color=COLORS["neutral"], dash="dash"),
                      annotation_text=name, annotation_position="top left")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def rank_errors(ranks, errors: dict[str, np.ndarray], marker: int | None = None,
                title: str = "How much of K and V a rank-r latent keeps") -> go.Figure:
    """Relative reconstruction error (y) against latent rank (x), one line per matrix."""
    fig = figure(title, "latent rank r", "relative error ‖M − M_r‖ / ‖M‖")
    for i, (name, err) in enumerate(errors.items()):
        fig.add_scatter(x=ranks, y=err, mode="lines+markers", name=name,
                        line=dict(color=SEQUENCE[i]), marker=dict(size=4))
    if marker is not None:
        fig.add_vline(x=marker, line=dict(color=COLORS["neutral"], dash="dash"))
    fig.update_yaxes(range=[0, 1.02])
    return fig


def decode_times(contexts, seconds: dict[str, list], title: str) -> go.Figure:
    """Measured seconds per decode step (y, ms) against cached context (x), per path."""
    fig = figure(title, "cached context (tokens)", "one decode step (ms)")
    for path, s in seconds.items():
        fig.add_scatter(x=list(contexts), y=[1e3 * v for v in s], mode="lines+markers",
                        name=PATH_NAMES.get(path, path), line=dict(color=PATH_COLORS.get(path)))
    fig.update_xaxes(type="log")
    return fig
