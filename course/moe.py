"""Mixture-of-experts layer, router and load statistics (notebooks 08-09).

* `route`: the router. "softmax" scores top-k as in GShard / Switch / DeepSeek-V2 (gate
  weights are the softmax probabilities of the chosen experts); "sigmoid" as in
  DeepSeek-V3 (`inference/model.py`, `Gate.forward`; report 2.1.2): a per-expert bias is
  added to the scores *only to choose* the experts, the gate weights come from the
  unbiased scores normalised over the chosen experts, times `route_scale`. Optional
  group-limited routing: experts split into `n_groups`, each token keeps the `topk_groups`
  groups with the largest sum of their top-2 (biased) scores.
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
* `max_vio`, `ep_ranks`: how unbalanced a load is, and what it costs on expert-parallel GPUs.
* `train`: the course's one model trained with an MoE FFN (via `course.train.train_lm`).
* `capacity_sweep`: held-out share of dropped slots and loss against the capacity factor.
* `specialisation`: mutual information between a token's word kind and its expert.

Left out: the all-to-all dispatch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from course.attention import SwiGLU, plain_linear
from course.runcache import RunCache

SCORE_FUNCS = ("sigmoid", "softmax")


def route(logits: torch.Tensor, k: int, score_func: str = "sigmoid",
          bias: torch.Tensor | None = None, n_groups: int = 1, topk_groups: int = 1,
          route_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick k experts per token and their gate weights.

    logits (T, E) router logits x W^T. Returns weights (T, k), indices (T, k) and the
    unbiased scores (T, E). `bias` (E,) moves the choice only, never the weights.
    """
    T, E = logits.shape
    if score_func not in SCORE_FUNCS:
        raise ValueError(f"score_func must be sigmoid or softmax, not {score_func!r}.")
    if E % n_groups or not 1 <= topk_groups <= n_groups:
        raise ValueError(f"{E} experts cannot be split into {n_groups} groups keeping "
                         f"{topk_groups}.")
    if not 1 <= k <= E // n_groups * topk_groups:
        raise ValueError(f"Cannot choose {k} experts from {E // n_groups * topk_groups} "
                         "allowed ones.")
    scores = logits.float().softmax(-1) if score_func == "softmax" else logits.float().sigmoid()
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
        weights = weights / weights.sum(-1, keepdim=True)
    return weights * route_scale, indices, scores


