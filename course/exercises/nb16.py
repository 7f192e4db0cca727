"""Exercises of notebook 16 · Imitation and reinforcement (SFT, distillation, GRPO)."""

import math

import numpy as np

from course import rl
from course.exercises import Exercise, register


def group_advantages(rewards) -> np.ndarray:
    r = np.asarray(rewards, dtype=float)  # the G rewards of one prompt's group
    std = r.std()  # population std: divide by G
    if std == 0:
        return np.zeros_like(r)  # everyone equal: nothing to prefer
    return (r - r.mean()) / std


def _advantage_cases() -> list[tuple]:
    return [([1.0, 0.0, 0.0, 1.0],), ([1.1, 0.1, 0.1, 0.1, 1.1, 1.1, 0.0, 1.1],),
            ([0.5, 0.5, 0.5],), ([0.0, 1.0, 0.1, 0.1, 1.1, 0.0],)]


register(Exercise(
    name="16.group_advantages", notebook="16",
    prompt="GRPO's advantages of one group: (r − mean) / std, 0 for a group of equal rewards.",
    hint="Subtract the group's mean, divide by its std (np.std, which divides by G).",
    reference=group_advantages, cases=_advantage_cases,
    oracle=lambda r: rl.group_advantages(np.asarray(r, dtype=float)[None])[0].numpy(),
    wrong=lambda r: np.asarray(r, float) - np.mean(r),  # forgot to divide by the std
))


def clipped_objective(ratio: float, advantage: float, eps: float) -> float:
    clipped = min(max(ratio, 1 - eps), 1 + eps)  # the ratio kept inside [1 − ε, 1 + ε]
    return min(ratio * advantage, clipped * advantage)  # the pessimistic of the two


def _clip_cases() -> list[tuple]:
    return [(1.5, 2.0, 0.2), (1.5, -2.0, 0.2), (0.5, 1.0, 0.2), (0.5, -1.0, 0.2),
            (1.1, 1.0, 0.2), (3.0, -0.5, 0.1)]


register(Exercise(
    name="16.clipped_objective", notebook="16",
    prompt="The clipped objective min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) for one token.",
    hint="Clip the ratio into [1 − ε, 1 + ε]; take the smaller of ratio·Â and clipped·Â.",
    reference=clipped_objective, cases=_clip_cases,
    oracle=lambda r, a, e: float(rl.clipped_objective(r, a, e)),
    wrong=lambda r, a, e: min(max(r, 1 - e), 1 + e) * a,  # clip without the min
))


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0  # every set of k samples contains a correct one
    return 1 - math.comb(n - c, k) / math.comb(n, k)  # 1 − P(all k drawn are wrong)


def _pass_cases() -> list[tuple]:
    return [(16, 0, 1), (16, 4, 1), (16, 4, 4), (16, 12, 8), (10, 3, 5), (5, 5, 2),
            (64, 10, 16)]


register(Exercise(
    name="16.pass_at_k", notebook="16",
    prompt="The unbiased pass@k from n samples of which c are correct.",
    hint="1 − C(n − c, k) / C(n, k): the chance that k of the n samples, drawn without "
         "replacement, are all wrong.",
    reference=pass_at_k, cases=_pass_cases, oracle=rl.pass_at_k,
    wrong=lambda n, c, k: 1 - (1 - c / n) ** k,  # with replacement: biased
))


register(Exercise(
    name="16.value_model_tb", notebook="16",
    prompt="For DeepSeek-V3 under its FP8 recipe, how many terabytes does PPO's value model "
           "need (weights, gradients, optimizer states), i.e. what does GRPO save?",
    hint="A value model as large as the policy, trained: memory.state_bytes(params, "
         "'deepseek-fp8'), all three parts summed, in 1e12 bytes.",
    expected=lambda: rl.ppo_vs_grpo_memory()["value_model_bytes"] / 1e12,
    wrong=671.0 * 1e9 / 1e12,  # the weights at one byte each only
    rtol=0.02,
))
