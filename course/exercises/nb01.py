"""Exercises of notebook 01 · The transformer block."""

import math

import torch

from course.attention import causal_mask
from course.exercises import Exercise, register


def mask(T: int) -> torch.Tensor:
    return causal_mask(T)


register(Exercise(
    name="01.causal_mask", notebook="01",
    prompt="Write the causal mask: a (T, T) boolean tensor, True where query t may see key s.",
    hint="Token t may look at itself and every earlier token: s <= t (torch.tril of ones).",
    reference=mask, cases=lambda: [(1,), (4,), (7,)], oracle=causal_mask,
    wrong=lambda T: torch.ones(T, T, dtype=torch.bool).triu(),  # looks at the future
))


def one_head(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = q @ k.T / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~causal_mask(q.shape[0]), float("-inf"))
    return scores.softmax(-1) @ v


def _head_cases():
    g = torch.Generator().manual_seed(1)
    return [tuple(torch.randn(T, d, generator=g) for _ in range(3)) for T, d in ((3, 4), (6, 8))]


def _head_oracle(q, k, v):
    from course.attention import attend  # the attention every course model runs

    return attend(q[None, None], k[None, None], v[None, None])[0][0, 0]


register(Exercise(
    name="01.one_head", notebook="01",
    prompt="Write one causal attention head: q, k, v of shape (T, d) -> output (T, d).",
    hint="softmax((q @ k.T) / sqrt(d) with the future set to -inf, dim=-1) @ v",
    reference=one_head, cases=_head_cases, oracle=_head_oracle,
    wrong=lambda q, k, v: (q @ k.T / math.sqrt(q.shape[-1])).softmax(-1) @ v,  # no mask
))


def _weights_shape() -> tuple:
    # course.inspect_model.attention_maps of "babe ruth played" in the trained tiny model:
    # (layers, heads, T, T) with T = 4 tokens (".", babe, ruth, played).
    from course.presets import preset

    p = preset("tiny_lm", "toy")  # trained_tiny_model is always the toy model
    return (p["n_layers"], p["n_heads"], 4, 4)


register(Exercise(
    name="01.weights_shape", notebook="01",
    prompt="Predict the shape of attention_maps(model, 'babe ruth played').weights.",
    hint="(layers, heads, T, T); the prompt starts with the '.' separator.",
    expected=_weights_shape, wrong=(2, 4, 3, 3), rtol=0,
))


def rotate(x: float, y: float, angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return (x * c - y * s, x * s + y * c)


def _rotate_oracle(x, y, angle):
    from course.attention import apply_rope

    cos = torch.full((2,), math.cos(angle), dtype=torch.float64)
    sin = torch.full((2,), math.sin(angle), dtype=torch.float64)
    out = apply_rope(torch.tensor([x, y], dtype=torch.float64), cos, sin)
    return (float(out[0]), float(out[1]))


register(Exercise(
    name="01.rope_rotate", notebook="01",
    prompt="Rotate the pair (x, y) by angle radians, counter-clockwise, as RoPE does to each "
           "pair of a query's or key's dimensions.",
    hint="(x cos a - y sin a, x sin a + y cos a).",
    reference=rotate, oracle=_rotate_oracle,
    cases=lambda: [(1.0, 0.0, math.pi / 2), (0.3, -1.2, 0.7), (2.0, 5.0, -3.0)],
    wrong=lambda x, y, a: (x * math.cos(a) + y * math.sin(a),
                           -x * math.sin(a) + y * math.cos(a)),  # clockwise
))
