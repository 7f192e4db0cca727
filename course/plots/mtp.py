"""Figures for notebook 12 (multi-token prediction and speculative decoding)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure


def loss_curves(curves: dict, window: int = 20) -> go.Figure:
    """Main-model training loss per step for each run (label -> (steps,) array), smoothed."""
    fig = figure("Main-model training loss, with and without the MTP objective",
                 "training step", "next-token cross-entropy (nats)")
    for i, (label, loss) in enumerate(curves.items()):
        loss = np.asarray(loss, dtype=float)
        w = max(1, min(window, len(loss)))
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        fig.add_scatter(x=np.arange(w - 1, len(loss)), y=smooth, name=label,
                        line=dict(color=SEQUENCE[i % len(SEQUENCE)]))
    return fig


def acceptance_bars(groups: dict, title: str, x_title: str, overall: float | None = None
                    ) -> go.Figure:
    """Acceptance rate per group (name -> (rate, count)), with the overall rate as a line."""
    names = [str(k) for k in groups]
    rates = [v[0] for v in groups.values()]
    counts = [v[1] for v in groups.values()]
    fig = figure(title, x_title, "drafts accepted (%)", yaxis_range=[0, 105])
    fig.add_bar(x=names, y=[100 * r for r in rates], customdata=counts, name="acceptance",
                marker_color=COLORS["primary"],
                hovertemplate="%{x}: %{y:.0f}% of %{customdata} drafts<extra></extra>")
    if overall is not None:
        fig.add_hline(y=100 * overall, line_dash="dash", line_color=COLORS["secondary"],
                      annotation_text=f"all drafts {100 * overall:.0f}%")
    return fig


def _spread_bars(fig: go.Figure, x: list, spreads: list, name: str, colour: str,
                 scale: float = 100.0) -> None:
    """Bars at the mean over seeds, with whiskers from the lowest to the highest seed."""
    mean = [scale * s.mean for s in spreads]
    fig.add_bar(x=x, y=mean, name=name, marker_color=colour,
                error_y=dict(type="data", symmetric=False,
                             array=[scale * s.hi - m for s, m in zip(spreads, mean)],
                             arrayminus=[m - scale * s.lo for s, m in zip(spreads, mean)]),
                customdata=[[scale * s.lo, scale * s.hi, len(s.values)] for s in spreads],
                hovertemplate=f"{name}, %{{x}}: %{{y:.0f}}% (%{{customdata[0]:.0f}}–"
                              "%{customdata[1]:.0f}% over %{customdata[2]} seeds)<extra></extra>")


def acceptance_over_seeds(study) -> go.Figure:
    """Grouped bars for a `course.mtp_study.Study`: per λ, the drafts accepted at each depth
    of each MTP model, mean over seeds with min–max whiskers."""
    fig = figure("Drafts accepted (sampled decoding), mean and min–max over seeds",
                 "MTP loss weight λ", "drafts accepted (%)", yaxis_range=[0, 105])
    x = [f"λ = {lam:g}" for lam in study.lams]
    i = 0
    for depth in study.depths:
        for k in range(1, depth + 1):
            spreads = [study.spread(depth, lam, f"accept {k}") for lam in study.lams]
            _spread_bars(fig, x, spreads, f"depth-{depth} model, draft {k}",
                         SEQUENCE[i % len(SEQUENCE)])
            i += 1
    fig.update_layout(barmode="group")
    return fig


def heads_over_seeds(study) -> go.Figure:
    """Sequential MTP modules against parallel heads (teacher-forced agreement with the
    main model per depth), mean over seeds with min–max whiskers."""
    depth, lam = study.settings["heads_at"]
    fig = figure(f"Sequential MTP modules vs parallel heads (λ = {lam:g}), over seeds",
                 "depth k (predicts the token k + 1 ahead)",
                 "agrees with the main model (%)", yaxis_range=[0, 105])
    for i, heads in enumerate(("sequential", "parallel")):
        spreads = [study.spread(depth, lam, f"agree {k}", heads) for k in range(1, depth + 1)]
        _spread_bars(fig, [str(k) for k in range(1, depth + 1)], spreads, heads,
                     SEQUENCE[i % len(SEQUENCE)])
    fig.update_layout(barmode="group")
    return fig
