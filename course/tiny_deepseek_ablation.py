"""Notebook 14's comparisons over seeds: the ablation (every variant of
`course.tiny_deepseek` at seeds 0, 1, 2) and the balancing sweep that checks the
ablation's "aux loss instead of bias" row is fair (the aux loss at several α, the bias at
several γ). Each takes minutes of CPU, so each ships as JSON under assets/runs/
(`course.seeds.shipped`): read when the file's key (model config, training settings,
seeds, settings swept) matches, recomputed otherwise or with `cache=False`;
`save_ablation()` rewrites both files.

Verdicts are made over seeds with `course.seeds.differs` (min–max ranges that do not
overlap): `switch_effects` says which switches move the loss more than the seeds do,
`best_balanced` picks each balancing method's best setting by one stated rule.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields

from course import tiny_deepseek as td
from course.seeds import DEFAULT_SEEDS, Spread, differs, over_seeds, save_shipped, shipped

#: the measured columns of a Row
FIELDS = tuple(f.name for f in fields(td.Row))[3:]
#: the balancing sweep (is row 4 fair?): aux-loss weights α (0: no balancing at all) and
#: bias speeds γ, around the preset's 0.01, notebook 09's α = 0.1 and V3's γ = 0.001
ALPHAS = (0.0, 0.01, 0.03, 0.1, 0.3)
GAMMAS = (0.001, 0.003, 0.01, 0.03)


@dataclass
class Shipped:
    """Spreads over seeds, from assets/runs/ or recomputed, and how long computing took."""

    spreads: dict  # row name -> column -> seeds.Spread (a dense row has no max_vio)
    seconds: float  # wall-clock seconds of the computation, on one core, when it was run

    def __getitem__(self, name: str) -> dict:
        return self.spreads[name]


def _key(size: str | None, seeds: tuple, **more) -> dict:
    """Everything a shipped result depends on: the model config, training settings, seeds."""
    return dict(config=td.full_config(size).to_dict(), train=td.settings(size)[1],
                seeds=list(seeds), **more)


def _over_seeds(runs: dict, seeds: tuple, progress) -> dict:
    """{name: run(seed) -> dict} -> {"spreads": {name: {column: Spread dict}}, "seconds"}."""
    start, out, n = time.perf_counter(), {}, len(runs)
    for i, (name, run) in enumerate(runs.items()):
        if progress is not None:
            progress(i, n, name)
        spread = over_seeds(run, seeds)
        out[name] = {k: s.as_dict() for k, s in spread.items()
                     if all(math.isfinite(v) for v in s.values)}  # no MaxVio when dense
    if progress is not None:
        progress(n, n, "done")
    return dict(spreads=out, seconds=time.perf_counter() - start)


def _shipped(name: str, key: dict, runs: dict, seeds: tuple, cache: bool, progress) -> Shipped:
    """The shipped file's spreads, in the order of `runs` (JSON stores them sorted)."""
    raw = shipped(name, key, lambda: _over_seeds(runs, seeds, progress), cache=cache)
    return Shipped({k: {c: Spread.from_dict(d) for c, d in raw["spreads"][k].items()}
                    for k in runs}, raw["seconds"])


def _columns(row: td.Row) -> dict:
    return {c: getattr(row, c) for c in FIELDS}


def ablation(size: str | None = None, seeds=DEFAULT_SEEDS, variants=None, cache: bool = True,
             progress=None) -> Shipped:
    """Every variant (all of td.VARIANTS by default) measured at each seed: read from
    assets/runs/tiny_deepseek_ablation.json when its key matches, else trained here
    (`cache=False`: always; minutes of CPU). `progress(done, total, variant)`."""
    seeds, variants = tuple(seeds), list(variants or td.VARIANTS)
    runs = {v: (lambda s, v=v: _columns(td.measure(v, size, s))) for v in variants}
    return _shipped("tiny_deepseek_ablation", _key(size, seeds, variants=variants), runs,
                    seeds, cache, progress)


def balance_run(method: str, value: float, size: str | None = None, seed: int = 0) -> dict:
    """Held-out loss and MaxVio of the tiny DeepSeek balanced by the aux loss with
    α = `value` ("aux") or by the bias with γ = `value` ("bias")."""
    variant, knob = {"aux": ("aux", "aux_alpha"), "bias": ("full", "bias_gamma")}[method]
    res = td.train(variant, size, seed, **{knob: value})
    return dict(val_loss=res.val_loss, max_vio=td.held_out_max_vio(res.model))


