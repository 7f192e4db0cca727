"""Widgets for notebooks 08 (routing collapse) and 09 (balancing). Each slider change
trains the course's tiny MoE model (`course.moe.train`, cached by its arguments), so the
sliders update on release only, and a progress bar shows the training steps."""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from course import moe
from course.plots import moe as plots
from course.presets import preset
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider
from course.widgets.gates import Rule, gate

#: Longest run a steps slider offers, and where it opens: a new setting then trains within
#: 5 s on one core even at 32 experts and top-4 (measured: 6.4 s of CPU for 150 steps, 3.9 s
#: for 90). The notebooks' 150-step runs hold every shorter run as a checkpoint, so the
#: widgets open on a run cut from them, free.
MAX_STEPS = 90


def collapse(n_experts: int, top_k: int, router_std: float, steps: int, score_func: str,
             ep_ranks: int, progress=None) -> dict:
    """Train with no balancing; return the run, its MaxVio and the EP view of the last steps."""
    run = moe.train("none", steps=int(steps), n_experts=int(n_experts), top_k=int(top_k),
                    router_std=float(router_std), score_func=score_func, progress=progress)
    tail = run.load[-10:].mean(0)  # recent load, less noisy than one batch
    return dict(run=run, ep=moe.ep_ranks(tail, int(ep_ranks)))


def _draw_collapse(fig, result) -> None:
    load = result["run"].load
    fig.data[0].z = load.T
    fig.data[0].x = np.arange(1, len(load) + 1)
    fig.data[0].y = np.arange(load.shape[1])


def _summary_collapse(result) -> str:
    run, ep = result["run"], result["ep"]
    mv = run.max_vio
    return (f"MaxVio first 10 steps <b>{mv[:10].mean():.2f}</b> → last 10 "
            f"<b>{mv[-10:].mean():.2f}</b> · held-out {run.val_max_vio:.2f} · "
            f"on {len(ep.tokens_per_rank)} GPUs the busiest does {ep.slowdown:.2f}× its share: "
            f"utilisation <b>{ep.utilisation:.0%}</b> · val loss {run.val_loss:.3f}")


@register_bench("moe_collapse", notebook="08", sweep=lambda: [
    dict(top_k=2), dict(router_std=0.2), dict(n_experts=8), dict(ep_ranks=8)],
    clear=moe.RUNS.clear)
def collapse_explorer() -> LiveFigure:
    """Sliders -> a no-balancing training run: load heat map, MaxVio, EP utilisation."""
    p = preset("moe")
    controls = dict(
        n_experts=slider("experts", 4, 32, p["n_experts"], step=4, slow=True),
        top_k=slider("top-k", 1, 4, p["top_k"], slow=True),
        router_std=log_slider("router init std", -3, 0, 0.02, step=0.1, slow=True),
        steps=slider("steps", 30, MAX_STEPS, min(p["steps"], MAX_STEPS),
                     step=moe.CHECKPOINT_EVERY, slow=True),
        score_func=dropdown("scores", ["softmax", "sigmoid"], p["score_func"]),
        ep_ranks=dropdown("GPUs (EP ranks)", [1, 2, 4, 8], 4),
    )
    return LiveFigure(controls, collapse, _draw_collapse, plots.load_heatmap(np.zeros((1, 1))),
                      summary=_summary_collapse, progress=True)


#: Notebook 09's router: DeepSeek-V3's sigmoid scores, 2 of 16 experts.
ROUTER = dict(score_func="sigmoid", top_k=2)
ALPHAS = (0.0001, 0.001, 0.01, 0.03, 0.1, 0.3, 1.0)
GAMMAS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def balancing(method: str, alpha: float, gamma: float, steps: int, progress=None) -> dict:
    """One run with the chosen balancing, and the unbalanced run for comparison (the same
    run when `method` is "none"). Only the knob of the chosen method matters: α weights
    the batch-wise aux loss ("aux") or DeepSeek-V3's sequence-wise one ("sequence aux")."""
    kw = {"none": ("none", {}), "aux": ("aux", dict(alpha=float(alpha))),
          "sequence aux": ("aux", dict(alpha=float(alpha), aux_scope="sequence")),
          "bias": ("bias", dict(gamma=float(gamma)))}
    if method not in kw:
        raise ValueError("balancing must be one of none, aux, sequence aux or bias, not "
                         f"{method!r}.")
    base = moe.train("none", steps=int(steps), progress=progress, **ROUTER)
    balance, settings = kw[method]
    run = moe.train(balance, steps=int(steps), progress=progress, **settings, **ROUTER)
    return dict(run=run, base=base, method=method)


def _draw_balancing(fig, result) -> None:
    for trace, run in zip(fig.data, (result["base"], result["run"])):
        y = np.convolve(run.max_vio, np.ones(5) / 5, mode="valid")
        trace.x, trace.y = np.arange(len(y)) + 3, y
    fig.data[1].name = result["method"]
    fig.data[1].visible = result["method"] != "none"  # not the same curve twice


def _summary_balancing(result) -> str:
    run, base = result["run"], result["base"]
    if result["method"] == "none":
        return (f"no balancing: held-out MaxVio <b>{base.val_max_vio:.2f}</b> · held-out "
                f"loss {base.val_loss:.3f} (perplexity {np.exp(base.val_loss):.2f}) · pick "
                "aux or bias to compare")
    return (f"held-out MaxVio: none <b>{base.val_max_vio:.2f}</b> vs {result['method']} "
            f"<b>{run.val_max_vio:.2f}</b> · held-out loss {base.val_loss:.3f} vs "
            f"{run.val_loss:.3f} (perplexity {np.exp(base.val_loss):.2f} vs "
            f"{np.exp(run.val_loss):.2f})")


#: The balancing knob that cannot act with the chosen method, and why.
BALANCING_RULES = (
    Rule(("alpha",), lambda v: v["method"] in ("aux", "sequence aux"),
         "α weights the auxiliary loss: pick aux or sequence aux to use it"),
    Rule(("gamma",), lambda v: v["method"] == "bias", "γ is the bias step: pick bias to use it"),
)


def _choice_slider(description: str, options, value) -> W.SelectionSlider:
    return W.SelectionSlider(description=description, options=list(options), value=value,
                             continuous_update=False, style={"description_width": "initial"},
                             layout=W.Layout(width="320px"))


@register_bench("moe_balancing", notebook="09", sweep=lambda: [
    dict(method="aux", alpha=0.1), dict(method="sequence aux", alpha=0.1),
    dict(method="bias", gamma=0.01), dict(steps=60)],
    clear=moe.RUNS.clear)
def balancing_explorer() -> LiveFigure:
    """Dropdown + alpha/gamma sliders -> MaxVio over training against no balancing. Opens
    on the notebook's bias run (γ = 0.003), cut from the 150-step run Run All trained."""
    p = preset("moe")
    controls = dict(
        method=dropdown("balancing", ["bias", "aux", "sequence aux", "none"], "bias"),
        alpha=_choice_slider("aux α", ALPHAS, 0.1),
        gamma=_choice_slider("bias γ", GAMMAS, 0.003),
        steps=slider("steps", 30, MAX_STEPS, min(p["steps"], MAX_STEPS),
                     step=moe.CHECKPOINT_EVERY, slow=True),
    )
    fig = plots.lines({"none": [0.0], "bias": [0.0]}, "MaxVio per batch (5-step mean)",
                      "MaxVio")
    return LiveFigure(controls, balancing, _draw_balancing, fig, summary=_summary_balancing,
                      progress=True, extra=[gate(controls, *BALANCING_RULES)])
