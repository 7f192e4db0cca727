"""One seed is an anecdote: rerun a comparison over several seeds and report the spread.

`over_seeds(run, seeds)` calls `run(seed)` for each seed (each call returns a number or a
dict of numbers) and returns a `Spread` per quantity: the values, their mean and their
min–max range. `differs(a, b)` says whether two spreads are told apart by the runs (their
ranges do not overlap), the honest test at three seeds; `Spread.text()` is what a
notebook prints.

Comparisons that take more than a few seconds of CPU ship their result as JSON under
`assets/runs/` (`shipped(name, key, compute)`): the notebook reads the file when the
settings match the key it was written with, and recomputes otherwise, or always with
`cache=False`. The tests recompute a part of every shipped file and compare.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from course import validate
from course.paths import ASSETS

DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Spread:
    """A quantity measured once per seed."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    @property
    def width(self) -> float:
        """max − min over the seeds: how far the seed alone moves the quantity."""
        return self.hi - self.lo

    def text(self, fmt: str = "{:.3f}") -> str:
        """'0.412 (0.398–0.431 over 3 seeds)'."""
        return (f"{fmt.format(self.mean)} ({fmt.format(self.lo)}–{fmt.format(self.hi)} "
                f"over {len(self.values)} seeds)")

    def as_dict(self) -> dict:
        return dict(values=list(self.values), seeds=list(self.seeds))

    @classmethod
    def from_dict(cls, d: dict) -> "Spread":
        return cls(tuple(float(v) for v in d["values"]), tuple(int(s) for s in d["seeds"]))


def differs(a: Spread, b: Spread) -> bool:
    """True when the min–max ranges of `a` and `b` do not overlap (every seed of one lies
    above every seed of the other)."""
    return a.hi < b.lo or b.hi < a.lo


def checked_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    """`seeds` as a tuple of at least two whole numbers ≥ 0 (ValueError otherwise)."""
    try:
        out = tuple(seeds)
    except TypeError:
        raise ValueError(f"seeds must be a list of whole numbers, not {seeds!r}.") from None
    if len(out) < 2:
        raise ValueError(f"A spread needs at least 2 seeds, not {len(out)}.")
    return tuple(validate.non_negative_int("a seed", s) for s in out)


def over_seeds(run: Callable[[int], float | dict], seeds: Iterable[int] = DEFAULT_SEEDS,
               progress: Callable | None = None) -> Spread | dict[str, Spread]:
    """Call `run(seed)` for each seed. If it returns a number, return one Spread; if it
    returns a dict of numbers, return a dict of Spreads with the same keys.
    `progress(done, total, text)` is told before each seed."""
    seeds = checked_seeds(seeds)
    results = []
    for i, seed in enumerate(seeds):
        if progress is not None:
            progress(i, len(seeds), f"seed {seed} ({i + 1} of {len(seeds)})")
        results.append(run(seed))
    if progress is not None:
        progress(len(seeds), len(seeds), f"{len(seeds)} seeds done")
    if isinstance(results[0], dict):
        return {k: Spread(tuple(float(r[k]) for r in results), seeds) for k in results[0]}
    return Spread(tuple(float(r) for r in results), seeds)


RUNS_DIR = ASSETS / "runs"


def shipped(name: str, key: dict, compute: Callable[[], dict], cache: bool = True,
            folder: Path | None = None) -> dict:
    """The JSON result of an expensive comparison: read from `assets/runs/<name>.json`
    when it was written with exactly `key` (settings, presets, seeds), else `compute()`.
    `cache=False` always computes. `save_shipped` writes the file."""
    path = Path(folder or RUNS_DIR) / f"{name}.json"
    if cache and path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == json.loads(json.dumps(key)):
            return saved["result"]
    return compute()


def save_shipped(name: str, key: dict, result: dict, folder: Path | None = None) -> Path:
    """Write `result` (JSON-able) under `key`, where `shipped` finds it."""
    import torch

    path = Path(folder or RUNS_DIR) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = [v for v in _numbers(result) if not math.isfinite(v)]
    if bad:
        raise ValueError(f"Refusing to ship {name}: it holds non-finite numbers {bad[:3]}.")
    path.write_text(json.dumps(dict(key=key, torch=torch.__version__, result=result),
                               indent=1, sort_keys=True))
    return path


def _numbers(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _numbers(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield float(x)
