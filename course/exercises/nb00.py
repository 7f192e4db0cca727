"""Exercises of notebook 00 · Welcome."""

import numpy as np

from course import turntable
from course.exercises import Exercise, register


def mse(w: float, b: float, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((w * x + b - y) ** 2))


def _cases():
    pts = turntable.make_points()
    return [(0.0, 0.0, pts.x, pts.y), (2.0, 1.0, pts.x, pts.y), (-1.0, 3.0, pts.x, pts.y)]


register(Exercise(
    name="00.mean_squared_error", notebook="00",
    prompt="Write the loss: the mean of the squared differences between the line and the points.",
    hint="np.mean((w * x + b - y) ** 2)",
    reference=mse, cases=_cases,
    oracle=lambda w, b, x, y: turntable.loss(w, b, turntable.Points(x, y)),
    wrong=lambda w, b, x, y: float(np.sum((w * x + b - y) ** 2)),  # sum, not mean
))


def _which_way_b() -> str:
    g_b = turntable.gradient(0.0, 0.0, turntable.make_points())[1]
    return "up" if g_b < 0 else "down"


register(Exercise(
    name="00.which_way_b", notebook="00",
    prompt="At w = 0, b = 0, should gradient descent turn knob b up or down?",
    hint="The gradient points uphill; gradient descent steps against it.",
    expected=_which_way_b, wrong="down",
))
