"""Figures for notebook 14: the tiny DeepSeek's training curve and its ablation, measured."""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, TEMPLATE, figure
from course.units import fmt_count

#: (Row field, panel title, lower is better?)
PANELS = (
    ("val_loss", "validation loss (nats)", True),
    ("kv_bytes_per_token", "KV cache (bytes / token)", True),
    ("active_params", "active params", True),
    ("total_params", "total params", True),
    ("tokens_per_s", "training tokens / s (this CPU)", False),
    ("max_vio", "held-out MaxVio", True),
    ("tokens_per_step", "decode tokens / main step", False),
)


def training_curve(loss, lm_loss=None, title: str = "Training the tiny DeepSeek") -> go.Figure:
    """The total loss per step (LM + MTP terms) and, if given, the next-token loss alone."""
    fig = figure(title, "training step", "loss (nats)")
    steps = np.arange(1, len(loss) + 1)
    fig.add_scatter(x=steps, y=loss, mode="lines", name="total (LM + λ·MTP)",
                    line=dict(color=COLORS["primary"], width=2))
    if lm_loss is not None:
        fig.add_scatter(x=steps, y=lm_loss, mode="lines", name="next token only",
                        line=dict(color=COLORS["secondary"], width=2))
    return fig


def ablation_bars(rows: list, title: str = "What each component buys (measured)",
                  panels=PANELS) -> go.Figure:
    """One small bar chart per measured column; the full model's bar in the accent colour.
    rows: `course.tiny_deepseek.Row` objects (dense rows have no MaxVio)."""
    cols = 4
    nrows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[p[1] for p in panels],
                        vertical_spacing=0.28, horizontal_spacing=0.06)
    labels = [r.label if r.variant == "full" else r.label.replace(" instead of ", " ⟵ ")
              for r in rows]
    colors = [COLORS["accent"] if r.variant == "full" else COLORS["primary"] for r in rows]
    for i, (field, _, _) in enumerate(panels):
        values = [getattr(r, field) for r in rows]
        text = ["—" if isinstance(v, float) and math.isnan(v) else _short(v) for v in values]
        fig.add_bar(x=labels, y=[0 if t == "—" else v for t, v in zip(text, values)],
                    text=text, textposition="outside", marker_color=colors, showlegend=False,
                    row=i // cols + 1, col=i % cols + 1, cliponaxis=False)
    fig.update_layout(template=TEMPLATE, title=title, height=330 * nrows + 120, width=1000,
                      margin=dict(t=90, b=40))
    fig.update_xaxes(tickangle=-40, tickfont=dict(size=9))
    fig.update_annotations(font_size=12)
    return fig


def _fmt(field: str, v) -> str:
    from course.units import fmt_count

    if isinstance(v, float) and math.isnan(v):
        return "—"
    if field.endswith("params"):
        return fmt_count(v)
    if field == "kv_bytes_per_token":
        return f"{v:,.0f} B"
    if field == "tokens_per_s":
        return f"{v:,.0f}"
    return f"{v:.3f}" if field == "val_loss" else f"{v:.2f}"


def ablation_table(rows: list, panels=PANELS) -> str:
    """The ablation as an HTML table; each row links to the notebook that explains it."""
    head = "".join(f"<th>{html.escape(p[1])}</th>" for p in panels)
    body = []
    for r in rows:
        link = f'<a href="{r.notebook}.ipynb">{html.escape(r.label)}</a>'
        style = ' style="font-weight:600"' if r.variant == "full" else ""
        cells = "".join(f"<td>{_fmt(f, getattr(r, f))}</td>" for f, _, _ in panels)
        body.append(f"<tr{style}><td>{link}</td>{cells}</tr>")
    return (f"<table><thead><tr><th>variant (links to its notebook)</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _short(v: float) -> str:
    """1,024 -> '1.0 K', 0.314 -> '0.314': bar labels a learner can read at a glance."""
    return fmt_count(v) if abs(v) >= 1000 else f"{v:.3g}"
