"""Imitation and reinforcement on the course's tiny model (notebook 16): supervised
fine-tuning (SFT) on demonstrations, GRPO with a rule-based reward, distillation, pass@k.

**The task** (verifiable, generated from a seed, nothing downloaded): sort `n_terms`
digits, e.g. ``sort 3 1 4 1 :`` → ``1 1 3 4 .``. Every prompt of `n_terms` digits exists
once; a seeded shuffle holds a share out, never trained on. The reward is rule-based, like
DeepSeek-R1-Zero's accuracy and format rewards (arXiv 2501.12948, §2.2.2):
``accuracy + FORMAT_WEIGHT · format``, where `format` = the response is `n_terms` digits
ended by ``.`` and `accuracy` = it is well formed and sorted correctly. The task's own
13-word vocabulary replaces the corpus's (which has no digits).

**Imitation** (`sft`): the course's model (`course.model.TinyLM`) trained on demonstrations
with the course's optimizer recipe (`course.train`: AdamW β = (0.9, 0.95), gradient
clipping at 1, warm-up); the loss is next-token cross-entropy on the response tokens only,
so the loop is `course.train`'s with a masked loss and demonstration batches instead of
corpus windows. `demonstrations(quality=...)`: a share `quality` is correct, the rest hold
one slip (two neighbours swapped, as a hurried sorter would).

**Reinforcement** (`grpo`), DeepSeekMath §4.1 (arXiv 2402.03300), eq. 3: for each prompt,
G sampled responses from the policy before the update (π_old) with rewards r_i; every
token of response i gets the advantage Â_i = (r_i − mean r) / std r (the group's own
mean is the baseline: no value model). Objective per token
``min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) − β · KL`` with ρ = π_θ / π_old and the KL to a frozen
reference estimated by the unbiased, non-negative ``π_ref/π_θ − log(π_ref/π_θ) − 1``
(eq. 4), averaged over each response's tokens, then over the group.

Choices the paper leaves open, made here: std is the population std (divide by G); a
group whose rewards are all equal gets zero advantages; each batch of samples is used for
`inner_steps` gradient steps (the paper's μ; with 1 the ratio is always 1 and ε never
bites). pass@k is the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374, eq. 1).

The task and the model's sampling live in `course.rl_task`, SFT, GRPO and pass@k in
`course.rl_train`; this module re-exports both and holds the experiments (`compare`,
`distill`) and the memory arithmetic of PPO against GRPO.

Runs are cached in memory by their arguments (`cache=False` reruns); slow functions take
`progress(done, total, text)`. Left out: a learned reward model (the reward is a rule),
sampling temperatures other than 1, anything a toy this small cannot show (long
reasoning: a sorted list has one right length).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from course import seeds as seeds_mod
from course.model import TinyLM
from course.presets import preset
from course.rl_task import (
    END,
    FORMAT_WEIGHT,
    WORDS,
    Demos,
    answer,
    demonstration,
    demonstrations,
    encode_prompts,
    evaluate,
    problems,
    prompt_ids,
    response_mask,
    sample,
    score,
    task_config,
    token_logprobs,
    tokenizer,
)
from course.rl_train import (
    RUNS,
    GRPORun,
    Progress,
    SFTRun,
    _done,
    clipped_objective,
    group_advantages,
    grpo,
    grpo_loss,
    kl_estimate,
    pass_at_k,
    pass_curve,
    prompts_at_budget,
    samples_per_step,
    sft,
    sft_then_grpo,
)
from course.timing import one_thread

__all__ = ["END", "FORMAT_WEIGHT", "RUNS", "WORDS", "Comparison", "Demos", "GRPORun",
           "SFTRun", "answer", "clipped_objective", "compare", "comparison_from_json",
           "comparison_json", "demonstration", "demonstrations", "distill", "encode_prompts",
           "evaluate", "grpo", "grpo_loss", "group_advantages", "kl_estimate", "one_thread",
           "pass_at_k", "pass_curve", "ppo_vs_grpo_memory", "problems", "prompt_ids",
           "prompts_at_budget", "samples_per_step",
           "response_mask", "sample", "save_comparison", "score", "sft", "sft_then_grpo",
           "task_config", "token_logprobs", "tokenizer"]


# ------------------------------------------------------------------------- experiments


@dataclass
class Comparison:
    """Imitation vs reinforcement over seeds: arrays (seeds,) of held-out accuracy."""

    seeds: tuple
    quality: float
    sft: np.ndarray  # SFT on demonstrations of `quality`
    sft_grpo: np.ndarray  # the same, then GRPO
    base_pass: dict  # k -> (seeds,) pass@k of the SFT model (before GRPO)
    grpo_pass: dict  # k -> (seeds,) pass@k after GRPO
    base_length: np.ndarray
    grpo_length: np.ndarray
    student_sft: np.ndarray  # smaller model, SFT on the same demonstrations
    student_grpo: np.ndarray  # ... then GRPO on the student directly
    student_distilled: np.ndarray  # smaller model, SFT on the reinforced teacher's samples
    curves: list = field(default_factory=list)  # per seed: (eval_steps, accuracy) of GRPO

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "curves"}

    def spread(self, name: str) -> seeds_mod.Spread:
        """One per-seed quantity (e.g. "sft_grpo") as a `course.seeds.Spread`."""
        return seeds_mod.Spread(tuple(float(v) for v in getattr(self, name)), self.seeds)


def distill(teacher: TinyLM, n: int | None = None, seed: int = 0, steps: int | None = None,
            progress: Progress = None) -> SFTRun:
    """A fresh student (`task_config(student=True)`) trained by SFT on `n` responses the
    teacher samples on training prompts (kept whether right or wrong)."""
    p = preset("rl")
    n = int(n or p["n_demos"])
    rng = np.random.default_rng(seed + 31)
    train, _ = problems()
    terms = train[rng.integers(len(train), size=n)]
    gen = torch.Generator().manual_seed(seed + 31)
    with one_thread():
        resp = sample(teacher, encode_prompts(terms), terms.shape[1] + 1, gen)
    s = score(terms, resp)
    demos = Demos(encode_prompts(terms), resp, s["correct"], float(s["correct"].mean()))
    return sft(demos=demos, steps=steps, seed=seed, student=True, progress=progress)


SHIPPED_NAME = "rl_compare"  # assets/runs/rl_compare.json, read by course.seeds.shipped


def _compare_key(seeds, quality: float) -> dict:
    return dict(seeds=[int(s) for s in seeds], quality=float(quality), rl=preset("rl"))


def compare(seeds=(0, 1, 2), quality: float = 0.7,
            progress: Progress = None, cache: bool = True) -> Comparison:
    """For each seed: SFT on `quality` demonstrations, then GRPO; pass@k before and after;
    a smaller student by SFT on the same demonstrations, then GRPO, and a student
    distilled from the reinforced teacher.

    15 trainings take about half a minute of one CPU core, so the result for the default
    arguments ships in `assets/runs/rl_compare.json` (`course.seeds.shipped`; written by
    `save_comparison`, checked by tests/test_rl.py against a fresh run); `cache=False`
    recomputes everything."""
    key = _compare_key(seeds, quality)
    mem_key = ("compare", json.dumps(key, sort_keys=True))
    if cache and mem_key in RUNS:
        _done(progress, 3 * len(key["seeds"]), "comparison (cached)")
        return RUNS[mem_key]
    computed = []

    def compute() -> dict:
        computed.append(True)
        return comparison_json(_compare(tuple(key["seeds"]), quality, progress))

    out = comparison_from_json(seeds_mod.shipped(SHIPPED_NAME, key, compute, cache=cache))
    if not computed:
        _done(progress, 3 * len(out.seeds), f"comparison (precomputed: {SHIPPED_NAME}.json)")
    RUNS[mem_key] = out
    return out


def _compare(seeds: tuple, quality: float, progress: Progress) -> Comparison:
    p = preset("rl")
    _, test = problems()
    test = test[: p["eval_prompts"]]
    rows = []
    for i, seed in enumerate(seeds):
        sub = _stage(progress, i, len(seeds), f"seed {seed}")
        base, run = sft_then_grpo(quality, seed=seed, progress=sub("teacher"))
        s_base, s_run = sft_then_grpo(quality, seed=seed, student=True,
                                      progress=sub("student"))
        dist = distill(run.model, seed=seed, progress=sub("distilling"))
        bp = pass_curve(base.model, test, p["pass_n"], seed=seed)
        gp = pass_curve(run.model, test, p["pass_n"], seed=seed)
        ev_b, ev_g = evaluate(base.model, test, 4, seed), evaluate(run.model, test, 4, seed)
        rows.append(dict(
            sft=ev_b["accuracy"], sft_grpo=ev_g["accuracy"], bp=bp, gp=gp,
            base_length=ev_b["length"], grpo_length=ev_g["length"],
            student_sft=evaluate(s_base.model, test, 4, seed)["accuracy"],
            student_grpo=evaluate(s_run.model, test, 4, seed)["accuracy"],
            student_distilled=evaluate(dist.model, test, 4, seed)["accuracy"],
            curve=(run.eval_steps, run.accuracy)))
    ks = list(rows[0]["bp"])
    col = lambda name: np.array([r[name] for r in rows])  # noqa: E731
    return Comparison(tuple(seeds), quality, col("sft"), col("sft_grpo"),
                      {k: np.array([r["bp"][k] for r in rows]) for k in ks},
                      {k: np.array([r["gp"][k] for r in rows]) for k in ks},
                      col("base_length"), col("grpo_length"), col("student_sft"),
                      col("student_grpo"), col("student_distilled"),
                      [r["curve"] for r in rows])


def comparison_json(comp: Comparison) -> dict:
    """A Comparison as plain JSON-able lists and dicts (`comparison_from_json` undoes it)."""
    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return np.asarray(v).tolist()

    out = {k: plain(getattr(comp, k)) for k in comp.__dataclass_fields__ if k != "curves"}
    out["curves"] = [[plain(a), plain(b)] for a, b in comp.curves]
    return out


def comparison_from_json(r: dict) -> Comparison:
    arr = {k: np.array(v) for k, v in r.items() if not isinstance(v, dict) and k != "curves"}
    passes = {k: {int(kk): np.array(vv) for kk, vv in r[k].items()}
              for k in ("base_pass", "grpo_pass")}
    curves = [(np.array(a), np.array(b)) for a, b in r["curves"]]
    return Comparison(tuple(int(x) for x in arr.pop("seeds")), float(arr.pop("quality")),
                      **arr, **passes, curves=curves)


def save_comparison(comp: Comparison, folder: Path | None = None) -> Path:
    """Write a Comparison (computed with the current preset) where `compare` finds it."""
    return seeds_mod.save_shipped(SHIPPED_NAME, _compare_key(comp.seeds, comp.quality),
                                  comparison_json(comp), folder)


def _stage(progress: Progress, i: int, n: int, label: str):
    """Progress of seed i of n as trainings done of 3n (teacher, student, distillation),
    the current training's own progress in the text."""
    parts = {"teacher": 0, "student": 1, "distilling": 2}

    def make(part: str) -> Progress:
        if progress is None:
            return None

        def inner(done, total, text):
            progress(3 * i + parts[part], 3 * n, f"{label}, {part}: {text} ({done}/{total})")
        return inner
    return make


# ------------------------------------------------------------------------ memory (V3)


def ppo_vs_grpo_memory(cfg="deepseek-v3", recipe: str = "deepseek-fp8",
                       weight_bytes: float = 1.0) -> dict:
    """Bytes of the models RL keeps in memory, for PPO and for GRPO, with
    `course.memory`: the policy trains (weights, gradients, optimizer states under
    `recipe`); PPO's value model is as large as the policy and trains too; the frozen
    reference (and PPO's reward model) hold weights only (`weight_bytes` per parameter).
    GRPO with a rule-based reward (R1-Zero) keeps policy + reference."""
    from course import memory

    n = memory.param_count(cfg).total
    trained = sum(memory.state_bytes(n, recipe).values())
    frozen = n * weight_bytes
    ppo = dict(policy=trained, value_model=trained, reference=frozen, reward_model=frozen)
    grpo_ = dict(policy=trained, value_model=0, reference=frozen, reward_model=0)
    return dict(params=n, ppo=ppo, grpo=grpo_, ppo_total=sum(ppo.values()),
                grpo_total=sum(grpo_.values()), value_model_bytes=trained)
