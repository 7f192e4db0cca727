"""Figures for notebook 16: imitation (SFT) and reinforcement (GRPO) on the sorting task,
pass@k, the seed-spread comparison and the memory GRPO saves."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course.plots import COLORS, SEQUENCE, TEMPLATE, figure


def imitation_curves(runs: dict, title: str = "Imitation: SFT on demonstrations") -> go.Figure:
    """Held-out accuracy vs SFT step, one line per {label: SFTRun}; dotted: the share of
    correct demonstrations the run imitated."""
    fig = figure(title, "SFT step", "held-out accuracy (sampled)")
    for i, (label, run) in enumerate(runs.items()):
        color = SEQUENCE[i % len(SEQUENCE)]
        fig.add_scatter(x=run.eval_steps, y=run.accuracy, mode="lines+markers", name=label,
                        line=dict(color=color, width=2.5))
        fig.add_scatter(x=[0, run.eval_steps[-1]], y=[run.demo_quality] * 2, mode="lines",
                        name=f"{label}: demos correct", showlegend=False,
                        line=dict(color=color, width=1.5, dash="dot"))
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def grpo_panels(run=None, title: str = "GRPO from the SFT model") -> go.Figure:
    """Three panels of a GRPORun: training reward and held-out accuracy; KL to the
    reference; mean response length; (empty traces when `run` is None)."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "reward (train) and held-out accuracy", "KL to the reference (per token)",
        "response length (tokens)"))
    x, acc_x = ([0], [0]) if run is None else (np.arange(1, len(run.reward) + 1),
                                               run.eval_steps)
    get = (lambda name: [0.0]) if run is None else (lambda name: getattr(run, name))
    fig.add_scatter(x=x, y=get("reward"), name="reward", mode="lines",
                    line=dict(color=COLORS["primary"], width=1.5), row=1, col=1)
    fig.add_scatter(x=acc_x, y=get("accuracy"), name="held-out accuracy",
                    mode="lines+markers", line=dict(color=COLORS["good"], width=2.5),
                    row=1, col=1)
    fig.add_scatter(x=x, y=get("kl"), name="KL", mode="lines", showlegend=False,
                    line=dict(color=COLORS["secondary"], width=1.5), row=1, col=2)
    fig.add_scatter(x=x, y=get("length"), name="length", mode="lines", showlegend=False,
                    line=dict(color=COLORS["accent"], width=1.5), row=1, col=3)
    fig.update_layout(template=TEMPLATE, title=title, height=360, width=1000,
                      legend=dict(orientation="h", y=-0.22, x=0))
    fig.update_xaxes(title_text="GRPO step")
    fig.update_yaxes(range=[0, 1.15], row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(range=[0, 5], row=1, col=3)  # a sorted answer: 3 digits and "."
    fig.update_annotations(font_size=12)
    return fig


def draw_grpo(fig: go.FigureWidget, run) -> None:
    """Update `grpo_panels` traces in place from a GRPORun."""
    steps = np.arange(1, len(run.reward) + 1)
    fig.data[0].x, fig.data[0].y = steps, run.reward
    fig.data[1].x, fig.data[1].y = run.eval_steps, run.accuracy
    fig.data[2].x, fig.data[2].y = steps, run.kl
    fig.data[3].x, fig.data[3].y = steps, run.length


def pass_at_k(curves: dict, title: str = "pass@k: how often one of k samples is right"
              ) -> go.Figure:
    """{label: {k: values over seeds}} as lines of the mean with min–max bars."""
    fig = figure(title, "k (samples per prompt)", "held-out pass@k")
    for i, (label, by_k) in enumerate(curves.items()):
        ks = sorted(by_k)
        vals = [np.atleast_1d(by_k[k]) for k in ks]
        mean = np.array([v.mean() for v in vals])
        fig.add_scatter(x=ks, y=mean, name=label, mode="lines+markers",
                        line=dict(color=SEQUENCE[i % len(SEQUENCE)], width=2.5),
                        error_y=dict(type="data", symmetric=False,
                                     array=[v.max() - m for v, m in zip(vals, mean)],
                                     arrayminus=[m - v.min() for v, m in zip(vals, mean)]))
    fig.update_xaxes(type="log", tickvals=[1, 2, 4, 8, 16])
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


#: (Comparison field, bar label, colour role)
BARS = (("sft", "teacher: SFT", "neutral"), ("sft_grpo", "teacher: SFT → GRPO", "good"),
        ("student_sft", "student: SFT", "neutral"),
        ("student_grpo", "student: SFT → GRPO", "primary"),
        ("student_distilled", "student: distilled from the teacher", "accent"))


def comparison(comp, title: str | None = None) -> go.Figure:
    """Held-out accuracy per method: bar = mean over seeds, dots = each seed."""
    title = title or (f"From {comp.quality:.0%}-correct demonstrations, "
                      f"{len(comp.seeds)} seeds")
    fig = figure(title, "", "held-out accuracy (sampled)", width=900)
    for name, label, role in BARS:
        vals = np.asarray(getattr(comp, name))
        label = label.replace(": ", "<br>")
        fig.add_bar(x=[label], y=[vals.mean()], marker_color=COLORS[role], showlegend=False,
                    text=[f"{vals.mean():.0%}"], textposition="inside",
                    insidetextanchor="middle", textfont=dict(color="white", size=14))
        fig.add_scatter(x=[label] * len(vals), y=vals, mode="markers", showlegend=False,
                        marker=dict(color="#1a202c", size=7, symbol="circle-open"))
    fig.add_hline(y=comp.quality, line_dash="dot", line_color=COLORS["bad"],
                  annotation_text="demonstrations correct", annotation_position="top right")
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    return fig


def memory_bars(mem: dict, title: str = "RL on DeepSeek-V3: what must sit in memory"
                ) -> go.Figure:
    """Stacked bars (TB) of the models PPO and GRPO keep, from `rl.ppo_vs_grpo_memory`."""
    fig = figure(title, "", "terabytes (weights, gradients, optimizer states)", width=720)
    parts = (("policy", "policy (trained)", "primary"),
             ("value_model", "value model (trained)", "bad"),
             ("reference", "reference (frozen)", "neutral"),
             ("reward_model", "reward model (frozen)", "secondary"))
    for key, label, role in parts:
        fig.add_bar(x=["PPO", "GRPO, rule reward"],
                    y=[mem["ppo"][key] / 1e12, mem["grpo"][key] / 1e12],
                    name=label, marker_color=COLORS[role])
    fig.update_layout(barmode="stack")
    return fig
