"""Figures for RoPE (notebook 01): attention logits of one query word and one key word
placed at every pair of positions, with and without rotary embeddings."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import TEMPLATE


def score_tables(with_rope, without_rope, q_word: str, k_word: str) -> go.Figure:
    """Two heat maps side by side (query position down, key position across); only keys
    at or before the query are shown, as the causal mask allows."""
    p = with_rope.shape[0]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("with RoPE: constant along each diagonal",
                                        "without RoPE: the same everywhere"))
    for col, table in ((1, with_rope), (2, without_rope)):
        z = [[float(table[m, n]) if n <= m else None for n in range(p)] for m in range(p)]
        fig.add_heatmap(z=z, row=1, col=col, coloraxis="coloraxis",
                        hovertemplate="query at %{y}, key at %{x}: logit %{z:.3f}"
                                      "<extra></extra>")
        fig.update_xaxes(title_text="key position n", row=1, col=col)
        fig.update_yaxes(title_text="query position m", autorange="reversed", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=420, width=760, margin=dict(t=100),
                      title=f"Logit of query '{q_word}' against key '{k_word}' by position",
                      coloraxis=dict(colorscale="Viridis", colorbar=dict(title="logit")))
    return fig
