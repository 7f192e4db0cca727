"""Which experts get a gradient: one real forward + backward of `course.moe_memory.MoELayer`
(a DeepSeek-style MoE layer), counted on the `.grad` tensors themselves.

Notebook 03 uses it to check the claim that MoE cuts gradient memory by the share of
inactive experts: one token leaves most experts' gradients zero, a batch gives every expert
one, and PyTorch stores a full-size gradient buffer either way.
"""

from __future__ import annotations

import torch

from course import validate
from course.moe_memory import MoELayer


def experts_with_gradient(tokens: int, d: int = 32, n_experts: int = 64, top_k: int = 4,
                          inter: int = 16, n_shared: int = 1, seed: int = 0) -> dict:
    """One backward pass over `tokens` random tokens. Returns:

    * "experts_with_grad": routed experts whose weight gradient is not all zero;
    * "experts_routed": distinct experts the router picked (must be the same set's size);
    * "grad_bytes" and "param_bytes": bytes of all `.grad` tensors and of all parameters
      (equal: the stored gradient is full-size however few experts were used).
    """
    tokens = validate.positive_int("tokens", tokens)
    n_experts = validate.positive_int("n_experts", n_experts)
    top_k = validate.positive_int("top_k", top_k)
    if top_k > n_experts:
        raise ValueError(f"top_k ({top_k}) cannot exceed the number of experts ({n_experts}).")
    torch.manual_seed(validate.non_negative_int("seed", seed))
    layer = MoELayer(validate.positive_int("d", d), n_experts, top_k,
                     validate.positive_int("inter", inter), validate.non_negative_int(
                         "n_shared", n_shared))
    x = torch.randn(tokens, d)
    layer(x).pow(2).mean().backward()
    with torch.no_grad():
        idx = layer.gate(x).topk(top_k, dim=-1).indices
    nonzero = (layer.w1.grad.flatten(1).abs().sum(1) > 0)
    params = list(layer.parameters())
    return {"experts_with_grad": int(nonzero.sum()),
            "experts_routed": int(idx.unique().numel()),
            "n_experts": n_experts,
            "grad_bytes": sum(p.grad.numel() * p.grad.element_size() for p in params),
            "param_bytes": sum(p.numel() * p.element_size() for p in params)}
