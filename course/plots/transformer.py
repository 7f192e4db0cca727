"""Figures for notebook 01: attention heat maps, next-token bars, knock-out scores and the
residual stream."""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure


def attention_heatmap(tokens: list[str], weights, title: str = "") -> go.Figure:
    """Heat map of one head's weights (T, T): row = the token that looks, column = where."""
    labels = [f"{i}:{w}" for i, w in enumerate(tokens)]  # unique labels for repeated words
    fig = figure(title or "Where each token looks", "attends to (key)", "token (query)",
                 height=460, width=560)
    fig.add_heatmap(z=[list(map(float, row)) for row in weights], x=labels, y=labels,
                    zmin=0, zmax=1, colorscale="Blues", colorbar=dict(title="weight"),
                    hovertemplate="%{y} → %{x}: %{z:.2f}<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    return fig


def next_token_bars(pairs: list[tuple[str, float]], title: str = "") -> go.Figure:
    """Horizontal bars of the most likely next words, most likely on top."""
    words, probs = [w for w, _ in pairs], [p for _, p in pairs]
    fig = figure(title or "What comes next?", "probability", "", height=320, width=560)
    fig.add_bar(x=probs, y=words, orientation="h", marker_color=COLORS["primary"],
                text=[f"{p:.0%}" for p in probs], textposition="outside")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(range=[0, 1.15])
    return fig


def knockout_bars(table: dict, title: str = "") -> go.Figure:
    """Grouped bars: top-1 accuracy per prompt kind for each knock-out condition.

    `table`: condition label -> kind -> KnockoutScore (course.inspect_model.knockout_table).
    """
    conditions = list(table)
    kinds = list(next(iter(table.values())))
    fig = figure(title or "What breaks when a part is zeroed?", "part knocked out",
                 "top-1 accuracy on corpus prompts", barmode="group")
    for i, kind in enumerate(kinds):
        scores = [table[c][kind] for c in conditions]
        fig.add_bar(x=conditions, y=[s.accuracy for s in scores], name=f"{kind} ({scores[0].n})",
                    marker_color=SEQUENCE[i], text=[f"{s.accuracy:.0%}" for s in scores],
                    textposition="outside")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return fig


def ablation_bars(zeroed: dict, mean: dict, kind: str, title: str = "") -> go.Figure:
    """Bars per knock-out condition: one kind's top-1 accuracy with the part zeroed and with
    it replaced by its mean (two `course.inspect_model.knockout_table`s)."""
    conditions = list(zeroed)
    fig = figure(title or f"{kind} prompts: zeroed vs replaced by the mean", "part knocked out",
                 "top-1 accuracy on corpus prompts", barmode="group")
    for i, (name, table) in enumerate((("zeroed", zeroed), ("mean", mean))):
        acc = [table[c][kind].accuracy for c in conditions]
        fig.add_bar(x=conditions, y=acc, name=name, marker_color=SEQUENCE[i],
                    text=[f"{a:.0%}" for a in acc], textposition="outside")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return fig


def residual_figure(norms, title: str = "") -> go.Figure:
    """Per token: the size of each attention and MLP update written into the residual.

    `norms`: course.inspect_model.ResidualNorms.
    """
    labels = [f"{i}:{w}" for i, w in enumerate(norms.tokens)]
    fig = figure(title or "How much each block changes each token", "token",
                 "norm of the update", barmode="group")
    for layer in range(norms.attn.shape[0]):
        fig.add_bar(x=labels, y=norms.attn[layer].tolist(), name=f"attention {layer}",
                    marker_color=SEQUENCE[2 * layer % len(SEQUENCE)])
        fig.add_bar(x=labels, y=norms.ffn[layer].tolist(), name=f"MLP {layer}",
                    marker_color=SEQUENCE[(2 * layer + 1) % len(SEQUENCE)])
    fig.add_scatter(x=labels, y=norms.stream[0].tolist(), mode="lines+markers",
                    name="embedding |x|", line=dict(color=COLORS["neutral"], dash="dot"))
    return fig
