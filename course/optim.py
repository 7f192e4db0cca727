"""The training loop on two knobs, and what optimizers keep in memory (notebook 02).

The two-knob model is notebook 00's line y = w·x + b fitted by mean squared error, with
the points moved to x in [1, 5]: away from zero the two knobs interact (raising the
slope can be undone by lowering the offset), so the loss surface is a long, narrow
valley where plain gradient descent zig-zags, momentum builds up speed along the valley
floor and Adam rescales each knob separately. Every trajectory here follows the exact
update rules of `torch.optim` (SGD, momentum, Adam), re-written in numpy so a slider
responds at once; the tests check them step by step against `torch.optim` itself.

`state_bytes` reads a real optimizer's `state` after a step to show what it stores:
SGD nothing, SGD with momentum one buffer per parameter, Adam(W) two (notebook 03).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from course.turntable import Points

OPTIMIZERS = ("sgd", "momentum", "adam")
MOMENTUM = 0.9


def valley_points(n: int = 40, noise: float = 0.5, seed: int = 0) -> Points:
    """Noisy points around y = 2x − 3 on x in [1, 5] (the knobs' best setting: w≈2, b≈−3)."""
    if n < 2:
        raise ValueError("Need at least two points to fit a line.")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(1, 5, n))
    return Points(x, 2.0 * x - 3.0 + noise * rng.standard_normal(n))


@dataclass
class Grid:
    w: np.ndarray  # (n_w,)
    b: np.ndarray  # (n_b,)
    loss: np.ndarray  # (n_b, n_w): rows are b, columns w, as plotly's contour wants


def loss_grid(pts: Points, w_range=(-2.0, 6.0), b_range=(-12.0, 6.0), n: int = 81) -> Grid:
    """The mean squared error at every (w, b) of an n × n grid."""
    w, b = np.linspace(*w_range, n), np.linspace(*b_range, n)
    pred = w[None, :, None] * pts.x + b[:, None, None]  # (n_b, n_w, points)
    return Grid(w, b, ((pred - pts.y) ** 2).mean(-1))


def _loss(knobs: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((knobs[0] * x + knobs[1] - y) ** 2).mean()


def _tensors(pts: Points) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(pts.x, dtype=torch.float64), torch.tensor(pts.y, dtype=torch.float64))


def gradient_at(w: float, b: float, pts: Points) -> tuple[float, float, float]:
    """(loss, dL/dw, dL/db) at the knobs, by torch's backward pass."""
    knobs = torch.tensor([w, b], dtype=torch.float64, requires_grad=True)
    loss = _loss(knobs, *_tensors(pts))
    loss.backward()
    return loss.item(), knobs.grad[0].item(), knobs.grad[1].item()


def max_stable_lr(pts: Points) -> float:
    """The largest learning rate for which plain gradient descent converges: 2 / λ_max of
    the loss's Hessian, H = 2 [[mean x², mean x], [mean x, 1]] (constant for a line fit)."""
    h = 2 * np.array([[np.mean(pts.x ** 2), np.mean(pts.x)], [np.mean(pts.x), 1.0]])
    return float(2 / np.linalg.eigvalsh(h).max())


