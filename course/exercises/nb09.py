"""Exercises of notebook 09 · Balancing without an auxiliary loss."""

import numpy as np
import torch

from course import moe
from course.exercises import Exercise, register


def update_bias(bias: torch.Tensor, load: torch.Tensor, gamma: float) -> torch.Tensor:
    load = load.float()
    return bias + gamma * torch.sign(load.mean() - load)  # overloaded experts go down by γ


register(Exercise(
    name="09.update_bias", notebook="09",
    prompt="DeepSeek's bias update: the new bias (E,) from the bias, the tokens per expert "
           "and gamma.",
    hint="sign(mean − load): overloaded experts go down by γ.",
    reference=update_bias, oracle=moe.bias_update,
    cases=lambda: [(torch.zeros(4), torch.tensor([7.0, 1, 4, 4]), 0.001),
                   (torch.tensor([0.1, -0.2, 0.0]), torch.tensor([0.0, 3, 6]), 0.01),
                   (torch.zeros(8), torch.tensor([3, 3, 3, 3, 0, 9, 2, 1]), 0.5)],
    wrong=lambda bias, load, gamma: bias + gamma * torch.sign(load - load.float().mean()),
))


def route_with_bias(logits: torch.Tensor, bias: torch.Tensor, k: int):
    scores = logits.sigmoid()
    indices = (scores + bias).topk(k, dim=-1).indices  # the bias moves the choice only
    weights = scores.gather(1, indices)  # gate weights from the unbiased scores
    return weights / weights.sum(-1, keepdim=True), indices


def _route_cases() -> list[tuple]:
    # the notebook's tokens and bias (section 3), and a second random batch
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 8, generator=g)
    bias = torch.zeros(8)
    bias[5] = 0.5
    more = torch.randn(10, 16, generator=g)
    return [(logits, bias, 2), (logits, -bias, 3),
            (more, 0.3 * torch.randn(16, generator=g), 4)]


def _biased_weights(logits, bias, k):
    # plausible mistake: the gate weights also use the biased scores
    _, i, _ = moe.route(logits, k, "sigmoid", bias)
    chosen = (logits.sigmoid() + bias).gather(1, i)
    return chosen / chosen.sum(-1, keepdim=True), i


register(Exercise(
    name="09.route_with_bias", notebook="09",
    prompt="Route with a bias: top-k experts by sigmoid score + bias, weighted by the "
           "unbiased sigmoid scores normalised over the chosen ones; return (weights, indices).",
    hint="torch.topk on sigmoid(logits) + bias, then gather sigmoid(logits).",
    reference=route_with_bias, cases=_route_cases, wrong=_biased_weights,
    oracle=lambda logits, bias, k: moe.route(logits, k, "sigmoid", bias)[:2],
))


def _bias_rises() -> list[int]:
    rises = moe.bias_update(torch.zeros(4), torch.tensor([30, 10, 10, 10]), 1.0) > 0
    return torch.nonzero(rises).flatten().tolist()


register(Exercise(
    name="09.bias_rises", notebook="09",
    prompt="Loads for 4 experts are (30, 10, 10, 10): which experts' biases go up after one "
           "update? A list of their indices, smallest first.",
    hint="The mean load is 15.",
    expected=_bias_rises, wrong=[0],  # the overloaded one, backwards
))


def mutual_information(joint) -> float:
    p = joint / joint.sum()  # joint probability of (kind, expert)
    pk, pe = p.sum(1, keepdims=True), p.sum(0, keepdims=True)  # the two marginals
    nz = p > 0  # 0 log 0 = 0
    return float((p[nz] * np.log2(p[nz] / (pk * pe)[nz])).sum())


def _mi_cases() -> list[tuple]:
    rng = np.random.default_rng(0)
    return [(np.eye(4) * 7,), (np.ones((3, 5)),),
            (np.array([[5.0, 0], [5, 0], [0, 5], [0, 5]]),),
            (rng.integers(0, 30, size=(10, 16)).astype(float),)]


register(Exercise(
    name="09.mutual_information", notebook="09",
    prompt="I(kind; expert) in bits from a (kinds, experts) table of routing counts.",
    hint="Normalise to p(k, e); sum p(k, e) · log2(p(k, e) / (p(k) p(e))) over the non-zero "
         "cells.",
    reference=mutual_information, cases=_mi_cases, oracle=moe.mutual_information,
    wrong=lambda joint: mutual_information(joint) * np.log(2),  # nats, not bits
))
