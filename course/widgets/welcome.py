"""Notebook 00: two knobs (w, b) fit a line; a button lets gradient descent turn them."""

from __future__ import annotations

import ipywidgets as W

from course import turntable
from course.plots.welcome import draw_line_fit, line_fit_figure
from course.widgets import LiveFigure, register_bench, slider


def turntable_widget(points: turntable.Points | None = None, lr: float = 0.1,
                     steps: int = 10) -> LiveFigure:
    pts = points or turntable.make_points()
    history: list[float] = []

    def compute(w: float, b: float) -> dict:
        history.append(turntable.loss(w, b, pts))
        del history[:-60]  # keep the plot readable
        gw, gb = turntable.gradient(w, b, pts)
        return dict(w=w, b=b, loss=history[-1], grad=(gw, gb))

    controls = dict(w=slider("knob w (slope)", -3.0, 5.0, 0.0, 0.01, fmt=".2f"),
                    b=slider("knob b (offset)", -3.0, 5.0, 0.0, 0.01, fmt=".2f"))
    button = W.Button(description=f"Let gradient descent turn the knobs ({steps} steps)",
                      layout=W.Layout(width="340px"))
    live = LiveFigure(controls, compute, lambda fig, r: draw_line_fit(fig, r["w"], r["b"], history),
                      line_fit_figure(pts.x, pts.y), summary=_summary, extra=[button])

    def descend(_=None):
        for w, b, _loss in turntable.descend(controls["w"].value, controls["b"].value, pts,
                                             lr, steps)[1:]:
            live.apply(w=round(float(w), 2), b=round(float(b), 2))

    button.on_click(descend)
    live.descend = descend
    return live


def _summary(r: dict) -> str:
    gw, gb = r["grad"]
    turn = lambda g: "turn it down" if g > 0 else "turn it up"
    return (f"loss <b>{r['loss']:.3f}</b> · gradient ({gw:+.2f}, {gb:+.2f}): "
            f"for knob w {turn(gw)}, for knob b {turn(gb)}")


@register_bench("turntable", notebook="00",
                sweep=lambda: [dict(w=w / 4, b=b / 4) for w in range(-8, 17, 4)
                               for b in range(-8, 17, 8)])
def _bench_turntable() -> LiveFigure:
    return turntable_widget()