def expert_counts(indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Tokens routed to each expert, indices (T, k) -> (E,) (a token counts once per slot)."""
    return torch.bincount(indices.flatten(), minlength=n_experts)


def balance_loss(scores: torch.Tensor, indices: torch.Tensor, score_func: str) -> torch.Tensor:
    """Switch-style N * sum_i f_i P_i over a batch (1.0 when perfectly balanced).

    f_i: share of the T*k routing slots that went to expert i (no gradient);
    P_i: mean over tokens of the normalised score s'_i (V3 eq. 17-20 use the same pieces).
    """
    T, E = scores.shape
    f = expert_counts(indices, E).float() / indices.numel()
    p = scores if score_func == "softmax" else scores / scores.sum(-1, keepdim=True)
    return E * (f * p.mean(0)).sum()


def sequence_balance_loss(scores: torch.Tensor, indices: torch.Tensor, score_func: str,
                          seq_len: int) -> torch.Tensor:
    """DeepSeek-V3's sequence-wise balance loss (report eq. 17-20, without alpha): the
    Switch-style N * sum_i f_i P_i computed over the T tokens of each sequence, then
    averaged over sequences. scores (B*T, E), indices (B*T, k), rows in sequence order."""
    n, E = scores.shape
    if seq_len < 1 or n % seq_len:
        raise ValueError(f"{n} tokens do not split into sequences of {seq_len}.")
    k = indices.shape[-1]
    hits = torch.zeros(n, E, device=scores.device).scatter_add_(
        1, indices, torch.ones_like(indices, dtype=torch.float))
    f = hits.view(-1, seq_len, E).sum(1) * E / (k * seq_len)  # eq. 18: N/(K T) * count
    p = scores if score_func == "softmax" else scores / scores.sum(-1, keepdim=True)  # eq. 19
    return (f * p.view(-1, seq_len, E).mean(1)).sum(-1).mean()  # eq. 17, 20; mean over seqs


AUX_SCOPES = ("batch", "sequence")


def expert_capacity(tokens: int, n_experts: int, k: int, factor: float) -> int:
    """Routing slots one expert may take in a batch: ceil(factor * tokens * k / n_experts)
    (GShard §2.2, Switch §2.2; factor 1 is exactly the balanced share, 0 drops all)."""
    if factor < 0 or tokens < 0 or n_experts < 1 or k < 1:
        raise ValueError(f"The capacity factor must be 0 or more (got {factor}) and the "
                         "token, expert and k counts sensible.")
    return math.ceil(factor * tokens * k / n_experts - 1e-9)  # subtle: 1.25*512/16 is 40.0


def capacity_mask(indices: torch.Tensor, n_experts: int, capacity: int) -> torch.Tensor:
    """Which routing slots an expert of capacity `capacity` keeps: indices (T, k) -> (T, k)
    bool, True = kept. Every token's first choice goes before any second choice (GShard's
    Algorithm 1), tokens in batch order within a choice; an expert keeps its first
    `capacity` arrivals and drops the rest."""
    T, k = indices.shape
    slot_major = indices.T.reshape(-1)  # first choices of all tokens, then second choices
    onehot = torch.nn.functional.one_hot(slot_major, n_experts)
    position = (onehot.cumsum(0) * onehot).sum(-1) - 1  # arrival number at its expert
    return (position < capacity).view(k, T).T


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
        self.E, self.k = cfg.n_routed_experts, cfg.experts_per_token
        self.score_func = cfg.score_func
        self.n_groups, self.topk_groups = cfg.n_groups, cfg.topk_groups
        self.route_scale = cfg.route_scale
        extra = getattr(cfg, "extra", None) or {}
        self.temperature = float(extra.get("router_temp", 1.0))
        if self.temperature <= 0:
            raise ValueError("The router temperature must be positive.")
        self.aux_scope = extra.get("aux_scope", "batch")
        if self.aux_scope not in AUX_SCOPES:
            raise ValueError(f"aux_scope must be batch or sequence, not {self.aux_scope!r}.")
        self.capacity_factor = extra.get("capacity_factor")  # may be set on a trained layer
        # Like DeepSeek's Gate: a raw parameter, so TinyLM's std-0.02 re-init leaves it alone.
        self.weight = nn.Parameter(torch.randn(self.E, cfg.d_model)
                                   * float(extra.get("router_std", 0.02)))
        # e_score_correction_bias: FP32, moved by update_bias, never by gradients
        self.register_buffer("bias", torch.zeros(self.E, dtype=torch.float32))
        self.experts = nn.ModuleList(SwiGLU(cfg.d_model, cfg.moe_inter_dim, linear)
                                     for _ in range(self.E))
        n_shared = cfg.n_shared_experts  # DeepSeek: one MLP of width n_shared * moe_inter_dim
        self.shared = (SwiGLU(cfg.d_model, n_shared * cfg.moe_inter_dim, linear)
                       if n_shared else None)
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


def bias_update(bias: torch.Tensor, load: torch.Tensor, gamma: float) -> torch.Tensor:
    """b_i <- b_i + gamma * sign(mean load - load_i); bias, load (E,) -> new bias (E,)."""
    load = load.float()
    return bias + gamma * torch.sign(load.mean() - load)


def max_vio(load) -> float | np.ndarray:
    """MaxVio (loss-free balancing paper, eq. 4): (max_i load_i - mean load) / mean load.

    load (E,) counts or shares; a (steps, E) array gives one value per row.
    """
    load = np.asarray(load, dtype=float)
    mean = load.mean(-1)
    if np.any(mean <= 0):
        raise ValueError("MaxVio needs at least one routed token.")
    return (load.max(-1) - mean) / mean


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
    load = np.asarray(load, dtype=float)
    E = load.shape[-1]
    if n_ranks < 1 or E % n_ranks:
        raise ValueError(f"{E} experts cannot be split evenly over {n_ranks} GPUs.")
    per_rank = load.reshape(n_ranks, E // n_ranks).sum(-1)
    if per_rank.sum() <= 0:
        raise ValueError("The load is empty: no token was routed.")
    mean, worst = per_rank.mean(), per_rank.max()
    return EPView(per_rank, E // n_ranks, float(mean / worst), float(worst / mean))


# ----------------------------------------------------------------------------- training

TRAIN_KEYS = dict(n_experts="n_routed_experts", top_k="experts_per_token",
                  n_shared="n_shared_experts", moe_inter_dim="moe_inter_dim",
                  n_dense_layers="n_dense_layers", n_groups="n_groups",
                  topk_groups="topk_groups", score_func="score_func",
                  route_scale="route_scale", alpha="aux_alpha", gamma="bias_gamma",
                  d_model="d_model", n_layers="n_layers")
RUN_KEYS = ("batch", "lr", "warmup")
ROUTER_KEYS = ("router_std", "router_temp", "aux_scope", "capacity_factor")


@dataclass
class MoERun:
    load: np.ndarray  # (steps, E) share of routed tokens per expert (mean over MoE layers' rows)
    loss: np.ndarray  # (steps,) training loss (LM loss + alpha * aux loss)
    lm_loss: np.ndarray  # (steps,) next-token cross-entropy
    val_loss: float
    val_load: np.ndarray  # (n_moe_layers, E) held-out share of routed tokens per expert
    layer_load: np.ndarray  # (steps, n_moe_layers, E) shares per MoE layer
    bias: np.ndarray | None  # (steps, n_moe_layers, E) routing bias after each step, or None
    seconds: float
    settings: dict = field(default_factory=dict)
    model: nn.Module | None = None  # None for a run cut from a longer one (`truncated`)
    #: held-out (val_loss, val_load, val_kinds) after every CHECKPOINT_EVERY steps
    checkpoints: dict = field(default_factory=dict)
    #: (n_moe_layers, n_kinds, E) held-out routing slots by word kind (`KINDS`) and expert
    val_kinds: np.ndarray | None = None

    def truncated(self, steps: int) -> MoERun:
        """The first `steps` steps of this run: exactly the run `train` would give for
        `steps` (same seed, batches and learning rates), held-out numbers from the
        checkpoint at `steps`; its model is not kept (None)."""
        if steps == len(self.loss):
            return self
        if steps not in self.checkpoints:
            raise ValueError(f"This run has no checkpoint at step {steps}; it has "
                             f"{sorted(self.checkpoints)}.")
        val_loss, val_load, val_kinds = self.checkpoints[steps]
        return MoERun(load=self.load[:steps], loss=self.loss[:steps],
                      lm_loss=self.lm_loss[:steps], val_loss=val_loss, val_load=val_load,
                      val_kinds=val_kinds,
                      layer_load=self.layer_load[:steps],
                      bias=None if self.bias is None else self.bias[:steps],
                      seconds=self.seconds * steps / len(self.loss),
                      settings=dict(self.settings, steps=steps),
                      checkpoints={k: v for k, v in self.checkpoints.items() if k < steps})

    @property
    def max_vio(self) -> np.ndarray:
        """(steps,) MaxVio per batch, averaged over MoE layers."""
        return max_vio(self.layer_load).mean(-1)

    @property
    def val_max_vio(self) -> float:
        """MaxVio over the whole held-out set (MaxVio_global), averaged over MoE layers."""
        return float(max_vio(self.val_load).mean())


def train(balance: str = "none", steps: int | None = None, seed: int = 0,
          progress=None, **sizes) -> MoERun:
    """Train the course's one model (`course.model.TinyLM`) with MoE FFNs on the toy corpus.

    sizes override the "moe" preset: n_experts, top_k, n_shared, moe_inter_dim, score_func,
    router_std, router_temp, alpha, gamma, batch, lr, n_dense_layers, n_groups, ...
    Cached: the same arguments return the same (shared) run. `progress(done, total, text)`
    is called every step of a run that is not cached (see `course.widgets`).
    """
    from course.presets import preset

    settings = preset("moe")
    unknown = set(sizes) - set(TRAIN_KEYS) - set(RUN_KEYS) - set(ROUTER_KEYS)
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(sorted(unknown))} for moe.train.")
    settings.update(sizes)
    settings.setdefault("router_std", 0.02)  # so default and explicit calls share the cache
    if settings.get("aux_scope", "batch") == "batch":
        settings.pop("aux_scope", None)  # the default: default and explicit calls share too
    if settings.get("capacity_factor") is None:
        settings.pop("capacity_factor", None)
    settings["steps"] = int(steps or settings["steps"])
    key = tuple(sorted((k, round(v, 8) if isinstance(v, float) else v)
                       for k, v in settings.items()))
    if (balance, seed, key) not in RUNS:
        longer = _longer_run(balance, seed, key)
        if longer is not None:  # a cached longer run holds this one as its first steps
            return longer.truncated(settings["steps"])
    return RUNS.get((balance, seed, key), lambda: _train(balance, seed, key, progress))


def _longer_run(balance: str, seed: int, key: tuple) -> MoERun | None:
    s = dict(key)
    rest = {k: v for k, v in s.items() if k != "steps"}
    for (b, sd, k), run in RUNS.items():
        other = dict(k)
        if (b, sd) == (balance, seed) and other.pop("steps") > s["steps"] and other == rest \
                and s["steps"] in run.checkpoints:
            return run
    return None


def describe(balance: str, settings: dict) -> str:
    """"training the MoE with γ = 0.01" and the like, for progress lines."""
    scope = "sequence-wise " if settings.get("aux_scope") == "sequence" else ""
    what = {"aux": f" with {scope}aux loss α = {settings.get('alpha', 0.0):g}",
            "bias": f" with bias γ = {settings.get('gamma', 0.0):g}"}.get(balance,
                                                                        " with no balancing")
    return f"training the MoE{what}"


#: Trained runs by (balance, seed, settings); `RUNS.clear()` forgets them.
RUNS = RunCache(64)
#: Held-out numbers are also taken every this many steps, so that a shorter run with the
#: same settings is cut from a cached longer one instead of trained (the widgets' steps
#: sliders move by this much).
CHECKPOINT_EVERY = 30


def _train(balance: str, seed: int, key: tuple, progress=None) -> MoERun:
    from course import data
    from course.train import evaluate, tiny_config, train_lm

    s = dict(key)
    cfg = tiny_config(ffn="moe", balance=balance,
                      extra={k: s[k] for k in ROUTER_KEYS if k in s},
                      **{TRAIN_KEYS[k]: v for k, v in s.items() if k in TRAIN_KEYS})
    held_out = data.split()[1]
    checkpoints = {}

    def checkpoint(done: int, model) -> None:
        if done % CHECKPOINT_EVERY == 0 and done < s["steps"]:
            val = held_out_load(model, held_out, cfg.seq_len)  # no grad, parameters untouched
            checkpoints[done] = (evaluate(model, held_out, cfg.seq_len),
                                 val / val.sum(-1, keepdims=True),
                                 kind_expert_counts(model, held_out, cfg.seq_len))

    start, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # subtle: tiny matmuls run faster on one thread than on two
    try:
        res = train_lm(cfg, steps=s["steps"], batch_size=s.get("batch", 32),
                       lr=s.get("lr", 3e-3), seed=seed, warmup=s.get("warmup", 20),
                       progress=progress, label=describe(balance, s), checkpoint=checkpoint)
    finally:
        torch.set_num_threads(threads)
    layer_load = res.load / res.load.sum(-1, keepdims=True)
    moe = res.model.moe_layers()
    bias = np.stack([np.stack(m.bias_log) for m in moe], 1) if balance == "bias" else None
    val = held_out_load(res.model, held_out, cfg.seq_len)
    return MoERun(load=layer_load.mean(1), loss=res.loss, lm_loss=res.lm_loss,
                  val_loss=res.val_loss, val_load=val / val.sum(-1, keepdims=True),
                  layer_load=layer_load, bias=bias, seconds=time.perf_counter() - start,
                  settings=dict(s, balance=balance, seed=seed), model=res.model,
                  checkpoints=checkpoints,
                  val_kinds=kind_expert_counts(res.model, held_out, cfg.seq_len))


@torch.no_grad()
def held_out_load(model: nn.Module, stream: torch.Tensor, seq_len: int,
                  max_windows: int = 64) -> np.ndarray:
    """Tokens per expert of each MoE layer over held-out windows, (n_moe_layers, E)."""
    n = min(max_windows, len(stream) // seq_len)
    model.eval()
    model(stream[: n * seq_len].view(n, seq_len))
    model.train()
    return np.stack([m.last_load.float().numpy() for m in model.moe_layers()])


# ------------------------------------------------------------- capacity and dropped tokens


@dataclass
class CapacitySweep:
    factors: np.ndarray  # (F,) capacity factors tried
    dropped: np.ndarray  # (F,) share of held-out routing slots dropped
    val_loss: np.ndarray  # (F,) held-out next-token loss with that capacity
    val_loss_no_drop: float  # the same model with no capacity (DeepSeek-V3)
    val_loss_all_dropped: float  # capacity 0: every routed slot dropped (shared experts stay)
    no_drop_factor: float  # smallest factor that drops nothing: max over batches of max/mean
    batch_tokens: int  # tokens per batch the capacity is computed over

    @property
    def loss_share_lost(self) -> np.ndarray:
        """(F,) share of what the routed experts buy (loss with all slots dropped minus loss
        with none dropped) that each capacity gives up."""
        return (self.val_loss - self.val_loss_no_drop) / (self.val_loss_all_dropped
                                                          - self.val_loss_no_drop)


@torch.no_grad()
def capacity_sweep(run, factors, batch: int | None = None) -> CapacitySweep:
    """Held-out share of dropped routing slots and loss against the capacity factor, for a
    trained run (`MoERun` with its model, or a TinyLM). No retraining: the trained router's
    choices are capped after the fact, `batch` held-out windows at a time (default: the
    run's training batch), each MoE layer capped at ceil(factor * tokens * k / E)."""
    from course import data

    model = getattr(run, "model", run)
    if model is None:
        raise ValueError("This run kept no model (it was cut from a longer one): train it "
                         "with moe.train(..., steps=...) to sweep capacities.")
    settings = getattr(run, "settings", {})
    batch = int(batch or settings.get("batch", 16))
    factors = np.asarray(factors, dtype=float)
    if batch < 1 or np.any(factors < 0):
        raise ValueError("Capacity factors must be 0 or more and the batch at least 1 window.")
    seq_len, stream = model.cfg.seq_len, data.split()[1]
    n = min(64, (len(stream) - 1) // seq_len)
    x = stream[: n * seq_len].view(n, seq_len)
    y = stream[1: n * seq_len + 1].view(n, seq_len)
    layers = model.moe_layers()
    model.eval()

    def run_with(factor):
        loss = dropped = slots = 0.0
        worst = 0.0
        for i in range(0, n, batch):
            for m in layers:
                m.capacity_factor = factor
            out = model(x[i: i + batch], y[i: i + batch])
            loss += out.lm_loss.item() * y[i: i + batch].numel()
            dropped += sum(m.last_dropped for m in layers)
            slots += sum(m.last_slots for m in layers)
            for m in layers:  # the factor this batch needed to drop nothing
                load = m.last_load.float()
                worst = max(worst, float(load.max() / load.mean()))
        return loss / y.numel(), dropped / slots, worst

    saved = [m.capacity_factor for m in layers]
    try:
        base, _, need = run_with(None)
        off = run_with(0.0)[0]
        swept = [run_with(float(f))[:2] for f in factors]
    finally:
        for m, c in zip(layers, saved):
            m.capacity_factor = c
        model.train()
    return CapacitySweep(factors, np.array([d for _, d in swept]),
                         np.array([v for v, _ in swept]), base, off, need, batch * seq_len)



# ---------------------------------------------------------------- specialisation by word kind


@lru_cache(maxsize=1)
def kinds() -> tuple[str, ...]:
    """The word kinds of the toy corpus (assets/corpus/word_kinds.json, via
    `course.mtp.token_type`), plus "end of sentence" and "function word"."""
    from course.mtp import _corpus_lists

    return (*_corpus_lists(), "end of sentence", "function word")


@lru_cache(maxsize=1)
def _kind_of_token() -> torch.Tensor:
    from course.data import tokenizer
    from course.mtp import token_type

    index = {k: i for i, k in enumerate(kinds())}
    return torch.tensor([index[token_type(w)] for w in tokenizer().words])


@torch.no_grad()
def kind_expert_counts(model: nn.Module, stream: torch.Tensor, seq_len: int,
                       max_windows: int = 64) -> np.ndarray:
    """Routing slots by the kind of the token at that position and the expert chosen, over
    held-out windows: (n_moe_layers, n_kinds, E)."""
    n = min(max_windows, len(stream) // seq_len)
    idx = stream[: n * seq_len].view(n, seq_len)
    model.eval()
    model(idx)
    model.train()
    kind = _kind_of_token()[idx.flatten()]
    out = []
    for m in model.moe_layers():
        chosen = m.last_indices  # (n*seq_len, k), same token order as idx.flatten()
        joint = torch.zeros(len(kinds()), m.E)
        joint.index_put_((kind[:, None].expand_as(chosen).flatten(), chosen.flatten()),
                         torch.ones(chosen.numel()), accumulate=True)
        out.append(joint.numpy())
    return np.stack(out)


def mutual_information(joint) -> float:
    """I(kind; expert) in bits from a (kinds, experts) table of counts:
    sum p(k, e) log2 p(k, e) / (p(k) p(e)). 0 when the expert says nothing about the kind."""
    p = np.asarray(joint, dtype=float)
    if p.ndim != 2 or p.sum() <= 0 or np.any(p < 0):
        raise ValueError("mutual_information needs a 2-D table of non-negative counts.")
    p = p / p.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / outer[nz])).sum())


