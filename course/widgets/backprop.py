"""Widget for notebook 02: two knobs over a real loss surface; SGD, momentum and Adam
from the knobs' position, with a learning-rate slider and step buttons. Each update
runs three short optimizer loops (cached by rounded settings) and redraws in place."""

from __future__ import annotations

import ipywidgets as W

from course import optim
from course.plots import backprop as plots
from course.widgets import LiveFigure, log_slider, register_bench, slider

ARROW_SCALE = 0.08  # the downhill arrow is this many "learning rates" long, for display


def knob_state(w: float, b: float, lr: float, steps: int) -> dict:
    """Loss and gradient at the knobs, and each optimizer's path from there."""
    pts = optim.valley_points()
    loss, gw, gb = optim.gradient_at(w, b, pts)
    paths = optim.trajectories(round(w, 3), round(b, 3), round(lr, 6), int(steps))
    arrow = (w - ARROW_SCALE * gw, b - ARROW_SCALE * gb)
    return dict(loss=loss, grad=(gw, gb), arrow=arrow, knob=(w, b), paths=paths,
                stable_lr=optim.max_stable_lr(pts), lr=lr)


def _draw(fig, r) -> None:
    for trace, tr in zip(fig.data[1:4], r["paths"].values()):
        trace.x, trace.y = tr.knobs[:, 0], tr.knobs[:, 1]
    fig.data[4].x, fig.data[4].y = [r["knob"][0]], [r["knob"][1]]
    fig.data[5].x = [r["knob"][0], r["arrow"][0]]
    fig.data[5].y = [r["knob"][1], r["arrow"][1]]


def _summary(r) -> str:
    gw, gb = r["grad"]
    parts = [f"loss <b>{r['loss']:.3f}</b> · gradient (∂L/∂w, ∂L/∂b) = ({gw:.2f}, {gb:.2f})"]
    for kind, tr in r["paths"].items():
        end = "diverged" if tr.diverged else f"loss {tr.loss[-1]:.3f}"
        parts.append(f"{kind}: {end}")
    if r["lr"] > r["stable_lr"]:
        parts.append(f"lr above 2/λ_max = {r['stable_lr']:.3f}: plain SGD must diverge")
    return " · ".join(parts)


@register_bench("knobs", notebook="02", sweep=lambda: [
    dict(w=1.0), dict(b=-5.0), dict(lr=0.05), dict(steps=60), dict(lr=0.1, steps=30),
    dict(w=4.0, b=2.0), dict(steps=100)])
def knob_explorer() -> LiveFigure:
    """Sliders for the two knobs, the learning rate and the number of steps; buttons
    add steps."""
    controls = dict(w=slider("knob w", -2.0, 6.0, -1.0, step=0.1, fmt=".1f"),
                    b=slider("knob b", -12.0, 6.0, 4.0, step=0.1, fmt=".1f"),
                    lr=log_slider("learning rate", -3, -0.5, 0.02, step=0.05),
                    steps=slider("steps", 0, 200, 20))
    buttons = [W.Button(description=f"+{n} step{'s' * (n > 1)}") for n in (1, 10)]
    reset = W.Button(description="reset")

    def bump(n):
        return lambda _b: setattr(controls["steps"], "value",
                                  min(controls["steps"].max, controls["steps"].value + n))
    buttons[0].on_click(bump(1))
    buttons[1].on_click(bump(10))
    reset.on_click(lambda _b: setattr(controls["steps"], "value", 0))
    r = knob_state(-1.0, 4.0, 0.02, 20)
    fig = plots.knob_figure(optim.loss_grid(optim.valley_points()), r["paths"], r["knob"],
                            r["arrow"])
    return LiveFigure(controls, knob_state, _draw, fig, summary=_summary,
                      extra=[W.HBox([*buttons, reset])])
