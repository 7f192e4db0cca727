"""Exercises of notebook 12 · Multi-token prediction."""

import torch

from course import speculative
from course.exercises import Exercise, register


def tokens_per_step(ps: list[float]) -> float:
    total, chain = 1.0, 1.0  # the main model's own token always counts
    for p in ps:
        chain *= p  # depth k is used only when every earlier draft passed
        total += chain
    return total


register(Exercise(
    name="12.tokens_per_step", notebook="12",
    prompt="Tokens per main-model step when depth k's draft passes with probability p_k "
           "(given the earlier ones passed): 1 + p_1 + p_1 p_2 + ...",
    hint="Keep a running product of the p's and add it up, starting from 1.",
    reference=tokens_per_step, oracle=speculative.expected_tokens_per_step,
    cases=lambda: [([0.85],), ([0.8, 0.5],), ([],), ([0.9, 0.7, 0.6],)],
    wrong=lambda ps: 1 + sum(ps),  # forgot that a rejection stops the chain
))


def greedy_acceptance(main_logits: torch.Tensor, draft_logits: torch.Tensor) -> float:
    agree = main_logits.argmax(-1) == draft_logits.argmax(-1)  # one row per drafted token
    return agree.float().mean().item()


def _greedy_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 7, generator=g), torch.randn(50, 7, generator=g)
    return [(a, b), (a, a + 0.01 * b), (a, a + 0.5 * b)]


def _sampling_acceptance(main_logits: torch.Tensor, draft_logits: torch.Tensor) -> float:
    """Speculative sampling accepts a draft with probability sum_x min(p(x), q(x)); at
    temperature 0 (speculative's one-hot distributions) that is 1 where the argmaxes agree."""
    rates = [torch.minimum(speculative._probs(m, 0.0), speculative._probs(d, 0.0)).sum()
             for m, d in zip(main_logits, draft_logits)]
    return float(torch.stack(rates).mean())


register(Exercise(
    name="12.greedy_acceptance", notebook="12",
    prompt="The fraction of rows where the main model's and the draft's argmax agree; "
           "main_logits and draft_logits are (N, V).",
    hint="Compare argmax(-1) of both and take the mean of the matches.",
    reference=greedy_acceptance, cases=_greedy_cases, oracle=_sampling_acceptance,
    wrong=lambda m, d: (m.argmax(0) == d.argmax(0)).float().mean().item(),  # wrong axis
))


register(Exercise(
    name="12.speedup_p90", notebook="12",
    prompt="With p = 0.9 and a verify step plus draft costing 5 % more than a plain step, "
           "what speed-up do you expect?",
    hint="(1 + p) / 1.05",
    expected=lambda: speculative.speedup_estimate(
        speculative.expected_tokens_per_step([0.9]), 1.0, 1.0, 0.05),
    wrong=1.9, rtol=0.01,  # the ceiling 1 + p, forgetting the overhead
))
