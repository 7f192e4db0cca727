"""The DJ turntable with two knobs (notebook 00): fit a line y = w x + b to points.

The loss is the mean squared error between the line and the points; its gradient says
which way to turn each knob and how hard. Gradient descent turns both knobs a little,
many times. Everything is closed-form numpy, so a slider responds instantly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRUE_W, TRUE_B = 2.0, 1.0


@dataclass(frozen=True)
class Points:
    x: np.ndarray  # (n,)
    y: np.ndarray  # (n,)


def make_points(n: int = 30, noise: float = 0.5, seed: int = 0) -> Points:
    """Noisy points around y = 2x + 1 on x in [-2, 2]."""
    if n < 2:
        raise ValueError("Need at least two points to fit a line.")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2, 2, n))
    return Points(x, TRUE_W * x + TRUE_B + noise * rng.standard_normal(n))


def loss(w: float, b: float, pts: Points) -> float:
    """Mean squared error of the line w x + b."""
    return float(np.mean((w * pts.x + b - pts.y) ** 2))


def gradient(w: float, b: float, pts: Points) -> tuple[float, float]:
    """(dL/dw, dL/db) of the mean squared error, by hand: 2 mean(r x), 2 mean(r)."""
    r = w * pts.x + b - pts.y
    return float(2 * np.mean(r * pts.x)), float(2 * np.mean(r))


def best_fit(pts: Points) -> tuple[float, float]:
    """The knob setting with the lowest loss (least squares, closed form)."""
    w, b = np.polyfit(pts.x, pts.y, 1)
    return float(w), float(b)


def descend(w: float, b: float, pts: Points, lr: float = 0.1,
            steps: int = 20) -> np.ndarray:
    """Gradient descent from (w, b): returns the path, shape (steps + 1, 3) of (w, b, loss)."""
    if lr <= 0 or steps < 0:
        raise ValueError("The learning rate must be positive and steps non-negative.")
    path = [(w, b, loss(w, b, pts))]
    for _ in range(steps):
        gw, gb = gradient(w, b, pts)
        w, b = w - lr * gw, b - lr * gb
        path.append((w, b, loss(w, b, pts)))
    return np.array(path)
