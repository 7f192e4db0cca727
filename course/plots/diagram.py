"""The transformer as a diagram (notebook 01): drawn with plotly shapes, not an image file,
so the sizes printed in it are the model's own and every box has a hover text.

tokens -> embedding -> N x [RMSNorm -> attention (RoPE on q, k) -> + residual ->
RMSNorm -> MLP (SwiGLU) -> + residual] -> RMSNorm -> output head -> next-token probabilities
"""

from __future__ import annotations

import plotly.graph_objects as go

from course.plots import COLORS, figure

CENTER, BOX_W = 5.0, 3.6


def _box(fig, y, h, text, color, hover, boxes):
    fig.add_shape(type="rect", x0=CENTER - BOX_W / 2, x1=CENTER + BOX_W / 2, y0=y - h / 2,
                  y1=y + h / 2, fillcolor=color, opacity=0.9, line=dict(color="white"))
    fig.add_annotation(x=CENTER, y=y, text=text, showarrow=False,
                       font=dict(color="white", size=13))
    boxes.append((CENTER, y, hover))


def _plus(fig, y, boxes, hover):
    fig.add_shape(type="circle", x0=CENTER - 0.3, x1=CENTER + 0.3, y0=y - 0.3, y1=y + 0.3,
                  fillcolor="white", line=dict(color=COLORS["primary"], width=2))
    fig.add_annotation(x=CENTER, y=y, text="<b>+</b>", showarrow=False,
                       font=dict(size=16, color=COLORS["primary"]))
    boxes.append((CENTER, y, hover))


def _arrow(fig, y_from, y_to, x=CENTER):
    fig.add_annotation(x=x, y=y_to, ax=x, ay=y_from, xref="x", yref="y", axref="x",
                       ayref="y", showarrow=True, arrowhead=2, arrowwidth=1.6,
                       arrowcolor="#4a5568", text="")


def _skip(fig, y_from, y_to, boxes):
    """The residual connection: around the sublayer, into the + node."""
    left = CENTER - BOX_W / 2 - 0.9
    fig.add_shape(type="path", path=f"M {CENTER} {y_from} L {left} {y_from} L {left} {y_to} "
                  f"L {CENTER - 0.32} {y_to}", line=dict(color=COLORS["primary"], width=2.5))
    fig.add_annotation(x=CENTER - 0.32, y=y_to, ax=left, ay=y_to, xref="x", yref="y",
                       axref="x", ayref="y", showarrow=True, arrowhead=2,
                       arrowcolor=COLORS["primary"], text="")
    fig.add_annotation(x=left - 0.15, y=(y_from + y_to) / 2, text="residual", textangle=-90,
                       showarrow=False, font=dict(color=COLORS["primary"], size=12))
    boxes.append((left, (y_from + y_to) / 2, "the residual stream: the block's input is "
                  "added back to what the sublayer writes"))


def transformer_block(n_layers: int, d_model: int, n_heads: int, d_ff: int,
                      vocab_size: int, title: str = "The tiny model, box by box") -> go.Figure:
    """A top-to-bottom diagram of a pre-norm transformer LM with the given sizes."""
    if min(n_layers, d_model, n_heads, d_ff, vocab_size) < 1:
        raise ValueError("All sizes of the diagram must be positive.")
    fig = figure(title, height=720, width=560)
    boxes: list[tuple] = []
    c = COLORS
    _box(fig, 13.0, 0.7, "tokens: word ids", c["neutral"],
         "one integer per word (course.data tokenizer)", boxes)
    _box(fig, 11.9, 0.7, f"embedding ({vocab_size} × {d_model})", c["accent"],
         "a lookup: each word id picks a row, the word's starting vector", boxes)
    fig.add_shape(type="rect", x0=0.9, x1=9.3, y0=4.15, y1=11.2, line=dict(
        color="#a0aec0", dash="dash"), fillcolor="rgba(0,0,0,0)")
    fig.add_annotation(x=9.2, y=11.05, text=f"<b>block × {n_layers}</b>", showarrow=False,
                       xanchor="right", font=dict(size=13))
    _box(fig, 10.2, 0.55, "RMSNorm", c["neutral"], "rescale the vector to unit RMS, "
         "times a learned gain", boxes)
    _box(fig, 9.0, 1.0, f"attention, {n_heads} heads<br>RoPE on q and k", c["secondary"],
         "mixes tokens: each word takes a weighted average of earlier words' values; "
         "RoPE rotates q and k by position, so scores depend on relative position", boxes)
    _plus(fig, 7.9, boxes, "add the attention output to the residual stream")
    _box(fig, 7.0, 0.55, "RMSNorm", c["neutral"], "rescale before the MLP", boxes)
    _box(fig, 5.8, 1.0, f"MLP (SwiGLU)<br>{d_model} → {d_ff} → {d_model}", c["good"],
         "adds knowledge, one token at a time: three matrices and a SiLU gate", boxes)
    _plus(fig, 4.7, boxes, "add the MLP output to the residual stream")
    _box(fig, 3.4, 0.55, "RMSNorm (final)", c["neutral"], "one last rescale", boxes)
    _box(fig, 2.3, 0.7, f"output head ({d_model} × {vocab_size})", c["accent"],
         "a score (logit) for every word of the vocabulary", boxes)
    _box(fig, 1.2, 0.7, "softmax → next-word<br>probabilities", c["primary"],
         "the model's prediction for the next word", boxes)
    for y_from, y_to in ((12.65, 12.25), (11.55, 10.48), (9.93, 9.5), (8.5, 8.2),
                         (7.6, 7.28), (6.73, 6.3), (5.3, 5.0), (4.4, 3.68), (3.13, 2.65),
                         (1.95, 1.55)):
        _arrow(fig, y_from, y_to)
    _skip(fig, 10.75, 7.9, boxes)
    _skip(fig, 7.45, 4.7, boxes)
    fig.add_scatter(x=[b[0] for b in boxes], y=[b[1] for b in boxes], mode="markers",
                    marker=dict(size=30, opacity=0), hovertext=[b[2] for b in boxes],
                    hoverinfo="text", showlegend=False)
    fig.update_xaxes(visible=False, range=[0, 10])
    fig.update_yaxes(visible=False, range=[0.6, 13.5])
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), showlegend=False)
    return fig