def make_optimizer(kind: str, params, lr: float) -> torch.optim.Optimizer:
    """torch.optim.SGD, SGD with momentum 0.9, or Adam at learning rate `lr`."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {kind!r}.")
    if not lr > 0:
        raise ValueError("The learning rate must be positive.")
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM if kind == "momentum" else 0.0)


@dataclass
class Trajectory:
    kind: str
    knobs: np.ndarray  # (steps + 1, 2): (w, b) before each step and after the last
    loss: np.ndarray  # (steps + 1,)
    diverged: bool  # the loss blew up (stopped early)


def _loss_and_grad(k: np.ndarray, pts: Points) -> tuple[float, np.ndarray]:
    r = k[0] * pts.x + k[1] - pts.y  # residuals of the line
    return float(np.mean(r ** 2)), np.array([2 * np.mean(r * pts.x), 2 * np.mean(r)])


class _Step:
    """One update rule, written as torch.optim implements it (tests check it step by step
    against torch.optim.SGD / Adam): momentum v ← μ v + g; Adam with bias correction."""

    def __init__(self, kind: str, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        make_optimizer(kind, [torch.zeros(1, requires_grad=True)], lr)  # validates
        self.kind, self.lr, self.betas, self.eps = kind, lr, betas, eps
        self.v = self.m = self.s = np.zeros(2)
        self.t = 0

    def __call__(self, k: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.t += 1
        if self.kind == "sgd":
            return k - self.lr * g
        if self.kind == "momentum":
            self.v = g if self.t == 1 else MOMENTUM * self.v + g
            return k - self.lr * self.v
        b1, b2 = self.betas  # Adam: running mean and mean square of the gradient
        self.m = b1 * self.m + (1 - b1) * g
        self.s = b2 * self.s + (1 - b2) * g * g
        m_hat, s_hat = self.m / (1 - b1 ** self.t), self.s / (1 - b2 ** self.t)
        return k - self.lr * m_hat / (np.sqrt(s_hat) + self.eps)


def trajectory(kind: str, pts: Points, start=(0.0, 0.0), lr: float = 0.02,
               steps: int = 50) -> Trajectory:
    """`steps` steps of one optimizer from `start`; the four-step loop: predict, compare
    with the points, measure the loss, update the knobs."""
    if steps < 0:
        raise ValueError("steps must be zero or more.")
    step, k = _Step(kind, lr), np.array(start, dtype=float)
    path, losses = [k], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            loss, g = _loss_and_grad(k, pts)  # predict + compare + measure (+ gradient)
            losses.append(loss)
            if not np.isfinite(loss) or loss > 1e6 * max(losses[0], 1.0):
                return Trajectory(kind, np.array(path), np.array(losses), True)
            k = step(k, g)  # turn the knobs
            path.append(k)
        losses.append(_loss_and_grad(k, pts)[0])
    return Trajectory(kind, np.array(path), np.array(losses), not np.isfinite(losses[-1]))


def torch_trajectory(kind: str, pts: Points, start=(0.0, 0.0), lr: float = 0.02,
                     steps: int = 50) -> np.ndarray:
    """The same loop with torch.optim and torch's backward: knobs (steps + 1, 2)."""
    x, y = _tensors(pts)
    knobs = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(kind, [knobs], lr)
    path = [knobs.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        _loss(knobs, x, y).backward()
        opt.step()
        path.append(knobs.detach().numpy().copy())
    return np.array(path)


@lru_cache(maxsize=256)
def trajectories(w0: float, b0: float, lr: float, steps: int) -> dict[str, Trajectory]:
    """All three optimizers from the same start on `valley_points()` (cached for widgets)."""
    pts = valley_points()
    return {k: trajectory(k, pts, (w0, b0), lr, steps) for k in OPTIMIZERS}


@dataclass
class StateBytes:
    params: int  # bytes of the parameters
    grads: int  # bytes of their gradients
    states: dict  # optimizer state name -> bytes (e.g. exp_avg, exp_avg_sq)
    n_params: int

    @property
    def optimizer(self) -> int:
        return sum(self.states.values())

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> StateBytes:
    """Bytes held for training, read from the model and from `optimizer.state` (call it
    after at least one `step()`, when the optimizer has created its state)."""
    nbytes = lambda t: t.numel() * t.element_size()
    params = list(model.parameters())
    states: dict[str, int] = {}
    for p in params:
        for name, value in optimizer.state.get(p, {}).items():
            if torch.is_tensor(value):
                states[name] = states.get(name, 0) + nbytes(value)
    return StateBytes(sum(nbytes(p) for p in params),
                      sum(nbytes(p.grad) for p in params if p.grad is not None),
                      states, sum(p.numel() for p in params))


def tiny_model_state_bytes(kind: str = "adamw", seed: int = 0) -> StateBytes:
    """One real training step of the course's tiny model with `kind` in "sgd",
    "momentum", "adamw", then its bytes of parameters, gradients and optimizer state."""
    from course import data
    from course.model import TinyLM
    from course.train import tiny_config

    torch.manual_seed(seed)
    model = TinyLM(tiny_config())
    opts = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1),
            "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=MOMENTUM),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3)}
    if kind not in opts:
        raise ValueError(f"kind must be one of {', '.join(opts)}, not {kind!r}.")
    opt = opts[kind](model.parameters())
    x, y = data.batch(data.split()[0], 4, model.cfg.seq_len, torch.Generator().manual_seed(seed))
    model(x, y).loss.backward()
    opt.step()
    return state_bytes(model, opt)
