"""Load statistics of a mixture-of-experts layer (notebooks 08-09), re-exported by
`course.moe`: DeepSeek's bias update, MaxVio, the cost of a load on expert-parallel GPUs,
the floor a word-only router sets, and the mutual information between a token's kind and
its expert. Every function takes loads as counts or shares per expert (finite, ≥ 0) and
raises ValueError with a sentence otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from course import validate


def _load(load, name: str = "load") -> np.ndarray:
    """Tokens (or shares) per expert as a float array: finite, ≥ 0, at least one expert."""
    try:
        arr = np.asarray(load.detach().cpu() if torch.is_tensor(load) else load, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers of tokens per expert, not "
                         f"{type(load).__name__}.") from None
    if arr.ndim == 0 or arr.shape[-1] == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must hold one finite count ≥ 0 per expert.")
    return arr


def bias_update(bias: torch.Tensor, load: torch.Tensor, gamma: float) -> torch.Tensor:
    """b_i <- b_i + gamma * sign(mean load - load_i); bias, load (E,) -> new bias (E,)."""
    gamma = validate.non_negative("gamma", gamma)
    _load(load)
    if not torch.is_tensor(bias) or not torch.is_tensor(load) or bias.shape != load.shape \
            or bias.dim() != 1 or not torch.isfinite(bias).all():
        raise ValueError("bias and load must be finite 1-D tensors of the same length, one "
                         "value per expert.")
    load = load.float()
    return bias + gamma * torch.sign(load.mean() - load)


def max_vio(load) -> float | np.ndarray:
    """MaxVio (loss-free balancing paper, eq. 4): (max_i load_i - mean load) / mean load.

    load (E,) counts or shares; a (steps, E) array gives one value per row.
    """
    load = _load(load)
    mean = load.mean(-1)
    if np.any(mean <= 0):
        raise ValueError("MaxVio needs at least one routed token.")
    out = (load.max(-1) - mean) / mean
    if not np.isfinite(out).all():
        raise ValueError("The load is too large to average: give shares or smaller counts.")
    return out


@dataclass
class EPView:
    tokens_per_rank: np.ndarray  # (R,) tokens each EP rank's experts must process
    experts_per_rank: int
    utilisation: float  # mean / max: share of the step the average GPU is busy
    slowdown: float  # slowest rank / perfectly balanced rank


def ep_ranks(load, n_ranks: int) -> EPView:
    """Place experts on expert-parallel ranks, contiguously as DeepSeek's MoE does
    (rank r holds experts r*E/R ... (r+1)*E/R - 1); the step waits for the busiest rank.

    load (E,) tokens (or shares) per expert.
    """
    load = _load(load)
    if load.ndim != 1:
        raise ValueError("ep_ranks takes one load (E,), tokens per expert.")
    E = load.shape[-1]
    n_ranks = validate.positive_int("n_ranks", n_ranks)
    if E % n_ranks:
        raise ValueError(f"{E} experts cannot be split evenly over {n_ranks} GPUs.")
    per_rank = load.reshape(n_ranks, E // n_ranks).sum(-1)
    if per_rank.sum() <= 0 or not np.isfinite(per_rank).all():
        raise ValueError("The load is empty (no token was routed) or too large to add up.")
    mean, worst = per_rank.mean(), per_rank.max()
    return EPView(per_rank, E // n_ranks, float(mean / worst), float(worst / mean))


def word_router_floor(token_counts, n_experts: int, k: int) -> float:
    """MaxVio of a router that looks only at the word: all copies of the most frequent
    word land on the same k experts, so one expert gets at least p_max / k of the slots.

    token_counts (V,) occurrences of each word. Returns max(0, E * p_max / k - 1).
    """
    counts = _load(token_counts, "token_counts")
    n_experts = validate.positive_int("n_experts", n_experts)
    k = validate.integer("k", k, 1, n_experts)
    if counts.ndim != 1 or not 0 < counts.sum() < math.inf:
        raise ValueError("token_counts must be one finite count per word, not all zero.")
    return max(0.0, n_experts * float(counts.max() / counts.sum()) / k - 1.0)


def mutual_information(joint) -> float:
    """I(kind; expert) in bits from a (kinds, experts) table of counts:
    sum p(k, e) log2 p(k, e) / (p(k) p(e)). 0 when the expert says nothing about the kind."""
    p = _load(joint, "joint")
    if p.ndim != 2 or not 0 < p.sum() < math.inf:
        raise ValueError("mutual_information needs a 2-D table of non-negative counts.")
    p = p / p.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    nz = p > 0
    return max(0.0, float((p[nz] * np.log2(p[nz] / outer[nz])).sum()))
