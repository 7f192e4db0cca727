"""Mixture-of-experts router, layer and load statistics (notebooks 08-09).

* `route`: the router. "softmax" scores top-k as in Switch / DeepSeek-V2 (gate weights are
  the softmax probabilities of the chosen experts, not renormalised; GShard and Mixtral
  renormalise them over the chosen k); "sigmoid" as in DeepSeek-V3 (`inference/model.py`,
  `Gate.forward`; report 2.1.2): a per-expert bias is added to the scores *only to choose*
  the experts, the gate weights come from the unbiased scores normalised over the chosen
  experts, times `route_scale`. Optional group-limited routing: experts split into
  `n_groups`, each token keeps the `topk_groups` groups with the largest sum of their
  top-2 (biased) scores.
* `MoE(cfg, linear)`: routed SwiGLU experts plus optional always-on shared experts; the
  FFN of `course.model.TinyLM` when `ffn="moe"`. After each forward it holds `last_load`
  (tokens per expert) and `aux_loss` (Switch-style N * sum_i f_i P_i, batch-wise, no alpha);
  `update_bias(gamma)` is DeepSeek's b_i <- b_i + gamma * sign(mean load - load_i).
  With `aux_scope="sequence"` in `cfg.extra` the aux loss is DeepSeek-V3's sequence-wise
  complementary loss (report eq. 17-20): the same N * sum_i f_i P_i computed within each
  sequence, then averaged over the sequences of the batch.
* Capacity (GShard, Lepikhin et al. 2020 §2.2; Switch, Fedus et al. 2021 §2.2): with
  `capacity_factor` set, each expert takes at most ceil(factor * tokens * k / E) routing
  slots of a batch and the overflow is dropped (that slot's expert output is left out, so a
  token whose slots are all dropped passes through the residual only). DeepSeek-V3 drops
  none (report §2.1.2 "No Token-Dropping", §3.2): `capacity_factor=None`, the default.
* `max_vio`, `ep_ranks`, `word_router_floor`, `mutual_information`: how unbalanced a load
  is, what it costs on expert-parallel GPUs, and what an expert says about a token.

The load statistics live in `course.moe_stats`, training in `course.moe_train` (`train`,
`RUNS`, `held_out_load`, word kinds), capacity factors on trained runs in `course.moe_capacity`
(`capacity_sweep`, `capacity_over_seeds`), comparisons over seeds in `course.moe_eval`
(`specialisation`, `balancing_spread`) and timing one layer in
`course.moe_timing` (`time_layer`); all their names are reachable here too (`moe.train`,
`moe.max_vio`, ...). Left out: the all-to-all dispatch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course import validate
from course.attention import SwiGLU, plain_linear
from course.moe_stats import (  # noqa: F401
    EPView,
    bias_update,
    ep_ranks,
    max_vio,
    mutual_information,
    word_router_floor,
)

SCORE_FUNCS = ("sigmoid", "softmax")
AUX_SCOPES = ("batch", "sequence")
MAX_EXPERTS = 4096  # 16x DeepSeek-V3's 256 routed experts


def _logits(logits) -> torch.Tensor:
    if not torch.is_tensor(logits) or logits.dim() != 2 or 0 in logits.shape \
            or not logits.is_floating_point():
        raise ValueError("logits must be a 2-D float tensor (tokens, experts), not "
                         f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}.")
    logits = logits.float()
    if not torch.isfinite(logits).all():
        raise ValueError("The router logits hold nan or inf (in FP32): the router diverged.")
    return logits


def route(logits: torch.Tensor, k: int, score_func: str = "sigmoid",
          bias: torch.Tensor | None = None, n_groups: int = 1, topk_groups: int = 1,
          route_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick k experts per token and their gate weights.

    logits (T, E) router logits x W^T. Returns weights (T, k), indices (T, k) and the
    unbiased scores (T, E). `bias` (E,) moves the choice only, never the weights.
    """
    logits = _logits(logits)
    T, E = logits.shape
    score_func = validate.choice("score_func", score_func, SCORE_FUNCS)
    n_groups = validate.integer("n_groups", n_groups, 1, E)
    topk_groups = validate.integer("topk_groups", topk_groups, 1, n_groups)
    k = validate.positive_int("k", k)
    route_scale = validate.positive("route_scale", route_scale)
    if E % n_groups:
        raise ValueError(f"{E} experts cannot be split into {n_groups} equal groups.")
    if k > E // n_groups * topk_groups:
        raise ValueError(f"Cannot choose {k} experts from {E // n_groups * topk_groups} "
                         "allowed ones.")
    if bias is not None and (not torch.is_tensor(bias) or bias.shape != (E,)
                             or not torch.isfinite(bias).all()):
        raise ValueError(f"bias must be a finite tensor of shape ({E},), one per expert.")
    scores = logits.softmax(-1) if score_func == "softmax" else logits.sigmoid()
    choice = scores if bias is None else scores + bias  # step 2: bias for selection only
    if n_groups > 1:
        # steps 3-4: a group's score is the sum of its two best experts; keep the best groups.
        # subtle: DeepSeek's code uses the group max when there is no bias (V2); V3 has one.
        grouped = choice.view(T, n_groups, E // n_groups)
        group_scores = grouped.topk(min(2, E // n_groups), dim=-1).values.sum(-1)
        keep = group_scores.topk(topk_groups, dim=-1).indices
        mask = torch.ones(T, n_groups, dtype=torch.bool, device=logits.device)
        mask.scatter_(1, keep, False)
        choice = grouped.masked_fill(mask[..., None], float("-inf")).flatten(1)
    indices = choice.topk(k, dim=-1).indices  # step 5: top-k including the bias
    weights = scores.gather(1, indices)  # step 6: the unbiased scores
    if score_func == "sigmoid":
        # subtle: sigmoid of a logit below about -88 is 0 in FP32; every chosen score 0
        # would divide 0 by 0, so such a token's weights are shared equally instead.
        total = weights.sum(-1, keepdim=True)
        weights = torch.where(total > 0, weights / total.clamp_min(torch.finfo(total.dtype).tiny),
                              1.0 / k)
    return weights * route_scale, indices, scores


def _indices(indices, n_experts: int) -> torch.Tensor:
    if not torch.is_tensor(indices) or indices.dim() != 2 or indices.is_floating_point() \
            or indices.dtype == torch.bool:
        raise ValueError("indices must be a 2-D integer tensor (tokens, k) of chosen experts.")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n_experts):
        raise ValueError(f"Expert indices must lie in 0..{n_experts - 1}.")
    return indices


def expert_counts(indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Tokens routed to each expert, indices (T, k) -> (E,) (a token counts once per slot)."""
    n_experts = validate.integer("n_experts", n_experts, 1, MAX_EXPERTS)
    return torch.bincount(_indices(indices, n_experts).flatten(), minlength=n_experts)


def _normalised(scores: torch.Tensor, score_func: str) -> torch.Tensor:
    validate.choice("score_func", score_func, SCORE_FUNCS)
    if score_func == "softmax":
        return scores
    # subtle: a token whose sigmoid scores all underflow to 0 counts 0 for every expert
    return scores / scores.sum(-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)


def balance_loss(scores: torch.Tensor, indices: torch.Tensor, score_func: str) -> torch.Tensor:
    """Switch-style N * sum_i f_i P_i over a batch (1.0 when perfectly balanced).

    f_i: share of the T*k routing slots that went to expert i (no gradient);
    P_i: mean over tokens of the normalised score s'_i (V3 eq. 17-20 use the same pieces).
    """
    T, E = scores.shape
    f = expert_counts(indices, E).float() / indices.numel()
    return E * (f * _normalised(scores, score_func).mean(0)).sum()


def sequence_balance_loss(scores: torch.Tensor, indices: torch.Tensor, score_func: str,
                          seq_len: int) -> torch.Tensor:
    """DeepSeek-V3's sequence-wise balance loss (report eq. 17-20, without alpha): the
    Switch-style N * sum_i f_i P_i computed over the T tokens of each sequence, then
    averaged over sequences. scores (B*T, E), indices (B*T, k), rows in sequence order."""
    n, E = scores.shape
    seq_len = validate.positive_int("seq_len", seq_len)
    if n % seq_len:
        raise ValueError(f"{n} tokens do not split into sequences of {seq_len}.")
    k = _indices(indices, E).shape[-1]
    hits = torch.zeros(n, E, device=scores.device).scatter_add_(
        1, indices, torch.ones_like(indices, dtype=torch.float))
    f = hits.view(-1, seq_len, E).sum(1) * E / (k * seq_len)  # eq. 18: N/(K T) * count
    p = _normalised(scores, score_func)  # eq. 19
    return (f * p.view(-1, seq_len, E).mean(1)).sum(-1).mean()  # eq. 17, 20; mean over seqs


def expert_capacity(tokens: int, n_experts: int, k: int, factor: float) -> int:
    """Routing slots one expert may take in a batch: ceil(factor * tokens * k / n_experts)
    (GShard §2.2, Switch §2.2; factor 1 is exactly the balanced share, 0 drops all)."""
    tokens = validate.non_negative_int("tokens", tokens)
    n_experts = validate.positive_int("n_experts", n_experts)
    k = validate.integer("k", k, 1, n_experts)
    factor = validate.number("the capacity factor", factor, "a number ≥ 0")
    if factor < 0:
        raise ValueError(f"The capacity factor must be 0 or more, not {factor}.")
    slots = factor * tokens * k / n_experts
    if slots > 2**53:
        raise ValueError(f"A capacity of {slots:.3g} slots is absurd: lower the factor.")
    return math.ceil(slots - 1e-9)  # subtle: 1.25*512/16 is 40.0


def capacity_mask(indices: torch.Tensor, n_experts: int, capacity: int) -> torch.Tensor:
    """Which routing slots an expert of capacity `capacity` keeps: indices (T, k) -> (T, k)
    bool, True = kept. Every token's first choice goes before any second choice (GShard's
    Algorithm 1), tokens in batch order within a choice; an expert keeps its first
    `capacity` arrivals and drops the rest."""
    n_experts = validate.integer("n_experts", n_experts, 1, MAX_EXPERTS)
    T, k = _indices(indices, n_experts).shape
    # more room than there are slots keeps every slot: the same as capacity = T * k
    capacity = min(validate.non_negative_int("capacity", capacity), T * k)
    slot_major = indices.T.reshape(-1)  # first choices of all tokens, then second choices
    onehot = torch.nn.functional.one_hot(slot_major, n_experts)
    position = (onehot.cumsum(0) * onehot).sum(-1) - 1  # arrival number at its expert
    return (position < capacity).view(k, T).T


def check_sizes(cfg) -> None:
    """ValueError unless `cfg` describes an MoE layer that can be built (see `MoE`)."""
    # Upper bounds well above DeepSeek-V3 (7168 wide, 256 experts of width 2048, 1 shared).
    E = validate.integer("n_routed_experts", getattr(cfg, "n_routed_experts", None), 1,
                         MAX_EXPERTS)
    validate.integer("d_model", getattr(cfg, "d_model", None), 1, 65536)
    validate.integer("moe_inter_dim", getattr(cfg, "moe_inter_dim", None), 1, 65536)
    validate.integer("n_shared_experts", getattr(cfg, "n_shared_experts", None), 0, 64)
    groups = validate.integer("n_groups", getattr(cfg, "n_groups", None), 1, E)
    keep = validate.integer("topk_groups", getattr(cfg, "topk_groups", None), 1, groups)
    if E % groups:
        raise ValueError(f"{E} experts cannot be split into {groups} equal groups.")
    validate.integer("experts_per_token", getattr(cfg, "experts_per_token", None), 1,
                     E // groups * keep)
    validate.choice("score_func", getattr(cfg, "score_func", None), SCORE_FUNCS)
    validate.positive("route_scale", getattr(cfg, "route_scale", None))
    extra = getattr(cfg, "extra", None) or {}
    if not isinstance(extra, dict):
        raise ValueError(f"cfg.extra must be a dict of router settings, not {extra!r}.")
    validate.positive("router_std", extra.get("router_std", 0.02))
    validate.positive("the router temperature (router_temp)", extra.get("router_temp", 1.0))
    validate.choice("aux_scope", extra.get("aux_scope", "batch"), AUX_SCOPES)
    validate.optional(validate.non_negative, "capacity_factor", extra.get("capacity_factor"))


class MoE(nn.Module):
    """Routed SwiGLU experts + shared experts, the FFN switch of `course.model.TinyLM`.

    cfg fields: d_model, n_routed_experts, experts_per_token, moe_inter_dim,
    n_shared_experts, n_groups, topk_groups, score_func, route_scale, and in `cfg.extra`
    optionally `router_std` (init std of the router, default 0.02), `router_temp`
    (router logits are divided by it, default 1), `aux_scope` ("batch" or "sequence") and
    `capacity_factor` (None: no token dropped, as in V3). forward: x (B, T, d) -> (B, T, d).
    After a forward, `last_dropped` is the number of routing slots dropped (of `last_slots`).
    """

    def __init__(self, cfg, linear=plain_linear):
        super().__init__()
        check_sizes(cfg)
        self.E, self.k = int(cfg.n_routed_experts), int(cfg.experts_per_token)
        self.score_func = cfg.score_func
        self.n_groups, self.topk_groups = int(cfg.n_groups), int(cfg.topk_groups)
        self.route_scale = float(cfg.route_scale)
        extra = getattr(cfg, "extra", None) or {}
        self.temperature = float(extra.get("router_temp", 1.0))
        self.aux_scope = extra.get("aux_scope", "batch")
        self.capacity_factor = extra.get("capacity_factor")  # may be set on a trained layer
        # Like DeepSeek's Gate: a raw parameter, so TinyLM's std-0.02 re-init leaves it alone.
        self.weight = nn.Parameter(torch.randn(self.E, int(cfg.d_model))
                                   * float(extra.get("router_std", 0.02)))
        # e_score_correction_bias: FP32, moved by update_bias, never by gradients
        self.register_buffer("bias", torch.zeros(self.E, dtype=torch.float32))
        width, inter = int(cfg.d_model), int(cfg.moe_inter_dim)
        self.experts = nn.ModuleList(SwiGLU(width, inter, linear) for _ in range(self.E))
        n_shared = int(cfg.n_shared_experts)  # DeepSeek: one MLP of width n_shared * inter
        self.shared = SwiGLU(width, n_shared * inter, linear) if n_shared else None
        self.last_load = torch.zeros(self.E)
        self.last_indices = torch.zeros(0, self.k, dtype=torch.long)
        self.last_dropped, self.last_slots = 0, 0
        self.aux_loss: torch.Tensor | None = None
        self.bias_log: list[torch.Tensor] = []

    def gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, d) -> weights (N, k), indices (N, k), scores (N, E)."""
        logits = x @ self.weight.T / self.temperature
        return route(logits, self.k, self.score_func, self.bias, self.n_groups,
                     self.topk_groups, self.route_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, indices, scores = self.gate(x)
        counts = expert_counts(indices, self.E)
        self.last_dropped, self.last_slots = 0, indices.numel()
        if self.capacity_factor is not None:
            cap = expert_capacity(len(x), self.E, self.k, float(self.capacity_factor))
            keep = capacity_mask(indices, self.E, cap)
            # A dropped slot's expert output is multiplied by 0: the same as never sending it.
            weights = weights * keep
            self.last_dropped = int((~keep).sum())
        # Dispatch: sort the (token, slot) pairs by expert so each expert reads one slice.
        order = indices.flatten().argsort(stable=True)  # (N*k,)
        chunks = x[order // self.k].split(counts.tolist())
        out = torch.cat([self.experts[i](c) if len(c) else c for i, c in enumerate(chunks)])
        out = out * weights.type_as(x).flatten()[order, None]
        # Combine: undo the sort, then sum each token's k expert outputs.
        y = out[order.argsort()].view(-1, self.k, shape[-1]).sum(1)
        if self.shared is not None:
            y = y + self.shared(x)
        self.last_load = counts.detach().cpu()
        self.last_indices = indices.detach().cpu()
        if self.aux_scope == "sequence" and len(shape) == 3:
            self.aux_loss = sequence_balance_loss(scores, indices, self.score_func, shape[1])
        else:
            self.aux_loss = balance_loss(scores, indices, self.score_func)
        return y.view(shape)

    @torch.no_grad()
    def update_bias(self, gamma: float) -> None:
        """DeepSeek-V3 2.1.2, after each step: see `bias_update`."""
        self.bias.copy_(bias_update(self.bias, self.last_load.to(self.bias.device), gamma))
        self.bias_log.append(self.bias.detach().cpu().clone())


#: Names that live in the training, evaluation and timing modules, reachable as `moe.<name>`.
_ELSEWHERE = {
    "course.moe_train": ("train", "MoERun", "RUNS", "CHECKPOINT_EVERY", "describe",
                         "held_out_load", "kinds", "_kind_of_token", "kind_expert_counts",
                         "TRAIN_KEYS", "RUN_KEYS", "ROUTER_KEYS", "BALANCES"),
    "course.moe_capacity": ("CapacitySweep", "capacity_sweep", "CapacitySpread",
                            "capacity_over_seeds"),
    "course.moe_eval": ("Specialisation",
                        "specialisation", "balancing_spread", "router_spread", "compare_text",
                        "method_vs_seed_text", "compare", "Comparison"),
    "course.moe_timing": ("LayerTiming", "time_layer"),
}


def __getattr__(name: str):
    import importlib

    for module, names in _ELSEWHERE.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'course.moe' has no attribute {name!r}")
