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

Runs are cached in memory by their arguments (`cache=False` reruns); slow functions take
`progress(done, total, text)`. Left out: a learned reward model (the reward is a rule),
sampling temperatures other than 1, anything a toy this small cannot show (long
reasoning: a sorted list has one right length).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from course import data
from course import seeds as seeds_mod
from course.device import seed_everything
from course.model import TinyConfig, TinyLM
from course.presets import preset
from course.timing import one_thread

END = "."  # id 0: ends a response, and starts every prompt (as in the corpus stream)
WORDS = (END, *"0123456789", "sort", ":")
FORMAT_WEIGHT = 0.1
Progress = Callable[[int, int, str], None] | None
#: every run this kernel has made, by its arguments (`RUNS.clear()` forgets them)
RUNS: dict = {}


# --------------------------------------------------------------------------------- task


def tokenizer() -> data.Tokenizer:
    """The task's own vocabulary: END, the ten digits, "sort" and ":"."""
    return data.Tokenizer(WORDS)


def _digit(d: int) -> int:
    return 1 + int(d)  # token id of digit d


def answer(terms) -> list[int]:
    """The right response's digits: the terms sorted."""
    return sorted(int(t) for t in terms)


def problems(n_terms: int | None = None, held_out: float = 0.2, seed: int = 0):
    """Every prompt of `n_terms` digits, shuffled by `seed`, split into (train, held-out)
    arrays of shape (N, n_terms). The split is fixed by the seed, so held-out prompts are
    never seen in training."""
    n_terms = int(n_terms or preset("rl")["n_terms"])
    if not 2 <= n_terms <= 5:
        raise ValueError(f"n_terms must be between 2 and 5, not {n_terms}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a share between 0 and 1, not {held_out}.")
    grid = np.stack(np.meshgrid(*[np.arange(10)] * n_terms, indexing="ij"), -1)
    allp = grid.reshape(-1, n_terms)
    allp = allp[np.random.default_rng(seed).permutation(len(allp))]
    n_test = int(round(len(allp) * held_out))
    return allp[n_test:], allp[:n_test]


def prompt_ids(terms) -> list[int]:
    """``. sort a b c d :`` as token ids."""
    return [0, WORDS.index("sort"), *(_digit(t) for t in terms), WORDS.index(":")]


def encode_prompts(terms: np.ndarray) -> torch.Tensor:
    return torch.tensor([prompt_ids(t) for t in terms], dtype=torch.long)


def demonstration(terms, correct: bool, rng: np.random.Generator) -> list[int]:
    """One demonstrated response (token ids, ended by END). A wrong one holds one slip:
    two unequal neighbours swapped (or, when all digits are equal, one digit changed)."""
    out = answer(terms)
    if not correct:
        unequal = [i for i in range(len(out) - 1) if out[i] != out[i + 1]]
        if unequal:
            i = unequal[int(rng.integers(len(unequal)))]
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            i = int(rng.integers(len(out)))
            out[i] = (out[i] + int(rng.integers(1, 10))) % 10
    return [_digit(d) for d in out] + [0]


@dataclass
class Demos:
    prompts: torch.Tensor  # (N, P)
    responses: torch.Tensor  # (N, R), END-padded
    correct: np.ndarray  # (N,) bool: the demonstration is right
    quality: float  # share of correct demonstrations


def demonstrations(n: int, quality: float = 1.0, seed: int = 0) -> Demos:
    """`n` demonstrations on training prompts, exactly round(quality · n) of them correct
    (so the slider's value is the data's quality)."""
    if not 0 <= quality <= 1:
        raise ValueError(f"quality must be a share between 0 and 1, not {quality}.")
    if n < 1:
        raise ValueError(f"Ask for at least one demonstration, not {n}.")
    rng = np.random.default_rng(seed + 7919)
    train, _ = problems()
    terms = train[rng.integers(len(train), size=n)]
    correct = np.zeros(n, dtype=bool)
    correct[rng.permutation(n)[: int(round(quality * n))]] = True
    resp = [demonstration(t, c, rng) for t, c in zip(terms, correct)]
    return Demos(encode_prompts(terms), torch.tensor(resp, dtype=torch.long), correct,
                 float(correct.mean()))


def score(terms: np.ndarray, responses: torch.Tensor) -> dict:
    """Rule-based reward of each response: dict of arrays `reward`, `correct`,
    `well_formed` and `length` (tokens up to and including END; the full width if none)."""
    resp = responses.numpy()
    n, R = resp.shape
    correct, formed, length = np.zeros(n, bool), np.zeros(n, bool), np.full(n, R)
    for i in range(n):
        ends = np.flatnonzero(resp[i] == 0)
        if len(ends):
            length[i] = ends[0] + 1
            body = resp[i, : ends[0]]
            formed[i] = len(body) == terms.shape[1] and bool(((body >= 1) & (body <= 10)).all())
            correct[i] = formed[i] and (body - 1).tolist() == answer(terms[i])
    return dict(reward=correct + FORMAT_WEIGHT * formed, correct=correct,
                well_formed=formed, length=length)