@dataclass
class Specialisation:
    methods: list  # labels
    mi: np.ndarray  # (methods, seeds) I(kind; expert) in bits, first MoE layer
    max_vio: np.ndarray  # (methods, seeds) held-out MaxVio
    val_loss: np.ndarray  # (methods, seeds)
    joint: dict  # label -> (kinds, E) counts of the first seed, for a heat map
    seeds: tuple
    steps: int


def specialisation(methods: dict, seeds=(0, 1, 2), steps: int | None = None,
                   progress=None, **router) -> Specialisation:
    """Train each {label: (balance, settings)} at each seed (cached runs) and measure on
    held-out text the mutual information between a token's word kind and its expert.
    `progress(done, total, text)` counts the runs."""
    labels = list(methods)
    total, done = len(labels) * len(seeds), 0
    mi, vio, loss = (np.zeros((len(labels), len(seeds))) for _ in range(3))
    joint = {}
    for a, label in enumerate(labels):
        balance, kw = methods[label]
        for b, seed in enumerate(seeds):
            if progress is not None:
                progress(done, total, f"{label}, seed {seed}")
            run = train(balance, steps=steps, seed=seed, **kw, **router)
            mi[a, b] = mutual_information(run.val_kinds[0])
            vio[a, b], loss[a, b] = run.val_max_vio, run.val_loss
            joint.setdefault(label, run.val_kinds[0])
            done += 1
    if progress is not None:
        progress(total, total, "done")
    return Specialisation(labels, mi, vio, loss, joint, tuple(seeds),
                          int(steps or dict(run.settings)["steps"]))


