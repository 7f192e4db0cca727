"""Capacity factors on trained MoE runs (notebook 08 §6): what a cap drops and costs.

* `capacity_sweep`: held-out share of dropped routing slots and loss against the capacity
  factor, for a trained run, without retraining.
* `capacity_over_seeds`: the sweep for several balancing methods and seeds, read from
  `assets/runs/moe_capacity.json` when it was written with the same settings
  (`save_capacity()` writes it), else trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from course import seeds as seedlib
from course import validate
from course.moe_eval import GAMMA, _methods, _seed_list, _steps
from course.moe_train import train


@dataclass
class CapacitySweep:
    factors: np.ndarray  # (F,) capacity factors tried
    dropped: np.ndarray  # (F,) share of held-out routing slots dropped
    val_loss: np.ndarray  # (F,) held-out next-token loss with that capacity
    val_loss_no_drop: float  # the same model with no capacity (DeepSeek-V3)
    val_loss_all_dropped: float  # capacity 0: every routed slot dropped (shared experts stay)
    no_drop_factor: float  # smallest factor that drops nothing: max over batches of max/mean
    batch_tokens: int  # tokens per batch the capacity is computed over

    @property
    def loss_share_lost(self) -> np.ndarray:
        """(F,) share of what the routed experts buy (loss with all slots dropped minus loss
        with none dropped) that each capacity gives up."""
        return (self.val_loss - self.val_loss_no_drop) / (self.val_loss_all_dropped
                                                          - self.val_loss_no_drop)


@torch.no_grad()
def capacity_sweep(run, factors, batch: int | None = None) -> CapacitySweep:
    """Held-out share of dropped routing slots and loss against the capacity factor, for a
    trained run (`MoERun` with its model, or a TinyLM). No retraining: the trained router's
    choices are capped after the fact, `batch` held-out windows at a time (default: the
    run's training batch), each MoE layer capped at ceil(factor * tokens * k / E)."""
    from course import data

    model = getattr(run, "model", run)
    if model is None:
        raise ValueError("This run kept no model (it was cut from a longer one): train it "
                         "with moe.train(..., steps=...) to sweep capacities.")
    settings = getattr(run, "settings", {})
    batch = validate.positive_int("batch", batch or settings.get("batch", 16))
    factors = np.array([validate.non_negative("a capacity factor", f) for f in factors])
    seq_len, stream = model.cfg.seq_len, data.split()[1]
    n = min(64, (len(stream) - 1) // seq_len)
    x = stream[: n * seq_len].view(n, seq_len)
    y = stream[1: n * seq_len + 1].view(n, seq_len)
    layers = model.moe_layers()
    model.eval()

    def run_with(factor):
        loss = dropped = slots = 0.0
        worst = 0.0
        for i in range(0, n, batch):
            for m in layers:
                m.capacity_factor = factor
            out = model(x[i: i + batch], y[i: i + batch])
            loss += out.lm_loss.item() * y[i: i + batch].numel()
            dropped += sum(m.last_dropped for m in layers)
            slots += sum(m.last_slots for m in layers)
            for m in layers:  # the factor this batch needed to drop nothing
                load = m.last_load.float()
                worst = max(worst, float(load.max() / load.mean()))
        return loss / y.numel(), dropped / slots, worst

    saved = [m.capacity_factor for m in layers]
    try:
        base, _, need = run_with(None)
        off = run_with(0.0)[0]
        swept = [run_with(float(f))[:2] for f in factors]
    finally:
        for m, c in zip(layers, saved):
            m.capacity_factor = c
        model.train()
    return CapacitySweep(factors, np.array([d for _, d in swept]),
                         np.array([v for v, _ in swept]), base, off, need, batch * seq_len)


#: Notebook 08 §6: the collapsed router and the same router with bias balancing.
FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0)
METHODS = {"no balancing": ("none", {}), "bias balancing": ("bias", dict(gamma=GAMMA))}
NAME = "moe_capacity"


@dataclass
class CapacitySpread:
    methods: list
    seeds: tuple
    steps: int
    sweeps: dict  # label -> [CapacitySweep per seed]
    source: str = "computed"

    def spread(self, label: str, what: str, factor: float | None = None) -> seedlib.Spread:
        """One number per seed: a CapacitySweep field ("no_drop_factor", ...) or, with
        `factor`, a per-factor one ("dropped", "loss_share_lost", "val_loss") at it."""
        values = []
        for s in self.sweeps[label]:
            v = getattr(s, what)
            if factor is not None:
                hits = np.flatnonzero(np.isclose(s.factors, factor))
                if not len(hits):
                    raise ValueError(f"The sweep has no factor {factor}; it has "
                                     f"{s.factors.tolist()}.")
                v = v[hits[0]]
            values.append(float(v))
        return seedlib.Spread(tuple(values), self.seeds)


def _sweep_json(s: CapacitySweep) -> dict:
    return {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
            for k, v in asdict(s).items()}


def _sweep_from(d: dict) -> CapacitySweep:
    return CapacitySweep(**{k: np.array(v) if isinstance(v, list) else v
                            for k, v in d.items()})


def capacity_over_seeds(methods: dict = METHODS, factors=FACTORS,
                        seeds=seedlib.DEFAULT_SEEDS, steps: int | None = None,
                        cache: bool = True, progress=None, **router) -> CapacitySpread:
    """`capacity_sweep` of each {label: (balance, settings)} trained at each seed, read
    from assets/runs/moe_capacity.json when written with these very settings."""
    methods, seeds = _methods(methods), _seed_list(seeds)
    factors = [validate.non_negative("a capacity factor", f) for f in factors]
    key = _key(methods, factors, seeds, steps, router)
    computed = []

    def compute() -> dict:
        computed.append(True)
        out, total = {}, len(methods) * len(seeds)
        for a, (label, (balance, kw)) in enumerate(methods.items()):
            out[label] = []
            for b, seed in enumerate(seeds):
                if progress is not None:
                    progress(a * len(seeds) + b, total, f"{label}, seed {seed}")
                run = train(balance, steps=steps, seed=seed, **kw, **router)
                out[label].append(_sweep_json(capacity_sweep(run, factors)))
        return out

    result = seedlib.shipped(NAME, key, compute, cache=cache)
    return CapacitySpread(list(methods), seeds, key["steps"],
                          {k: [_sweep_from(d) for d in v] for k, v in result.items()},
                          "computed" if computed else f"assets/runs/{NAME}.json")


def _key(methods: dict, factors: list, seeds: tuple, steps, router: dict) -> dict:
    from course.presets import preset

    return dict(methods={k: list(v) for k, v in _methods(methods).items()},
                factors=[float(f) for f in factors], seeds=list(seeds), steps=_steps(steps),
                router=dict(router), moe=preset("moe"), tiny_lm=preset("tiny_lm"))


def save_capacity(progress=None):
    """Recompute notebook 08's capacity comparison and write assets/runs/moe_capacity.json."""
    c = capacity_over_seeds(cache=False, progress=progress)
    key = _key(METHODS, list(FACTORS), c.seeds, c.steps, {})
    result = {k: [_sweep_json(s) for s in v] for k, v in c.sweeps.items()}
    return seedlib.save_shipped(NAME, key, result)


if __name__ == "__main__":
    from course.timing import one_thread

    with one_thread():
        print("wrote", save_capacity(progress=lambda d, t, s: print(f"{d}/{t} {s}",
                                                                  flush=True)))
