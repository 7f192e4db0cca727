"""Compare trained MoE runs over seeds (notebooks 08-09).

* `compare`: train each balancing method at each seed (`course.moe_train.train`, cached)
  and measure on held-out text its MaxVio, its loss and the mutual information between a
  token's word kind and its expert; a `Comparison` holds one `course.seeds.Spread` per
  method and measure. `balancing_spread` and `specialisation` (notebook 09) and
  `router_spread` (notebook 08) are the shipped comparisons: they read their result from
  `assets/runs/<name>.json` when it was written with the same settings
  (`save_shipped_runs()` writes them), else train.
* `compare_text`, `method_vs_seed_text`: what the spreads say, as a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course import seeds as seedlib
from course import validate
from course.moe_stats import mutual_information
from course.moe_train import BALANCES, MAX_STEPS, train

# ------------------------------------------------------------------ comparisons over seeds

#: What `compare` measures on each run's held-out text.
MEASURES = ("val_max_vio", "val_loss", "mi")


@dataclass
class Comparison:
    methods: list  # labels, in order
    seeds: tuple
    steps: int
    spreads: dict  # label -> {measure: Spread} for each of MEASURES
    joint: dict  # label -> (kinds, E) held-out slots by word kind and expert, first seed
    source: str = "computed"  # or the shipped file it was read from

    def __getitem__(self, label: str) -> dict:
        return self.spreads[label]

    def values(self, measure: str) -> np.ndarray:
        """(methods, seeds) values of one of MEASURES."""
        validate.choice("measure", measure, MEASURES)
        return np.array([self.spreads[m][measure].values for m in self.methods])

    @property
    def mi(self) -> np.ndarray:
        """(methods, seeds) I(kind; expert) in bits, first MoE layer."""
        return self.values("mi")

    @property
    def max_vio(self) -> np.ndarray:
        """(methods, seeds) held-out MaxVio."""
        return self.values("val_max_vio")

    @property
    def val_loss(self) -> np.ndarray:
        return self.values("val_loss")


#: The name notebook 09 and `course.plots.moe.seed_bars` know it by.
Specialisation = Comparison


def _methods(methods: dict) -> dict:
    if not isinstance(methods, dict) or not methods:
        raise ValueError("methods must be a non-empty dict {label: (balance, settings)}.")
    out = {}
    for label, spec in methods.items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 2 or not isinstance(spec[1], dict):
            raise ValueError(f"Method {label!r} must be (balance, settings dict), not {spec!r}.")
        out[str(label)] = (validate.choice("balance", spec[0], BALANCES), dict(spec[1]))
    return out


def _measure(run) -> dict:
    return dict(val_max_vio=run.val_max_vio, val_loss=run.val_loss,
                mi=mutual_information(run.val_kinds[0]))


def compare(methods: dict, seeds=seedlib.DEFAULT_SEEDS, steps: int | None = None,
            progress=None, **router) -> Comparison:
    """Train each {label: (balance, settings)} at each seed (cached runs, `router` settings
    shared by all) and measure MEASURES on held-out text. `progress(done, total, text)`
    counts the runs."""
    methods = _methods(methods)
    seeds = _seed_list(seeds)
    for label, (_, kw) in methods.items():
        if set(kw) & set(router):
            raise ValueError(f"Method {label!r} sets {', '.join(sorted(set(kw) & set(router)))}"
                             ", which the shared router settings set too.")
    total, spreads, joint = len(methods) * len(seeds), {}, {}
    for a, (label, (balance, kw)) in enumerate(methods.items()):
        def one(seed, a=a, label=label, balance=balance, kw=kw):
            done = a * len(seeds) + seeds.index(seed)
            if progress is not None:
                progress(done, total, f"{label}, seed {seed}")
            run = train(balance, steps=steps, seed=seed, **kw, **router)
            joint.setdefault(label, run.val_kinds[0])
            return _measure(run)

        spreads[label] = seedlib.over_seeds(one, seeds)
    if progress is not None:
        progress(total, total, "done")
    return Comparison(list(methods), seeds, _steps(steps), spreads, joint)


def _steps(steps) -> int:
    from course.presets import preset

    return validate.integer("steps", preset("moe")["steps"] if steps is None else steps, 1,
                            MAX_STEPS)


def _seed_list(seeds) -> tuple:
    try:
        out = tuple(validate.non_negative_int("a seed", s) for s in seeds)
    except TypeError:
        raise ValueError(f"seeds must be a list of whole numbers, not {seeds!r}.") from None
    if len(out) < 2:
        raise ValueError(f"A comparison over seeds needs at least 2 seeds, not {len(out)}.")
    return out


def _key(methods: dict, seeds, steps, router: dict) -> dict:
    from course.presets import preset

    return dict(methods={k: list(v) for k, v in _methods(methods).items()},
                seeds=list(_seed_list(seeds)), steps=_steps(steps), router=dict(router),
                moe=preset("moe"), tiny_lm=preset("tiny_lm"))


def _to_json(c: Comparison) -> dict:
    return dict(methods=c.methods, seeds=list(c.seeds), steps=c.steps,
                spreads={m: {k: s.as_dict() for k, s in d.items()} for m, d in c.spreads.items()},
                joint={m: np.asarray(j).tolist() for m, j in c.joint.items()})


def _from_json(d: dict, source: str) -> Comparison:
    return Comparison(list(d["methods"]), tuple(d["seeds"]), int(d["steps"]),
                      {m: {k: seedlib.Spread.from_dict(s) for k, s in v.items()}
                       for m, v in d["spreads"].items()},
                      {m: np.array(j) for m, j in d["joint"].items()}, source)


def shipped_compare(name: str, methods: dict, seeds=seedlib.DEFAULT_SEEDS,
                    steps: int | None = None, progress=None, cache: bool = True,
                    **router) -> Comparison:
    """`compare`, read from assets/runs/<name>.json when that file was written with these
    very settings (and `cache` is True), else trained."""
    key = _key(methods, seeds, steps, router)
    computed = []

    def run() -> dict:
        computed.append(True)
        return _to_json(compare(methods, seeds, steps, progress, **router))

    result = seedlib.shipped(name, key, run, cache=cache)
    return _from_json(result, "computed" if computed else f"assets/runs/{name}.json")


#: The shipped comparisons: name -> (methods, steps, router settings shared by the methods),
#: over seeds 0, 1, 2. Notebook 09 §4 and §6 (DeepSeek-V3's router: sigmoid, 2 of 16
#: experts), notebook 08 §4 (the preset's Switch-style router against DeepSeek's recipe).
ROUTER = dict(score_func="sigmoid", top_k=2)
ALPHA, GAMMA, V3_ALPHA = 0.1, 0.003, 0.0001
STEPS = 150
SHIPPED = {
    "moe_balancing": ({"none": ("none", {}), "aux": ("aux", dict(alpha=ALPHA)),
                       "bias": ("bias", dict(gamma=GAMMA))}, STEPS, ROUTER),
    "moe_specialisation": ({"none": ("none", {}),
                            "sequence aux": ("aux", dict(alpha=ALPHA, aux_scope="sequence")),
                            "batch aux": ("aux", dict(alpha=ALPHA)),
                            "bias": ("bias", dict(gamma=GAMMA)),
                            "V3 α=0.0001": ("aux", dict(alpha=V3_ALPHA, aux_scope="sequence"))},
                           STEPS, ROUTER),
    "moe_routers": ({"Switch-style": ("none", {}),
                     "DeepSeek-style": ("none", dict(top_k=2, score_func="sigmoid", n_shared=1))},
                    60, {}),
}


def balancing_spread(methods: dict, seeds=seedlib.DEFAULT_SEEDS, steps: int | None = None,
                     progress=None, cache: bool = True, **router) -> Comparison:
    """Notebook 09 §4: the balancing methods over seeds (shipped as moe_balancing.json)."""
    return shipped_compare("moe_balancing", methods, seeds, steps, progress, cache, **router)


def specialisation(methods: dict, seeds=seedlib.DEFAULT_SEEDS, steps: int | None = None,
                   progress=None, cache: bool = True, **router) -> Comparison:
    """Notebook 09 §6: specialisation by word kind over seeds (moe_specialisation.json)."""
    return shipped_compare("moe_specialisation", methods, seeds, steps, progress, cache,
                           **router)


def router_spread(methods: dict, seeds=seedlib.DEFAULT_SEEDS, steps: int | None = None,
                  progress=None, cache: bool = True, **router) -> Comparison:
    """Notebook 08 §4: Switch-style against DeepSeek-style routing (moe_routers.json)."""
    return shipped_compare("moe_routers", methods, seeds, steps, progress, cache, **router)


def save_shipped_runs(names=None, progress=None) -> list:
    """Recompute the shipped comparisons (a few minutes on one core) and write them to
    assets/runs/; returns the paths written. `python -m course.moe_eval` runs it."""
    paths = []
    for name in SHIPPED if names is None else names:
        methods, steps, router = SHIPPED[name]
        c = compare(methods, seedlib.DEFAULT_SEEDS, steps, progress, **router)
        key = _key(methods, seedlib.DEFAULT_SEEDS, steps, router)
        paths.append(seedlib.save_shipped(name, key, _to_json(c)))
    return paths


# ---------------------------------------------------------------------------- sentences


def compare_text(a: seedlib.Spread, b: seedlib.Spread, name_a: str, name_b: str,
                 what: str, fmt: str = "{:.2f}") -> str:
    """What two spreads of `what` say: one lies below the other on every seed, or their
    min–max ranges overlap and the seeds do not tell the two apart."""
    shown = f"{name_a} {a.text(fmt)}, {name_b} {b.text(fmt)}"
    if seedlib.differs(a, b):
        side = "below" if a.hi < b.lo else "above"
        return f"{what}: every seed of {name_a} lies {side} every seed of {name_b}: {shown}."
    return (f"{what}: {shown}; the ranges overlap, {len(a.values)} seeds do not tell them "
            "apart.")


def method_vs_seed_text(spreads: dict, what: str, fmt: str = "{:.3f}") -> str:
    """Whether the method or the seed moves `what` more: the largest gap between the
    methods' means against the widest min–max range of one method over the seeds."""
    means = {m: s.mean for m, s in spreads.items()}
    between = max(means.values()) - min(means.values())
    widest = max(spreads, key=lambda m: spreads[m].width)
    within = spreads[widest].width
    verdict = ("the seed moves it more than the choice of method" if within > between
               else "the method moves it more than the seed")
    return (f"{what}: the methods' means differ by at most {fmt.format(between)}, one method "
            f"({widest}) moves by {fmt.format(within)} between seeds: {verdict}.")


if __name__ == "__main__":
    from course.timing import one_thread

    with one_thread():
        for path in save_shipped_runs(progress=lambda d, t, s: print(f"{d}/{t} {s}",
                                                                     flush=True)):
            print("wrote", path)