def balancing(size: str | None = None, seeds=DEFAULT_SEEDS, alphas=ALPHAS, gammas=GAMMAS,
              cache: bool = True, progress=None) -> Shipped:
    """The aux loss at each α and the bias at each γ, over seeds: rows "aux 0.01", "bias
    0.003", ... (assets/runs/tiny_deepseek_balancing.json when its key matches)."""
    seeds = tuple(seeds)
    runs = {f"{m} {v:g}": (lambda s, m=m, v=v: balance_run(m, v, size, s))
            for m, values in (("aux", alphas), ("bias", gammas)) for v in values}
    key = _key(size, seeds, alphas=list(alphas), gammas=list(gammas))
    return _shipped("tiny_deepseek_balancing", key, runs, seeds, cache, progress)


def save_ablation(size: str | None = None, seeds=DEFAULT_SEEDS, progress=None) -> list:
    """Recompute the ablation and the balancing sweep and ship both (assets/runs/)."""
    seeds, paths = tuple(seeds), []
    for name, key, run in (
            ("tiny_deepseek_ablation", _key(size, seeds, variants=list(td.VARIANTS)),
             lambda: ablation(size, seeds, cache=False, progress=progress)),
            ("tiny_deepseek_balancing", _key(size, seeds, alphas=list(ALPHAS),
                                             gammas=list(GAMMAS)),
             lambda: balancing(size, seeds, cache=False, progress=progress))):
        got = run()
        result = dict(spreads={k: {c: s.as_dict() for c, s in cols.items()}
                               for k, cols in got.spreads.items()}, seconds=got.seconds)
        paths.append(save_shipped(name, key, result))
    return paths


# ------------------------------------------------------------------------------ verdicts


@dataclass(frozen=True)
class Effect:
    """What one switch does to a column, against what the seed alone does."""

    variant: str
    delta: float  # mean of the variant - mean of the full model
    seed_width: float  # the wider min–max range of the two over seeds
    told_apart: bool  # course.seeds.differs: the ranges do not overlap

    def text(self, unit: str = "nats") -> str:
        verdict = "told apart" if self.told_apart else "NOT told apart"
        return (f"{td.VARIANTS[self.variant][0]:<31} {self.delta:+.3f} {unit} "
                f"(the seed alone moves it up to {self.seed_width:.3f}): {verdict}")


def switch_effects(ablated: Shipped, column: str = "val_loss") -> list[Effect]:
    """For each variant but the full model: its change of `column`, and whether the seeds
    tell it apart from the full model."""
    full = ablated["full"][column]
    return [Effect(v, cols[column].mean - full.mean, max(full.width, cols[column].width),
                   differs(full, cols[column]))
            for v, cols in ablated.spreads.items() if v != "full" and column in cols]


def best_balanced(sweep: Shipped, method: str) -> str:
    """The setting of `method` ("aux" or "bias") with the lowest mean MaxVio among those
    whose held-out loss the seeds do not tell apart from that method's lowest-loss setting:
    the most even load at no measurable cost in loss. α = 0 (no balancing) is not a choice."""
    names = [k for k in sweep.spreads if k.split()[0] == method and float(k.split()[1]) > 0]
    if not names:
        raise ValueError(f"No {method!r} settings in the sweep; choose aux or bias.")
    lowest = min(names, key=lambda k: sweep[k]["val_loss"].mean)
    level = [k for k in names if not differs(sweep[k]["val_loss"], sweep[lowest]["val_loss"])]
    return min(level, key=lambda k: sweep[k]["max_vio"].mean)


def balancing_verdicts(ablated: Shipped, sweep: Shipped) -> dict[str, bool]:
    """Which comparisons of aux loss and bias the seeds tell apart (`differs`): the
    ablation's row 4 as it stood (α = γ = 0.01), each method at its best setting
    (`best_balanced`), and each best against no balancing (α = 0)."""
    a, b = sweep[best_balanced(sweep, "aux")], sweep[best_balanced(sweep, "bias")]
    none = sweep["aux 0"]
    return {"row 4 (α = γ = 0.01), MaxVio": differs(ablated["full"]["max_vio"],
                                                    ablated["aux"]["max_vio"]),
            "best of each, loss": differs(a["val_loss"], b["val_loss"]),
            "best of each, MaxVio": differs(a["max_vio"], b["max_vio"]),
            "best bias vs no balancing, MaxVio": differs(b["max_vio"], none["max_vio"]),
            "best aux vs no balancing, MaxVio": differs(a["max_vio"], none["max_vio"])}
