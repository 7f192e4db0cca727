"""The course's model trained in FP32, BF16 and FP8 (notebook 10, §5): does the FP8 recipe
train?

Every linear layer of `course.model.TinyLM` runs in the chosen precision (`FP8Linear` for
FP8: the three GEMMs on E4M3 operands with 1×128 / 128×128 scales); the embedding, the
output head and the norms stay in FP32, as in DeepSeek-V3 (report §3.3). The gap of a run
is its mean training loss over the last `last` steps against the BF16 run's, and its
validation loss against BF16's: the report's baseline.

One seed is an anecdote, so `precisions_over_seeds` repeats the comparison for three
seeds (nine trainings, about a minute of one CPU core, mostly the emulated FP8 casts) and
ships the result under `assets/runs/` (`course.seeds.shipped`); the tests recompute one
seed and compare.
"""

from __future__ import annotations

import functools

import numpy as np

from course import seeds as seeds_mod
from course import validate
from course.presets import preset

PRECISIONS = ("fp32", "bf16", "fp8")
SHIPPED_NAME = "fp8_precisions"


def train_precision(precision: str, steps: int = 150, seed: int = 0):
    """Train the course's model (`course.train`) with every linear in `precision`; cached."""
    validate.choice("precision", precision, PRECISIONS)
    return _train_precision(precision, validate.integer("steps", steps, 1, 100_000),
                            validate.integer("seed", seed, 0, 2**31 - 1))


@functools.lru_cache(maxsize=16)
def _train_precision(precision: str, steps: int, seed: int):
    from course.timing import one_thread
    from course.train import tiny_config, train_lm

    with one_thread():
        return train_lm(tiny_config(precision=precision), steps=steps, seed=seed)


def compare_precisions(steps: int = 150, seed: int = 0, last: int = 20) -> dict:
    """FP32, BF16 and FP8 runs from the same seed; relative gap of each one's mean loss over
    the `last` steps and of its validation loss, against the BF16 run (the report's baseline)."""
    steps = validate.integer("steps", steps, 1, 100_000)
    last = validate.integer("last", last)
    if not 1 <= last <= steps:
        raise ValueError("last must be between 1 and the number of steps.")
    runs = {p: train_precision(p, steps, seed) for p in PRECISIONS}
    base = runs["bf16"]

    def gap(r):
        return float(r.lm_loss[-last:].mean() / base.lm_loss[-last:].mean() - 1)

    return {"loss": {p: r.lm_loss for p, r in runs.items()},
            "val_loss": {p: r.val_loss for p, r in runs.items()},
            "gap": {p: gap(r) for p, r in runs.items()},
            "val_gap": {p: r.val_loss / base.val_loss - 1 for p, r in runs.items()}}


def shipped_key(seeds, steps: int, last: int) -> dict:
    """What a shipped comparison was computed with: seeds, steps, the model's preset."""
    return dict(seeds=list(seeds), steps=steps, last=last, tiny_lm=preset("tiny_lm"))


def precisions_over_seeds(seeds=seeds_mod.DEFAULT_SEEDS, steps: int | None = None,
                          last: int = 20, cache: bool = True, progress=None) -> dict:
    """`compare_precisions` for each seed: the first seed's loss curves ("loss", as in
    `compare_precisions`), and each precision's gaps and validation losses as
    `course.seeds.Spread`s ("gap", "val_gap", "val_loss"). Read from the shipped
    `assets/runs/fp8_precisions.json` when the arguments match it (`cache=False`
    recomputes: nine trainings)."""
    steps = steps or preset("fp8_gemm")["train_steps"]
    seeds = seeds_mod.checked_seeds(seeds)
    key = shipped_key(seeds, steps, last)
    raw = seeds_mod.shipped(SHIPPED_NAME, key,
                            lambda: _compute(seeds, steps, last, progress), cache=cache)
    spread = {name: {p: seeds_mod.Spread.from_dict(d) for p, d in raw[name].items()}
              for name in ("gap", "val_gap", "val_loss")}
    return dict(seeds=seeds, loss={p: np.asarray(v) for p, v in raw["loss"].items()},
                **spread)


def _compute(seeds, steps: int, last: int, progress=None) -> dict:
    """The JSON-able result `precisions_over_seeds` ships."""
    runs = {}

    def one(seed):
        runs[seed] = compare_precisions(steps, seed, last)
        r = runs[seed]
        return {f"{name}/{p}": float(r[name][p]) for name in ("gap", "val_gap", "val_loss")
                for p in PRECISIONS}

    flat = seeds_mod.over_seeds(one, seeds, progress)
    out = {name: {p: flat[f"{name}/{p}"].as_dict() for p in PRECISIONS}
           for name in ("gap", "val_gap", "val_loss")}
    out["loss"] = {p: runs[seeds[0]]["loss"][p].tolist() for p in PRECISIONS}
    return out


def save_precisions(seeds=seeds_mod.DEFAULT_SEEDS, steps: int | None = None, last: int = 20,
                    progress=None):
    """Recompute the comparison and write it where `precisions_over_seeds` finds it."""
    steps = steps or preset("fp8_gemm")["train_steps"]
    seeds = seeds_mod.checked_seeds(seeds)
    return seeds_mod.save_shipped(SHIPPED_NAME, shipped_key(seeds, steps, last),
                                  _compute(seeds, steps, last, progress))
