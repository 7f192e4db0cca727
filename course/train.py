"""One training loop for the course's one model (`course.model.TinyLM`) on the toy corpus.

AdamW, a fixed learning rate after a short warm-up, seeded batches. After each step it
records the loss and, for MoE models, each MoE layer's expert load; with
`balance="bias"` it then nudges each MoE layer's routing bias (DeepSeek-V3, 2.1.2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from course import data
from course.device import seed_everything
from course.model import TinyConfig, TinyLM


@dataclass
class TrainResult:
    model: TinyLM
    loss: np.ndarray  # (steps,) total training loss per step
    lm_loss: np.ndarray  # (steps,) next-token cross-entropy per step
    load: np.ndarray | None  # (steps, n_moe_layers, n_experts) tokens per expert, or None
    val_loss: float  # next-token cross-entropy on the held-out sentences
    tokens_per_s: float
    extra: dict = field(default_factory=dict)


def tiny_config(**overrides) -> TinyConfig:
    """A TinyConfig for the shipped corpus at the toy/realistic preset, with overrides."""
    from course.presets import preset

    p = preset("tiny_lm")
    base = dict(vocab_size=data.tokenizer().vocab_size, d_model=p["d_model"],
                n_layers=p["n_layers"], n_heads=p["n_heads"], seq_len=p["seq_len"])
    base.update(overrides)
    return TinyConfig(**base)


def train_lm(cfg: TinyConfig, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
             seed: int = 0, warmup: int = 20,
             on_step: Callable[[int, float], None] | None = None,
             progress: Callable[[int, int, str], None] | None = None,
             label: str = "training",
             checkpoint: Callable[[int, TinyLM], None] | None = None) -> TrainResult:
    """Train a fresh `TinyLM(cfg)` for `steps` steps on the shipped corpus.

    `on_step(step, loss)` after each step; `progress(done, total, label)` (the widgets'
    contract, see `course.widgets`) before the first step and after each one;
    `checkpoint(done, model)` after each step, e.g. to evaluate the model on the way (it
    must leave the parameters alone). The learning rate does not depend on `steps`, so the
    first k steps of a run are exactly a k-step run."""
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be at least 1.")
    if progress is not None:
        progress(0, steps, label)
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TinyLM(cfg)
    train, val = data.split()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    losses, lm_losses, loads = [], [], []
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        x, y = data.batch(train, batch_size, cfg.seq_len, gen)
        out = model(x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        moe = model.moe_layers()
        if moe:
            loads.append(np.stack([m.last_load.float().numpy() for m in moe]))
            if cfg.balance == "bias":
                for m in moe:
                    m.update_bias(cfg.bias_gamma)
        losses.append(out.loss.item())
        lm_losses.append(out.lm_loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
        if checkpoint is not None:
            checkpoint(step + 1, model)
        if progress is not None:
            progress(step + 1, steps, label)
    elapsed = time.perf_counter() - start
    return TrainResult(model=model, loss=np.array(losses), lm_loss=np.array(lm_losses),
                       load=np.stack(loads) if loads else None,
                       val_loss=evaluate(model, val, cfg.seq_len),
                       tokens_per_s=steps * batch_size * cfg.seq_len / elapsed)


@torch.no_grad()
def evaluate(model: TinyLM, stream: torch.Tensor, seq_len: int, max_windows: int = 64) -> float:
    """Mean next-token cross-entropy over non-overlapping windows of a held-out stream."""
    model.eval()
    n = min(max_windows, (len(stream) - 1) // seq_len)
    x = stream[: n * seq_len].view(n, seq_len)
    y = stream[1: n * seq_len + 1].view(n, seq_len)
    loss = model(x, y).lm_loss.item()
    model.train()
    return loss
