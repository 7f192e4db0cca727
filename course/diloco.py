"""Low-communication training, DiLoCo-style, on a toy regression task with in-process replicas.

Synchronous data parallelism averages gradients after *every* step. DiLoCo (Douillard et
al. 2023, arXiv:2311.08105) lets each of R replicas take H local AdamW steps on its own
data, then averages the *change* in weights (the "outer gradient", theta - mean theta_r)
and applies it with an outer Nesterov-momentum SGD (lr 0.7, momentum 0.9 in the paper).
Communication falls H-fold: one all-reduce of the weights every H steps instead of one of
the gradients every step.

The task: a student MLP learns a fixed random teacher MLP (mean squared error). Replicas
run one after another in this process; the bytes are what a ring all-reduce of the
exchanged tensor would send per replica, 2 (R-1)/R x 4 bytes per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course import validate
from course.ring import ring_bytes
from course.timing import one_thread  # noqa: F401  (re-exported: notebook 06's exercise)

OUTER_LR, OUTER_MOMENTUM = 0.7, 0.9  # DiLoCo paper, section 3
KNOBS = ("replicas", "steps", "d_in", "width", "batch", "lr", "seed")  # what compare passes on


def _mlp(d_in: int, width: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, 1))


def _batch(teacher, g: torch.Generator, batch: int, d_in: int):
    x = torch.randn(batch, d_in, generator=g)
    with torch.no_grad():
        return x, teacher(x)


@dataclass(frozen=True)
class Run:
    """One training run: held-out loss after each synchronisation and the bytes sent."""
    label: str
    h: int  # local steps between synchronisations (1 for synchronous DP)
    steps: tuple  # inner steps done per replica at each point
    loss: tuple  # held-out MSE of the synchronised model
    bytes_sent: tuple  # cumulative bytes sent per replica


def _setup(d_in: int, width: int, seed: int, n_eval: int = 1024):
    teacher = _mlp(d_in, 4 * width, seed + 1000)
    g = torch.Generator().manual_seed(seed + 7)
    x_eval, y_eval = _batch(teacher, g, n_eval, d_in)
    return teacher, lambda m: torch.nn.functional.mse_loss(m(x_eval), y_eval).item()


def _ring_bytes(model: torch.nn.Module, replicas: int) -> float:
    """Bytes a replica sends to all-reduce the model's FP32 weights (or gradients)."""
    return ring_bytes("all_reduce", 4 * sum(p.numel() for p in model.parameters()), replicas)


def _check(h: int, replicas: int, steps: int, d_in: int, width: int, batch: int,
           lr: float, seed: int) -> None:
    validate.integer("replicas", replicas, 1, 64)
    validate.integer("H", h, 1)
    validate.integer("steps", steps, 1, 100_000)
    validate.integer("d_in", d_in, 1, 4096)
    validate.integer("width", width, 1, 4096)
    validate.integer("batch", batch, 1, 65536)
    validate.positive("lr", lr)
    validate.integer("seed", seed, 0, 2**62)
    if steps < h:
        raise ValueError(f"steps {steps} is fewer than H = {h}: no synchronisation would happen.")


def train_diloco(h: int, replicas: int = 4, steps: int = 240, d_in: int = 8, width: int = 32,
                 batch: int = 32, lr: float = 3e-3, seed: int = 0) -> Run:
    """R replicas, H local AdamW steps each, then an outer Nesterov step on the mean change."""
    _check(h, replicas, steps, d_in, width, batch, lr, seed)
    teacher, evaluate = _setup(d_in, width, seed)
    glob = _mlp(d_in, width, seed)
    outer = torch.optim.SGD(glob.parameters(), lr=OUTER_LR, momentum=OUTER_MOMENTUM,
                            nesterov=True)
    workers = [_mlp(d_in, width, seed) for _ in range(replicas)]
    inner = [torch.optim.AdamW(w.parameters(), lr=lr, weight_decay=0.0) for w in workers]
    gens = [torch.Generator().manual_seed(seed + 1 + r) for r in range(replicas)]
    per_sync = _ring_bytes(glob, replicas)
    points = [(0, evaluate(glob), 0.0)]
    for done in range(h, steps + 1, h):
        for w, opt, g in zip(workers, inner, gens):
            w.load_state_dict(glob.state_dict())
            for _ in range(h):
                x, y = _batch(teacher, g, batch, d_in)
                opt.zero_grad()
                torch.nn.functional.mse_loss(w(x), y).backward()
                opt.step()
        with torch.no_grad():  # outer gradient: how far the replicas moved, on average
            for p, *ps in zip(glob.parameters(), *(w.parameters() for w in workers)):
                p.grad = p - torch.stack(ps).mean(0)
        outer.step()
        points.append((done, evaluate(glob), points[-1][2] + per_sync))
    return Run(f"DiLoCo H={h}", h, *map(tuple, zip(*points)))


def train_sync_dp(replicas: int = 4, steps: int = 240, d_in: int = 8, width: int = 32,
                  batch: int = 32, lr: float = 3e-3, seed: int = 0, eval_every: int = 10) -> Run:
    """Synchronous data parallelism: gradients averaged (all-reduced) after every step."""
    _check(1, replicas, steps, d_in, width, batch, lr, seed)
    validate.positive_int("eval_every", eval_every)
    teacher, evaluate = _setup(d_in, width, seed)
    model = _mlp(d_in, width, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gens = [torch.Generator().manual_seed(seed + 1 + r) for r in range(replicas)]
    per_step = _ring_bytes(model, replicas)
    points = [(0, evaluate(model), 0.0)]
    for step in range(1, steps + 1):
        opt.zero_grad()
        for g in gens:  # the mean of the replicas' losses has the all-reduced gradient
            x, y = _batch(teacher, g, batch, d_in)
            (torch.nn.functional.mse_loss(model(x), y) / replicas).backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            points.append((step, evaluate(model), step * per_step))
    return Run("synchronous DP", 1, *map(tuple, zip(*points)))


def compare(hs=(8, 16, 60), **kw) -> list[Run]:
    """Synchronous DP and DiLoCo at each H, same data, steps and replicas."""
    for key in kw:
        validate.choice("setting", key, KNOBS)
    for h in hs:
        validate.positive_int("H", h)
    with one_thread():
        return [train_sync_dp(**kw)] + [train_diloco(h, **kw) for h in hs]
