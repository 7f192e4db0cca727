"""Exercises of notebook 08 · MoE routing collapse."""

import numpy as np

from course import moe
from course.exercises import Exercise, register

#: the loads per expert of exercise 2 (16 experts, 4 per GPU), as the notebook shows them
EP_LOAD = np.array([40, 5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 5, 5, 5, 5])


def max_vio(load: np.ndarray) -> float:
    mean = load.mean()  # what every expert would get if the router were perfectly balanced
    return float((load.max() - mean) / mean)


def _max_vio_cases() -> list[tuple]:
    rng = np.random.default_rng(0)
    return [(np.array([3.0, 1, 1, 1]),), (np.array([5.0, 5, 5, 5]),),
            (rng.gamma(0.5, size=16),),  # a skewed router's shares, no training needed
            (rng.integers(1, 100, size=64).astype(float),)]


register(Exercise(
    name="08.max_vio", notebook="08",
    prompt="MaxVio of a 1-D array of tokens per expert.",
    hint="(max − mean) / mean.",
    reference=max_vio, cases=_max_vio_cases, oracle=moe.max_vio,
    wrong=lambda load: float(load.max() / load.mean()),  # forgot to subtract the mean
))


register(Exercise(
    name="08.ep_utilisation", notebook="08",
    prompt="16 experts on 4 GPUs (4 each, in order), loads per expert EP_LOAD: what fraction "
           "of the time is the average GPU busy?",
    hint="Sum each GPU's 4 experts; divide the mean by the max.",
    expected=lambda: moe.ep_ranks(EP_LOAD, 4).utilisation,
    wrong=float(EP_LOAD.mean() / EP_LOAD.max()),  # per expert, not per GPU
    rtol=0.01,
))


register(Exercise(
    name="08.max_vio_collapse", notebook="08",
    prompt="All tokens of a batch go to one expert out of E = 16 (top-1): what is MaxVio?",
    hint="max = all tokens, mean = all tokens / 16.",
    expected=lambda: float(moe.max_vio(np.eye(16)[0])),
    wrong=16.0, rtol=1e-3,  # max / mean, without subtracting the mean
))


def dropped_slots(indices, n_experts: int, capacity: int) -> int:
    kept = 0
    used = [0] * n_experts
    for choice in indices.T.tolist():  # all first choices, then all second choices
        for e in choice:
            if used[e] < capacity:  # the expert still has room: keep the slot
                used[e] += 1
                kept += 1
    return indices.numel() - kept


def _dropped_cases() -> list[tuple]:
    import torch

    g = torch.Generator().manual_seed(0)
    skewed = torch.multinomial(torch.tensor([8.0, 4, 2, 1, 1, 1, 1, 1]), 2 * 40, True,
                               generator=g).view(40, 2)
    return [(torch.tensor([[0], [0], [0], [1], [1], [2], [3], [0]]), 4, 3),
            (torch.randint(0, 16, (64, 1), generator=g), 16, 4),
            (skewed, 8, 10), (skewed, 8, 100)]


register(Exercise(
    name="08.dropped_slots", notebook="08",
    prompt="How many routing slots (T, k) are dropped when every expert takes at most "
           "`capacity`, first choices before second choices, tokens in order?",
    hint="The order decides which slots go, not how many: expert e drops "
         "max(0, count_e − capacity).",
    reference=dropped_slots, cases=_dropped_cases,
    oracle=lambda indices, n_experts, capacity: int(
        (~moe.capacity_mask(indices, n_experts, capacity)).sum()),
    # off by one: `used[e] <= capacity` lets each expert keep capacity + 1 slots
    wrong=lambda indices, n_experts, capacity: int(
        (moe.expert_counts(indices, n_experts) - capacity - 1).clamp(min=0).sum()),
))