# ------------------------------------------------------------------ one layer at full width


@dataclass
class LayerTiming:
    tokens: int
    router_seconds: float  # gate alone (scores, groups, top-k), median of repeats
    layer_seconds: float  # whole MoE layer forward, median of repeats
    load: np.ndarray  # (E,) tokens per expert in the timed batch
    device: str
    dtype: str

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.layer_seconds


@torch.no_grad()
def time_layer(size: str | None = None, repeats: int = 3, seed: int = 0) -> LayerTiming:
    """Time DeepSeek-V3's router and one MoE layer forward over a batch of tokens.

    Sizes from the "moe_layer" preset: realistic is V3 (width 7168, 256 experts, 8 active,
    8 groups keeping 4, expert width 2048, 1 shared expert) in BF16 on CUDA; without a
    GPU the toy sizes run on the CPU.
    """
    from types import SimpleNamespace

    from course import device as dev
    from course.configs import load_config
    from course.presets import preset

    size = size or dev.size()
    where = dev.device() if size == "realistic" else torch.device("cpu")
    if where.type != "cuda":
        size = "toy"  # the full layer is 11.3 B parameters: GPU only
    p = preset("moe_layer", size)
    dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
    cfg = SimpleNamespace(d_model=p["d_model"], n_routed_experts=p["n_experts"],
                          experts_per_token=p["top_k"], moe_inter_dim=p["moe_inter_dim"],
                          n_shared_experts=1, n_groups=p["n_groups"],
                          topk_groups=p["topk_groups"], score_func="sigmoid",
                          route_scale=load_config("deepseek-v3").routed_scaling_factor,
                          extra=dict(router_std=0.006))  # V3 init std (report 4.2)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(where):
            layer = MoE(cfg).eval()
            x = torch.randn(p["tokens"], p["d_model"])
    finally:
        torch.set_default_dtype(default)
    router = _median_seconds(lambda: layer.gate(x), repeats, where)
    full = _median_seconds(lambda: layer(x), repeats, where)
    return LayerTiming(p["tokens"], router, full, layer.last_load.numpy(), str(where),
                       str(dtype).replace("torch.", ""))


def _median_seconds(fn, repeats: int, where: torch.device) -> float:
    fn()  # warm-up (kernel selection, allocator)
    times = []
    for _ in range(max(1, repeats)):
        if where.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if where.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def word_router_floor(token_counts, n_experts: int, k: int) -> float:
    """MaxVio of a router that looks only at the word: all copies of the most frequent
    word land on the same k experts, so one expert gets at least p_max / k of the slots.

    token_counts (V,) occurrences of each word. Returns max(0, E * p_max / k - 1).
    """
    counts = np.asarray(token_counts, dtype=float)
    return max(0.0, n_experts * counts.max() / counts.sum() / k - 1.0)
