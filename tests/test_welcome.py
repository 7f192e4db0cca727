"""Notebook 00's computation (the two-knob line fit) and its widget, headless."""

import numpy as np
import pytest
import torch

from course import turntable
from course.widgets import BENCH, LiveFigure, slider
from course.widgets.welcome import turntable_widget


def test_gradient_matches_torch_autograd():
    pts = turntable.make_points(seed=1)
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    loss = ((w * torch.from_numpy(pts.x) + b - torch.from_numpy(pts.y)) ** 2).mean()
    loss.backward()
    assert turntable.loss(0.7, -0.3, pts) == pytest.approx(loss.item(), rel=1e-12)
    assert turntable.gradient(0.7, -0.3, pts) == pytest.approx((w.grad.item(), b.grad.item()))


def test_descent_reaches_least_squares():
    pts = turntable.make_points(n=50, seed=2)
    path = turntable.descend(-3.0, 4.0, pts, lr=0.1, steps=300)
    w, b = np.linalg.lstsq(np.c_[pts.x, np.ones_like(pts.x)], pts.y, rcond=None)[0]
    assert path[-1, :2] == pytest.approx([w, b], rel=1e-6)
    assert np.all(np.diff(path[:, 2]) <= 1e-12)  # small steps never increase the loss


def test_bad_input_is_a_sentence():
    with pytest.raises(ValueError, match="learning rate"):
        turntable.descend(0, 0, turntable.make_points(), lr=0)
    with pytest.raises(ValueError, match="two points"):
        turntable.make_points(n=1)


def test_slider_moves_the_line():
    live = turntable_widget()
    live.controls["w"].value = 2.0  # as a browser would, through the observer
    live.controls["b"].value = -1.0
    assert list(live.fig.data[1].y) == pytest.approx([2.0 * -2.2 - 1, 2.0 * 2.2 - 1])
    assert live.result["loss"] == pytest.approx(turntable.loss(2.0, -1.0, turntable.make_points()))
    assert len(live.fig.data[2].y) == 3  # initial + two slider moves


def test_late_views_get_the_current_figure():
    live = turntable_widget()
    live.apply(w=1.5, b=0.5)
    # the state a view created from now on is built from, not only the update message
    assert list(live.fig._widget_data[1]["y"]) == pytest.approx([1.5 * -2.2 + 0.5,
                                                                 1.5 * 2.2 + 0.5])
    assert live.fig._widget_layout["title"]["text"].startswith("w = 1.50")


def test_button_descends():
    live = turntable_widget()
    start = live.result["loss"]
    live.descend()
    assert live.result["loss"] < 0.25 * start
    assert live.fig.layout.title.text.startswith("w = ")


def test_bad_combination_shows_message_and_keeps_figure():
    def compute(a, b):
        if a > b:
            raise ValueError("a must not exceed b.")
        return a + b

    import plotly.graph_objects as go
    fig = go.Figure(go.Scatter(x=[0], y=[0]))
    live = LiveFigure(dict(a=slider("a", 0, 10, 1), b=slider("b", 0, 10, 5)), compute,
                      lambda f, r: setattr(f.data[0], "y", [r]), fig)
    assert live.result == 6 and live.fig.data[0].y == (6,)
    live.apply(a=9)
    assert live.error == "a must not exceed b." and "a must not exceed b." in live.message.value
    assert live.fig.data[0].y == (6,)  # the last good figure stays
    live.apply(b=10)
    assert live.error is None and live.message.value == "" and live.fig.data[0].y == (19,)


def test_registered_for_bench():
    from course import bench

    entry = bench.load_widget_modules()["turntable"]
    assert entry is BENCH["turntable"] and entry.notebook == "00"
    timing = bench.time_widget(entry, repeat=1)
    assert timing["n"] == len(entry.sweep()) and timing["messages"] == 0
    assert 0 < timing["median_ms"] <= timing["p95_ms"]
