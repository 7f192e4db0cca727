"""Imitation and reinforcement (notebook 16, `course.rl`): supervised fine-tuning on
demonstrations (`sft`), GRPO with the rule-based reward (`grpo`, DeepSeekMath §4.1, eq. 3),
both cached by their arguments in `RUNS`, and the unbiased pass@k (Chen et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from course import validate
from course.device import seed_everything
from course.model import TinyLM
from course.presets import preset
from course.rl_task import (
    Demos,
    demonstrations,
    encode_prompts,
    evaluate,
    problems,
    response_mask,
    sample,
    score,
    task_config,
    token_logprobs,
)
from course.timing import one_thread

Progress = Callable[[int, int, str], None] | None
#: every run this kernel has made, by its arguments (`RUNS.clear()` forgets them)
RUNS: dict = {}


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


def samples_per_step() -> int:
    """GRPO samples per step at the preset's defaults (prompts per step x group size)."""
    p = preset("rl")
    return p["prompts_per_step"] * p["group"]


def prompts_at_budget(group: int) -> int:
    """Prompts per GRPO step for group size G when the samples per step stay at
    `samples_per_step()`: the choice a rollout budget forces (notebook 16's slider)."""
    budget = samples_per_step()
    group = validate.integer("group (the group size G)", group, 2, budget)
    return budget // group


def sft_then_grpo(quality: float = 0.7, group: int | None = None,
                  beta: float = 0.04, eps: float = 0.2, lr: float | None = None,
                  steps: int | None = None, seed: int = 0, student: bool = False,
                  progress: Progress = None, cache: bool = True,
                  prompts_per_step: int | None = None) -> tuple[SFTRun, GRPORun]:
    """SFT on demonstrations of `quality`, then GRPO with the correct rule-based reward
    (both cached by their arguments)."""
    p = preset("rl")
    n_sft, n_grpo = p["sft_steps"], int(steps or p["grpo_steps"])
    base = sft(quality, seed=seed, student=student, progress=_part(progress, 0, n_sft + n_grpo),
               cache=cache)
    key = ("grpo", quality, group or p["group"], beta, eps, lr or p["grpo_lr"],
           steps or p["grpo_steps"], seed, student, prompts_per_step or p["prompts_per_step"])
    if cache and key in RUNS:
        _done(progress, n_sft + n_grpo, "GRPO (cached)")
        return base, RUNS[key]
    run = grpo(base.model, steps, group, prompts_per_step, beta=beta, eps=eps, lr=lr,
               seed=seed, progress=_part(progress, n_sft, n_sft + n_grpo))
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
