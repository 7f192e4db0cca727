"""Widgets for notebook 16. Each move trains the course's tiny model on the sorting task
(`course.rl`, cached by its arguments), so the sliders update on release only and the
runs report progress (step k of n, current reward).

The group-size slider keeps the samples per GRPO step fixed (the preset's 8 prompts x 8
answers = 64): G = 2 samples 32 prompts twice each, G = 16 samples 4 prompts 16 times.
That is the choice a rollout budget forces on a real run, and it keeps every move near
the cost of the default (with 8 prompts at every G, G = 16 took 5.5 s on one core)."""

from __future__ import annotations

import html

import ipywidgets as W

from course import rl, validate
from course.plots import rl as plots
from course.presets import preset
from course.widgets import LiveFigure, register_bench, slider

#: learning rates the GRPO slider offers (the preset's default among them)
LRS = (1e-4, 3e-4, 1e-3, 3e-3)


def _live(controls, compute, draw, fig, summary) -> LiveFigure:
    return LiveFigure(controls, compute, draw, fig, summary=summary, progress=True)


def imitation(quality: float, progress=None) -> rl.SFTRun:
    """SFT on demonstrations of which a share `quality` is correct."""
    return rl.sft(round(float(quality), 2), progress=progress)


def _draw_imitation(fig, run) -> None:
    fig.data[0].x, fig.data[0].y = run.eval_steps, run.accuracy
    fig.data[1].x, fig.data[1].y = [0, run.eval_steps[-1]], [run.demo_quality] * 2


def _summary_imitation(run) -> str:
    return (f"demonstrations correct <b>{run.demo_quality:.0%}</b> → SFT model, held-out "
            f"(sampled) <b>{run.accuracy[-1]:.0%}</b> after {run.eval_steps[-1]} steps")


@register_bench("rl_imitation", notebook="16", sweep=lambda: [
    dict(quality=1.0), dict(quality=0.5), dict(quality=0.7)], clear=rl.RUNS.clear)
def imitation_explorer(quality: float = 0.7) -> LiveFigure:
    """Demonstration quality slider -> an SFT run: held-out accuracy against the demos'."""
    controls = dict(quality=slider("demonstrations correct", 0.0, 1.0, quality, step=0.1,
                                   slow=True, fmt=".0%"))
    fig = plots.imitation_curves({"SFT": rl.SFTRun(None, [0], [0], [0], quality)})
    fig.data[0].showlegend = False
    return _live(controls, imitation, _draw_imitation, fig, _summary_imitation)


def reinforcement(group: int, beta: float, eps: float, lr: float, quality: float,
                  progress=None) -> dict:
    """SFT on demonstrations of `quality`, then GRPO with these settings: `group` answers
    to each of `rl.prompts_at_budget(group)` prompts per step."""
    group = int(group)
    base, run = rl.sft_then_grpo(round(float(quality), 2), group=group,
                                 beta=round(float(beta), 4), eps=round(float(eps), 3),
                                 lr=float(lr), progress=progress,
                                 prompts_per_step=rl.prompts_at_budget(group))
    return dict(base=base, run=run)


def _summary_reinforcement(result) -> str:
    run = result["run"]
    G, B = run.settings["group"], run.settings["prompts_per_step"]
    return (f"{B} prompts × G = {G} answers a step · held-out accuracy "
            f"<b>{run.accuracy[0]:.0%}</b> (SFT on "
            f"{result['base'].demo_quality:.0%}-correct demos) → <b>{run.accuracy[-1]:.0%}"
            f"</b> after {len(run.reward)} GRPO steps · mean KL to the reference "
            f"{run.kl[-10:].mean():.3f} · response length {run.length[-10:].mean():.2f} "
            f"tokens · {run.seconds:.1f} s")


@register_bench("rl_grpo", notebook="16", sweep=lambda: [
    dict(group=4), dict(group=16), dict(beta=0.2), dict(eps=0.05), dict(lr=1e-3)],
    clear=rl.RUNS.clear)
def grpo_explorer(quality: float = 0.7) -> LiveFigure:
    """Sliders G, β, ε and learning rate -> GRPO from the SFT model trained on
    demonstrations of which a share `quality` is correct. The start is an argument, not a
    slider: a new start trains SFT and then GRPO (4-5 s on one core, at the edge of the 5 s
    a slider may take); each slider move trains GRPO only, at a fixed number of samples per
    step (`rl.prompts_at_budget`)."""
    p = preset("rl")
    quality = round(validate.fraction("quality", quality), 2)
    controls = dict(
        group=slider("group size G", 2, 16, p["group"], step=2, slow=True),
        beta=slider("KL weight β", 0.0, 0.2, 0.04, step=0.02, slow=True, fmt=".2f"),
        eps=slider("clip ε", 0.05, 0.5, 0.2, step=0.05, slow=True, fmt=".2f"),
        lr=W.SelectionSlider(description="learning rate", options=[(f"{v:g}", v) for v in LRS],
                             value=p["grpo_lr"], continuous_update=False,
                             style={"description_width": "initial"},
                             layout=W.Layout(width="320px")),
    )

    def compute(group, beta, eps, lr, progress=None):
        return reinforcement(group, beta, eps, lr, quality, progress)

    return _live(controls, compute, lambda fig, r: plots.draw_grpo(fig, r["run"]),
                 plots.grpo_panels(), _summary_reinforcement)


class ProgressLine:
    """A progress bar with a line of text for a notebook cell that trains: pass the object
    itself as `progress=` (it is called as progress(done, total, text)); display it first."""

    def __init__(self, label: str):
        self.bar = W.FloatProgress(min=0, max=1, description=label,
                                   style={"description_width": "initial"})
        self.text = W.HTML()
        self.widget = W.HBox([self.bar, self.text])

    def __call__(self, done: int, total: int, text: str) -> None:
        self.bar.value = done / max(total, 1)
        line = html.escape(f"{text}: step {done}/{total}")
        self.text.value = f"<span style='font-size:90%'>{line}</span>"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