# -------------------------------------------------------------------------------- model


def task_config(student: bool = False, size: str | None = None, **overrides) -> TinyConfig:
    """The course's TinyConfig for the task's vocabulary, at `preset("rl")` sizes (the
    teacher's, or with `student=True` the smaller student's)."""
    p = preset("rl", size)
    key = "student" if student else "model"
    base = dict(vocab_size=len(WORDS), seq_len=16, **p[key])
    base.update(overrides)
    return TinyConfig(**base)


def response_mask(responses: torch.Tensor) -> torch.Tensor:
    """(N, R) float: 1 for the tokens up to and including the first END."""
    is_end = (responses == 0).long()
    before_end = (is_end.cumsum(1) - is_end) == 0  # no END strictly before this token
    return before_end.float()


def token_logprobs(model: TinyLM, prompts: torch.Tensor, responses: torch.Tensor,
                   ) -> torch.Tensor:
    """(N, R) log-probability the model gives each response token after its prefix."""
    full = torch.cat([prompts, responses], 1)
    logits = model(full[:, :-1]).logits[:, prompts.shape[1] - 1:]
    return torch.log_softmax(logits.float(), -1).gather(-1, responses[..., None])[..., 0]


@torch.no_grad()
def sample(model: TinyLM, prompts: torch.Tensor, max_new: int, generator: torch.Generator,
           temperature: float = 1.0) -> torch.Tensor:
    """(N, max_new) responses sampled with a KV cache; after END only END follows."""
    model.eval()
    cache = model.new_cache()
    logits = model(prompts, cache=cache).logits[:, -1]
    out, done = [], torch.zeros(len(prompts), dtype=torch.bool)
    for _ in range(max_new):
        if temperature > 0:
            nxt = torch.multinomial((logits.float() / temperature).softmax(-1), 1,
                                    generator=generator)[:, 0]
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        out.append(nxt)
        done |= nxt == 0
        if done.all():
            break
        logits = model(nxt[:, None], cache=cache).logits[:, -1]
    model.train()
    res = torch.stack(out, 1)
    if res.shape[1] < max_new:
        res = torch.cat([res, res.new_zeros(len(res), max_new - res.shape[1])], 1)
    return res


def evaluate(model: TinyLM, terms: np.ndarray, samples: int = 1, seed: int = 0) -> dict:
    """Sampled (temperature 1) accuracy, well-formed share and mean length over `samples`
    responses per prompt: accuracy is then the pass@1 estimate."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    rep = np.repeat(terms, samples, axis=0)
    with one_thread():
        resp = sample(model, encode_prompts(rep), terms.shape[1] + 1, gen)
    s = score(rep, resp)
    return dict(accuracy=float(s["correct"].mean()), well_formed=float(s["well_formed"].mean()),
                length=float(s["length"].mean()),
                correct=s["correct"].reshape(len(terms), samples))


# ---------------------------------------------------------------------------- imitation


@dataclass
class SFTRun:
    model: TinyLM
    loss: np.ndarray  # (steps,) cross-entropy on response tokens
    eval_steps: np.ndarray
    accuracy: np.ndarray  # held-out sampled accuracy at eval_steps
    demo_quality: float  # share of correct demonstrations
    settings: dict = field(default_factory=dict)


def sft(quality: float = 1.0, steps: int | None = None,
        n_demos: int | None = None, lr: float | None = None, seed: int = 0,
        student: bool = False, demos: Demos | None = None, progress: Progress = None,
        cache: bool = True) -> SFTRun:
    """Supervised fine-tuning of a fresh model on demonstrations (given, or generated with
    `quality`). Cached by its arguments unless `demos` are given."""
    p = preset("rl")
    steps = int(steps or p["sft_steps"])
    n_demos = int(n_demos or p["n_demos"])
    lr = float(lr or p["sft_lr"])
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}.")
    key = ("sft", quality, steps, n_demos, lr, seed, student)
    if demos is not None:  # given demonstrations (distillation): not cached
        return _sft(demos, steps, lr, seed, student, p, progress)
    if cache and key in RUNS:
        _done(progress, steps, "SFT (cached)")
        return RUNS[key]
    run = _sft(demonstrations(n_demos, quality, seed), steps, lr, seed, student, p, progress)
    RUNS[key] = run
    return run


def _sft(demos: Demos, steps: int, lr: float, seed: int, student: bool, p: dict,
         progress: Progress) -> SFTRun:
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TinyLM(task_config(student))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    _, test = problems()
    mask = response_mask(demos.responses)
    losses, evals, accs = [], [], []
    every = max(1, steps // 8)
    with one_thread():
        for step in range(steps):
            i = torch.randint(len(demos.prompts), (p["sft_batch"],), generator=gen)
            logp = token_logprobs(model, demos.prompts[i], demos.responses[i])
            loss = -(logp * mask[i]).sum() / mask[i].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if (step + 1) % every == 0 or step + 1 == steps:
                evals.append(step + 1)
                accs.append(evaluate(model, test[: p["eval_prompts"]], seed=seed)["accuracy"])
                if progress is not None:
                    progress(step + 1, steps, f"SFT on {demos.quality:.0%}-right "
                             f"demonstrations, held-out accuracy {accs[-1]:.0%}")
    return SFTRun(model, np.array(losses), np.array(evals), np.array(accs),
                  float(demos.correct.mean()),
                  dict(steps=steps, lr=lr, seed=seed))


# ------------------------------------------------------------------------ reinforcement


def group_advantages(rewards, eps: float = 1e-6) -> torch.Tensor:
    """Â = (r − group mean) / group std for rewards (prompts, G); population std; a group
    whose rewards are all equal gets 0 (nothing to prefer)."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, G) with G ≥ 2, not shape {tuple(r.shape)}.")
    centred = r - r.mean(1, keepdim=True)
    std = r.std(1, unbiased=False, keepdim=True)
    return torch.where(std > eps, centred / std.clamp_min(eps), torch.zeros_like(r))


