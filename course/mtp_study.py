"""Notebook 12's results over seeds (`course.seeds`): how often the main model accepts the
MTP module's drafts, by loss weight λ and MTP depth, and what the MTP objective does to
the main model's held-out loss.

Each seed trains every (depth, λ) model of `course.mtp.train` and a model without MTP
(training batches and initial weights follow the seed), then decodes `prompts` held-out
prompts (cut at the seed) with sampled speculative decoding at temperature 1, main model
and draft alike (the sampled run of notebook 12, section 3). Seed 0 is therefore exactly
the notebook's own run. It also measures each depth's teacher-forced agreement with the
main model on held-out text (`mtp.depth_accuracy`), for DeepSeek's sequential modules and,
at depth 2 and λ = 0.3, for independent parallel heads (notebook 12, section 7).

About two minutes of CPU for three seeds, so the notebook reads the result from
`assets/runs/mtp_acceptance.json` (`seeds.shipped`) when it was written with the same
settings; `save()` rewrites the file and `tests/test_mtp_study.py` recomputes a seed of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from course import mtp, seeds, validate

NAME = "mtp_acceptance"
LAMS = (0.0, 0.1, 0.3, 1.0)
DEPTHS = (1, 2)
TEMPERATURE = 1.0  # main model and draft: sampled, so the text does not loop
HEADS_AT = (2, 0.3)  # (depth, λ) where parallel heads are trained next to the chain


def _key(depth: int, lam: float, heads: str = "sequential") -> str:
    return ("parallel heads, " if heads == "parallel" else "") + f"depth {depth}, lambda {lam:g}"


def settings(lams=LAMS, depths=DEPTHS, seed_list=seeds.DEFAULT_SEEDS) -> dict:
    """Everything the result depends on: the grid, the seeds and the preset's sizes."""
    from course.presets import preset

    p = preset("mtp")
    lams = tuple(sorted({round(mtp._lam(x), 2) for x in _listed("lams", lams)}))
    depths = tuple(sorted({validate.integer("depth", d, 1, 2) for d in _listed("depths", depths)}))
    seed_list = _listed("seed_list", seed_list)
    seed_list = (seeds.checked_seeds(seed_list) if len(seed_list) > 1 else  # one: a recomputation
                 (validate.non_negative_int("a seed", seed_list[0]),))
    return dict(lams=list(lams), depths=list(depths), seeds=list(seed_list),
                steps=p["steps"], batch=p.get("batch", mtp.BATCH), prompts=p["prompts"],
                prompt_len=p["prompt_len"], new_tokens=p["new_tokens"],
                temperature=TEMPERATURE, heads_at=list(HEADS_AT))


def _listed(name: str, values) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not len(values):
        raise ValueError(f"{name} must be a non-empty list, not {values!r}.")
    return tuple(values)


def one_seed(seed: int, key: dict, progress=None) -> dict[str, float]:
    """The numbers of one seed: per (depth, λ) the acceptance at each depth, tokens per
    main-model step and the main model's held-out loss; the loss without MTP."""
    from course import data

    out = {"no MTP/val_loss": mtp.train(0, steps=key["steps"], seed=seed,
                                        progress=progress).val_loss}
    prompts = mtp.prompts(key["prompts"], key["prompt_len"], seed=seed)
    val = data.split()[1]
    runs = [(depth, lam, "sequential") for depth in key["depths"] for lam in key["lams"]]
    for depth, lam, heads in runs + [(*key["heads_at"], "parallel")]:
        run = mtp.train(depth, lam, key["steps"], seed, progress, heads=heads)
        name = _key(depth, lam, heads)
        out[f"{name}/val_loss"] = run.val_loss
        acc = mtp.depth_accuracy(run.model, val, run.model.cfg.seq_len)
        for k, agree in enumerate(acc.agrees_with_main, start=1):
            out[f"{name}/agree {k}"] = agree
        if heads == "parallel":  # speculate drafts with the chain only
            continue
        spec = mtp.speculate(run.model, prompts, key["new_tokens"],
                             temperature=key["temperature"],
                             draft_temperature=key["temperature"], seed=seed)
        for k, rate in enumerate(spec.acceptance, start=1):
            out[f"{name}/accept {k}"] = rate
        out[f"{name}/tokens_per_step"] = spec.tokens_per_step
    return out


@dataclass
class Study:
    """Spreads over seeds; `spread(depth, lam, what, heads)` with what = "accept k" (drafts
    of depth k accepted), "agree k" (teacher-forced agreement of depth k), "tokens_per_step"
    or "val_loss"; `baseline` is the loss without MTP."""

    settings: dict
    spreads: dict  # "depth 1, lambda 0.3/accept 1" -> Spread

    @property
    def lams(self) -> list:
        return self.settings["lams"]

    @property
    def depths(self) -> list:
        return self.settings["depths"]

    @property
    def baseline(self) -> seeds.Spread:
        return self.spreads["no MTP/val_loss"]

    def spread(self, depth: int, lam: float, what: str = "accept 1",
               heads: str = "sequential") -> seeds.Spread:
        name = f"{_key(depth, lam, heads)}/{what}"
        if name not in self.spreads:
            raise ValueError(f"The study has no {what!r} for {heads} MTP at depth {depth}, "
                             f"λ = {lam}; it ran depths {self.depths} and λ {self.lams} "
                             f"(parallel heads at depth, λ = {self.settings['heads_at']}).")
        return self.spreads[name]

    def apart(self, depth: int, what: str = "accept 1") -> list[tuple[float, float]]:
        """Pairs of λ whose `what` the seeds tell apart (min–max ranges do not overlap)."""
        lams = self.lams
        return [(a, b) for i, a in enumerate(lams) for b in lams[i + 1:]
                if seeds.differs(self.spread(depth, a, what), self.spread(depth, b, what))]


def compute(key: dict, progress=None) -> dict:
    """Run every seed of `key` (see `settings`): {quantity: Spread.as_dict()}."""
    from course.timing import one_thread

    with one_thread():
        if len(key["seeds"]) == 1:  # one seed: a recomputation to compare with the file
            values = one_seed(key["seeds"][0], key, progress)
            return {k: dict(values=[v], seeds=key["seeds"]) for k, v in values.items()}
        spreads = seeds.over_seeds(lambda s: one_seed(s, key, progress), key["seeds"])
    return {k: v.as_dict() for k, v in spreads.items()}


def study(lams=LAMS, depths=DEPTHS, seed_list=seeds.DEFAULT_SEEDS, cache: bool = True,
          progress=None) -> Study:
    """The study at these settings: from the shipped file when it matches, else computed
    (`cache=False` always computes; a few seconds per seed and (depth, λ))."""
    key = settings(lams, depths, seed_list)
    result = seeds.shipped(NAME, key, lambda: compute(key, progress), cache=cache)
    return Study(key, {k: seeds.Spread.from_dict(v) for k, v in result.items()})


def save(folder=None):
    """Recompute the default study and write it where `study()` finds it."""
    key = settings()
    return seeds.save_shipped(NAME, key, compute(key), folder=folder)
