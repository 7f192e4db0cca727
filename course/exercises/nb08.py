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