def clipped_objective(ratio, advantage, eps: float = 0.2) -> torch.Tensor:
    """min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â), elementwise (PPO's surrogate, as in GRPO)."""
    ratio = torch.as_tensor(ratio, dtype=torch.float64)
    advantage = torch.as_tensor(advantage, dtype=torch.float64)
    return torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage)


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token π_ref/π − log(π_ref/π) − 1 (DeepSeekMath eq. 4): unbiased for KL(π‖π_ref)
    when the tokens are sampled from π, and never negative."""
    log_ratio = ref_logp - logp
    return log_ratio.exp() - log_ratio - 1


def grpo_loss(logp, old_logp, ref_logp, advantages, mask, eps: float = 0.2,
              beta: float = 0.04) -> tuple[torch.Tensor, dict]:
    """−J_GRPO for one batch. logp/old_logp/ref_logp/mask: (N, R) per token; advantages (N,)
    one per response (broadcast to its tokens). Mean over each response's own tokens, then
    over responses. Returns (loss, stats)."""
    ratio = (logp - old_logp).exp()
    adv = torch.as_tensor(advantages, dtype=logp.dtype)[:, None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
    kl = kl_estimate(logp, ref_logp)
    per_token = surrogate - beta * kl
    lengths = mask.sum(1).clamp_min(1)
    objective = ((per_token * mask).sum(1) / lengths).mean()
    with torch.no_grad():
        stats = dict(kl=float(((kl * mask).sum(1) / lengths).mean()),
                     clipped=float((((ratio - 1).abs() > eps).float() * mask).sum()
                                   / mask.sum()))
    return -objective, stats


@dataclass
class GRPORun:
    model: TinyLM
    reward: np.ndarray  # (steps,) mean training reward of the sampled groups
    correct: np.ndarray  # (steps,) share of sampled responses that are right
    length: np.ndarray  # (steps,) mean response length (tokens, END included)
    kl: np.ndarray  # (steps,) mean per-token KL estimate to the reference
    eval_steps: np.ndarray  # steps at which held-out accuracy was measured (0 = start)
    accuracy: np.ndarray  # held-out sampled accuracy (pass@1 estimate)
    seconds: float
    settings: dict = field(default_factory=dict)


def grpo(start: TinyLM, steps: int | None = None, group: int | None = None,
         prompts_per_step: int | None = None, beta: float = 0.04, eps: float = 0.2,
         lr: float | None = None, inner_steps: int | None = None, seed: int = 0,
         progress: Progress = None) -> GRPORun:
    """GRPO from `start` (copied; it also serves as the frozen reference)."""
    import copy
    import time

    p = preset("rl")
    steps = int(steps or p["grpo_steps"])
    G = int(group or p["group"])
    B = int(prompts_per_step or p["prompts_per_step"])
    lr = float(lr or p["grpo_lr"])
    mu = int(inner_steps or p["inner_steps"])
    if G < 2:
        raise ValueError(f"A group needs at least 2 samples to compare, not G = {G}.")
    if steps < 1 or B < 1 or mu < 1:
        raise ValueError("steps, prompts per step and inner steps must be at least 1.")
    if beta < 0 or not 0 < eps < 1 or lr <= 0:
        raise ValueError("Need β ≥ 0, 0 < ε < 1 and a positive learning rate.")
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    policy, ref = copy.deepcopy(start), copy.deepcopy(start)
    for q in ref.parameters():
        q.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    train, test = problems()
    test = test[: p["eval_prompts"]]
    n_terms = train.shape[1]
    log = {k: [] for k in ("reward", "correct", "length", "kl")}
    evals, accs = [0], [evaluate(policy, test, seed=seed)["accuracy"]]
    every = max(1, steps // 10)
    t0 = time.perf_counter()
    with one_thread():
        for step in range(steps):
            idx = torch.randint(len(train), (B,), generator=gen).numpy()
            terms = np.repeat(train[idx], G, axis=0)
            prompts = encode_prompts(terms)
            responses = sample(policy, prompts, n_terms + 1, gen)
            s = score(terms, responses)
            adv = group_advantages(s["reward"].reshape(B, G)).reshape(-1).float()
            mask = response_mask(responses)
            # π_old is the policy before this batch's first update: its log-probs are the
            # first inner step's own (one forward pass fewer per step than recomputing them)
            logp = token_logprobs(policy, prompts, responses)
            old = logp.detach()
            with torch.no_grad():
                ref_lp = token_logprobs(ref, prompts, responses)
            kl = None
            for inner in range(mu):
                if inner:
                    logp = token_logprobs(policy, prompts, responses)
                loss, st = grpo_loss(logp, old, ref_lp, adv, mask, eps, beta)
                kl = st["kl"] if kl is None else kl  # the sampling policy's KL
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
                opt.step()
            for k, v in (("reward", s["reward"].mean()), ("correct", s["correct"].mean()),
                         ("length", s["length"].mean()), ("kl", kl)):
                log[k].append(float(v))
            if (step + 1) % every == 0 or step + 1 == steps:
                evals.append(step + 1)
                accs.append(evaluate(policy, test, seed=seed)["accuracy"])
            if progress is not None and ((step + 1) % 5 == 0 or step + 1 == steps):
                progress(step + 1, steps, f"GRPO, reward {log['reward'][-1]:.2f}, "
                         f"held-out accuracy {accs[-1]:.0%}")
    settings = dict(steps=steps, group=G, prompts_per_step=B, beta=beta, eps=eps, lr=lr,
                    inner_steps=mu, seed=seed)
    return GRPORun(policy, *(np.array(log[k]) for k in ("reward", "correct", "length", "kl")),
                   np.array(evals), np.array(accs), time.perf_counter() - t0, settings)


def _done(progress: Progress, total: int, text: str) -> None:
    if progress is not None:
        progress(total, total, text)


def sft_then_grpo(quality: float = 0.7, group: int | None = None,
                  beta: float = 0.04, eps: float = 0.2, lr: float | None = None,
                  steps: int | None = None, seed: int = 0, student: bool = False,
                  progress: Progress = None, cache: bool = True) -> tuple[SFTRun, GRPORun]:
    """SFT on demonstrations of `quality`, then GRPO with the correct rule-based reward
    (both cached by their arguments)."""
    p = preset("rl")
    n_sft, n_grpo = p["sft_steps"], int(steps or p["grpo_steps"])
    base = sft(quality, seed=seed, student=student, progress=_part(progress, 0, n_sft + n_grpo),
               cache=cache)
    key = ("grpo", quality, group or p["group"], beta, eps, lr or p["grpo_lr"],
           steps or p["grpo_steps"], seed, student)
    if cache and key in RUNS:
        _done(progress, n_sft + n_grpo, "GRPO (cached)")
        return base, RUNS[key]
    run = grpo(base.model, steps, group, beta=beta, eps=eps, lr=lr, seed=seed,
               progress=_part(progress, n_sft, n_sft + n_grpo))
    RUNS[key] = run
    return base, run


def _part(progress: Progress, offset: int, total: int) -> Progress:
    """A sub-run's progress as steps `offset + done` of `total` (SFT, then GRPO)."""
    if progress is None:
        return None

    def inner(done, n, text):
        progress(offset + done, total, text)
    return inner


# ---------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, eq. 1):
    1 − C(n − c, k) / C(n, k), as a stable product."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"Need 0 ≤ c ≤ n and 1 ≤ k ≤ n; got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_curve(model: TinyLM, terms: np.ndarray, n: int = 16, ks=(1, 2, 4, 8, 16),
               seed: int = 0) -> dict:
    """Mean unbiased pass@k over prompts from n sampled responses each."""
    correct = evaluate(model, terms, samples=n, seed=seed)["correct"]
    c = correct.sum(1)
    return {k: float(np.mean([pass_at_k(n, int(ci), k) for ci in c])) for k in ks if k <= n}


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

    15 trainings take about a minute of one CPU core, so the result for the default
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
