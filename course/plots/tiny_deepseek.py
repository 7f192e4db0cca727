"""Figures for notebook 14: the tiny DeepSeek's training curve and its ablation, measured."""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, TEMPLATE, figure
from course.units import fmt_count

#: (column of a Row, panel title, lower is better?)
PANELS = (
    ("val_loss", "validation loss (nats)", True),
    ("kv_bytes_per_token", "KV cache (bytes / token)", True),
    ("active_params", "active params", True),
    ("total_params", "total params", True),
    ("tokens_per_s", "training tokens / s (one CPU core)", False),
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


def _label(variant: str) -> str:
    from course.tiny_deepseek import VARIANTS

    label = VARIANTS[variant][0]
    return label if variant == "full" else label.replace(" instead of ", " ⟵ ")


def _error(spreads: list, axis: str = "y") -> dict:
    """Min–max error bars around the means (a missing spread draws none)."""
    up = [s.hi - s.mean if s else 0 for s in spreads]
    down = [s.mean - s.lo if s else 0 for s in spreads]
    return {f"error_{axis}": dict(type="data", symmetric=False, array=up, arrayminus=down,
                                  color=COLORS["neutral"], thickness=1.5, width=4)}


def ablation_bars(spreads: dict, title: str = "What each component buys (measured, "
                  "mean and min–max over seeds)", panels=PANELS) -> go.Figure:
    """One small bar chart per measured column: bars at the mean over seeds, whiskers at
    the min and max; the full model's bar in the accent colour. spreads: variant -> column
    -> `course.seeds.Spread` (`course.tiny_deepseek.ablation`; a dense row has no MaxVio)."""
    cols = 4
    nrows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[p[1] for p in panels],
                        vertical_spacing=0.28, horizontal_spacing=0.06)
    labels = [_label(v) for v in spreads]
    colors = [COLORS["accent"] if v == "full" else COLORS["primary"] for v in spreads]
    for i, (field, _, _) in enumerate(panels):
        cells = [cols_.get(field) for cols_ in spreads.values()]
        fig.add_bar(x=labels, y=[s.mean if s else 0 for s in cells],
                    text=[_short(s.mean) if s else "—" for s in cells], textposition="inside",
                    marker_color=colors, showlegend=False, row=i // cols + 1,
                    col=i % cols + 1, **_error(cells))
    fig.update_layout(template=TEMPLATE, title=title, height=330 * nrows + 120, width=1000,
                      margin=dict(t=90, b=40))
    fig.update_xaxes(tickangle=-40, tickfont=dict(size=9))
    fig.update_annotations(font_size=12)
    return fig


def _fmt(field: str, v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "—"
    if field.endswith("params"):
        return fmt_count(v)
    if field == "kv_bytes_per_token":
        return f"{v:,.0f} B"
    if field == "tokens_per_s":
        return f"{v:,.0f}"
    return f"{v:.3f}" if field == "val_loss" else f"{v:.2f}"


def _cell(field: str, s) -> str:
    """The mean, and the min–max over seeds below it where the seeds disagree."""
    if s is None:
        return "—"
    if s.lo == s.hi:
        return _fmt(field, s.mean)
    return (f"{_fmt(field, s.mean)}<br><small>{_fmt(field, s.lo)}–{_fmt(field, s.hi)}"
            f"</small>")


def ablation_table(spreads: dict, panels=PANELS) -> str:
    """The ablation as an HTML table: per cell the mean over seeds and its min–max; each
    row links to the notebook that explains the component."""
    from course.tiny_deepseek import VARIANTS

    n = {len(s.values) for cols in spreads.values() for s in cols.values()}
    head = "".join(f"<th>{html.escape(p[1])}</th>" for p in panels)
    body = []
    for v, cols in spreads.items():
        label, notebook = VARIANTS[v]
        link = f'<a href="{notebook}.ipynb">{html.escape(label)}</a>'
        style = ' style="font-weight:600"' if v == "full" else ""
        cells = "".join(f"<td>{_cell(f, cols.get(f))}</td>" for f, _, _ in panels)
        body.append(f"<tr{style}><td>{link}</td>{cells}</tr>")
    seeds = "/".join(map(str, sorted(n)))
    return (f"<table><caption>mean over {seeds} seeds; below it the min–max where the seeds "
            f"differ</caption><thead><tr><th>variant (links to its notebook)</th>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def balancing_scatter(spreads: dict, picks=(), title: str = "Aux loss vs bias, each at "
                      "several strengths (mean and min–max over seeds)") -> go.Figure:
    """Held-out loss (x) against held-out MaxVio (y), one point per setting ("aux 0.01",
    "bias 0.003", ... from `course.tiny_deepseek.balancing`); lower-left is better.
    `picks`: setting names drawn larger (the chosen best of each method)."""
    fig = figure(title, "held-out loss (nats)", "held-out MaxVio (busiest expert / mean − 1)",
                 height=440)
    for method, color, symbol, knob in (("aux", COLORS["secondary"], "square", "α"),
                                        ("bias", COLORS["primary"], "circle", "γ")):
        names = [k for k in spreads if k.split()[0] == method]
        loss = [spreads[k]["val_loss"] for k in names]
        vio = [spreads[k]["max_vio"] for k in names]
        fig.add_scatter(x=[s.mean for s in loss], y=[s.mean for s in vio],
                        mode="markers+text", name=f"{method} ({knob} = ...)",
                        text=[f"{knob}={k.split()[1]}" for k in names],
                        textposition="top right", marker=dict(
                            color=color, symbol=symbol,
                            size=[16 if k in picks else 9 for k in names]),
                        **_error(loss, "x"), **_error(vio, "y"))
    return fig


def _short(v: float) -> str:
    """1,024 -> '1.0 K', 0.314 -> '0.314': bar labels a learner can read at a glance."""
    return fmt_count(v) if abs(v) >= 1000 else f"{v:.3g}"
