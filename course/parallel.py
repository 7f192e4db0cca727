"""Parallel layouts: what each GPU holds and what it sends per training step.

A `Layout` multiplies out to the world size as dp x tp x pp (data, tensor, pipeline).
Expert parallelism (EP) is carved out of the data-parallel ranks: the `ep` ranks of an EP
group hold different experts, so each expert has dp / ep copies while each dense weight
has dp copies. Sequence parallelism (`sp`) also splits, over the TP ranks, the norm and
residual activations that TP alone replicates. ZeRO stage 1 shards the optimizer states
(FP32 master + moments) over the data-parallel copies, stage 2 also the gradients, stage
3 also the weights (Rajbhandari et al. 2020).

Bytes are counted per GPU as a ring algorithm sends them (Patarasuk & Yuan 2009): an
all-reduce of S bytes over n ranks sends 2 (n-1)/n S per rank, a reduce-scatter or an
all-gather (n-1)/n S (`course.parallel_run` checks these against a real ring's sends).
Expert-parallel all-to-all bytes come from the course's one byte model,
`course.expert_traffic` (FP8 dispatch, BF16 combine, one copy per remote node over IB,
forward and backward), shared with notebook 06. DeepSeek-V3's real layout
(report 3.2): 2048 H800, PP16, EP64 across 8 nodes, ZeRO-1 DP, no TP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from course import validate as check
from course.activations import activation_bytes
from course.configs import load_config
from course.expert_traffic import TRAINING_PASSES, ep_copies, ep_traffic
from course.memory import OPTIMIZERS, param_count, recipe
from course.ring import ring_bytes


@dataclass(frozen=True)
class Layout:
    dp: int = 1
    tp: int = 1
    pp: int = 1
    ep: int = 1
    sp: bool = False
    zero: int = 0

    def __post_init__(self):
        # Whole numbers where they enter: Layout(dp=2.5) or dp="2" get a sentence, not a
        # misleading divisibility message later; 8.0 is stored as 8.
        for name in ("dp", "tp", "pp", "ep"):
            object.__setattr__(self, name, check.positive_int(name, getattr(self, name)))
        if self.sp not in (True, False):
            raise ValueError(f"sp (sequence parallelism) must be True or False, not {self.sp!r}.")
        object.__setattr__(self, "sp", bool(self.sp))
        object.__setattr__(self, "zero", check.integer("zero (the ZeRO stage)", self.zero, 0, 3))

    @property
    def world(self) -> int:
        return self.dp * self.tp * self.pp


#: DeepSeek-V3 report 3.2: 16-way PP, 64-way EP over 8 nodes, ZeRO-1 DP, no TP, 2048 GPUs.
DEEPSEEK_V3_LAYOUT = Layout(dp=128, tp=1, pp=16, ep=64, zero=1)


def validate(cfg, layout: Layout, world_size: int | None = None) -> None:
    """Raise ValueError with the reason when `layout` cannot run `cfg`."""
    cfg = load_config(cfg)
    if not isinstance(layout, Layout):  # a Layout checks its own numbers when it is made
        raise ValueError(f"layout must be a parallel.Layout, not {layout!r:.40}.")
    world_size = check.optional(check.positive_int, "world_size", world_size)
    if world_size is not None and world_size != layout.world:
        raise ValueError(f"DP × TP × PP = {layout.dp} × {layout.tp} × {layout.pp} = "
                         f"{layout.world}, not the {world_size} GPUs of the cluster.")
    if layout.pp > cfg.num_layers:
        raise ValueError(f"PP {layout.pp} is more stages than the {cfg.num_layers} layers.")
    if cfg.num_heads % layout.tp:
        raise ValueError(f"TP {layout.tp} does not divide the {cfg.num_heads} heads.")
    if layout.ep > 1 and not cfg.is_moe:
        raise ValueError("EP needs a mixture-of-experts model; this one is dense.")
    if cfg.is_moe and cfg.n_routed_experts % layout.ep:
        raise ValueError(f"EP {layout.ep} does not divide the {cfg.n_routed_experts} experts.")
    if layout.dp % layout.ep:
        raise ValueError(f"EP {layout.ep} must divide DP {layout.dp}: EP groups are made "
                         "of data-parallel ranks.")


def replicas(cfg, layout: Layout) -> dict:
    """How many copies of each weight exist and how the model is cut."""
    cfg = load_config(cfg)
    validate(cfg, layout)
    return {
        "gpus": layout.world,
        "layers_per_stage": cfg.num_layers / layout.pp,
        "dense_copies": layout.dp,  # of each attention/dense/shared-expert weight
        "expert_copies": layout.dp // layout.ep if cfg.is_moe else 0,
        "experts_per_gpu": cfg.n_routed_experts // layout.ep if cfg.is_moe else 0,
        "ep_groups": layout.world // layout.ep if cfg.is_moe else 0,
    }


def _local_params(cfg, layout: Layout) -> tuple[float, float]:
    """(dense, expert) parameters one GPU holds before any ZeRO sharding."""
    pc = param_count(cfg)
    split = layout.pp * layout.tp
    return (pc.total - pc.expert_params) / split, pc.expert_params / (split * layout.ep)


def per_gpu_memory(cfg, layout: Layout, recipe_name: str = "bf16-mixed",
                   optimizer: str = "adamw", seq_len: int = 4096, micro_batch: int = 1,
                   recompute: str = "none", microbatches: int = 1) -> dict:
    """Bytes one GPU holds: weights, gradients, optimizer states and activations.

    Activations: with 1F1B the first stage keeps min(pp, microbatches) micro-batches of
    its layers in flight (Narayanan et al. 2021).
    """
    cfg = load_config(cfg)
    validate(cfg, layout)
    check.choice("optimizer", optimizer, OPTIMIZERS)
    seq_len, micro_batch, microbatches = _token_sizes(seq_len, micro_batch, microbatches)
    r = recipe(recipe_name)
    dense, expert = _local_params(cfg, layout)
    groups = ((dense, layout.dp), (expert, layout.dp // layout.ep))
    optim_bytes = r.master + OPTIMIZERS[optimizer] * r.moment

    def held(stage: int, per_param: float) -> float:
        return sum(n * per_param / (copies if layout.zero >= stage else 1)
                   for n, copies in groups)

    acts = activation_bytes(cfg, seq_len, micro_batch, recompute, r.activations,
                            tp=layout.tp, sp=layout.sp)
    return {
        "weights": held(3, r.weights),
        "gradients": held(2, r.grads),
        "optimizer": held(1, optim_bytes),
        "activations": acts / layout.pp * min(layout.pp, microbatches),
    }


def _token_sizes(seq_len, micro_batch, microbatches) -> tuple[int, int, int]:
    return (check.positive_int("seq_len", seq_len),
            check.positive_int("micro_batch", micro_batch),
            check.positive_int("microbatches", microbatches))


def dp_step_bytes(n_params: int, world: int, strategy: str, grad_bytes: int = 4,
                  weight_bytes: int = 4) -> dict:
    """Bytes each rank sends per step to sync `n_params` params: DP all-reduces the
    gradients; ZeRO-1 reduce-scatters them and all-gathers the updated weights (both on a
    flat buffer padded to a multiple of `world`)."""
    n_params, world = check.non_negative("n_params", n_params), check.positive_int("world", world)
    grad_bytes = check.non_negative("grad_bytes", grad_bytes)
    weight_bytes = check.non_negative("weight_bytes", weight_bytes)
    check.choice("strategy", strategy, ("dp", "zero1"))
    if strategy == "dp":
        return {"all_reduce": ring_bytes("all_reduce", n_params * grad_bytes, world)}
    padded = math.ceil(n_params / world) * world
    return {"reduce_scatter": ring_bytes("reduce_scatter", padded * grad_bytes, world),
            "all_gather": ring_bytes("all_gather", padded * weight_bytes, world)}


def comm_per_step(cfg, layout: Layout, recipe_name: str = "bf16-mixed", seq_len: int = 4096,
                  micro_batch: int = 1, microbatches: int = 1) -> dict:
    """Bytes one GPU sends per training step, by parallelism and collective."""
    cfg = load_config(cfg)
    validate(cfg, layout)
    seq_len, micro_batch, microbatches = _token_sizes(seq_len, micro_batch, microbatches)
    r = recipe(recipe_name)
    dense, expert = _local_params(cfg, layout)
    out: dict[str, float] = {}
    for part, n, copies in (("dense", dense, layout.dp), ("experts", expert,
                                                          layout.dp // layout.ep)):
        if copies > 1 and n:
            if layout.zero == 0:
                out[f"DP all-reduce ({part} grads)"] = ring_bytes("all_reduce", n * r.grads,
                                                                   copies)
            else:
                out[f"DP reduce-scatter ({part} grads)"] = ring_bytes(
                    "reduce_scatter", n * r.grads, copies)
                gathers = 2 * microbatches if layout.zero == 3 else 1  # ZeRO-3: fwd + bwd
                out[f"DP all-gather ({part} weights)"] = gathers * ring_bytes(
                    "all_gather", n * r.weights, copies)
    act = seq_len * micro_batch * cfg.hidden_size * r.activations  # one (T, d) tensor
    layers = cfg.num_layers / layout.pp
    if layout.tp > 1:
        name = "TP reduce-scatter + all-gather" if layout.sp else "TP all-reduce"
        per_layer = sum(tp_all_reduces_per_layer().values())
        out[name] = per_layer * layers * microbatches * ring_bytes("all_reduce", act, layout.tp)
    if layout.pp > 1:  # activations forward, their gradients backward
        out["PP send/recv"] = 2 * microbatches * act
    if layout.ep > 1:
        out.update(ep_step_bytes(cfg, layout, r, seq_len * micro_batch * microbatches))
    return out


def tp_all_reduces_per_layer(blocks: int = 2) -> dict:
    """All-reduces of one (tokens, d) activation per transformer layer under Megatron tensor
    parallelism (Shoeybi et al. 2019, section 3): each block (attention, MLP) ends with a
    row-parallel matmul whose partial outputs are summed forward (operator g), and starts
    with a column-parallel one whose input gradients are summed backward (operator f)."""
    blocks = check.positive_int("blocks", blocks)
    return {"forward": blocks, "backward": blocks}


def ep_step_bytes(cfg, layout: Layout, recipe_obj, tokens: int) -> dict:
    """Expert-parallel bytes one GPU sends per step for `tokens` tokens (over all its
    micro-batches), with the course's one byte model (`course.expert_traffic`): FP8
    dispatch (BF16/FP32 when the recipe keeps activations wider), combine in at least
    BF16, forward and backward, one copy per remote node over IB when the EP group spans
    nodes, with the model's own group-limited routing."""
    link, copies = ep_copies(cfg.n_routed_experts, cfg.experts_per_token, layout.ep,
                             n_group=cfg.n_group, topk_group=cfg.topk_group)
    value = int(recipe_obj.activations)
    per_token = ep_traffic(copies, cfg.hidden_size, value, max(2, value)).total_bytes
    moe_layers = cfg.n_moe_layers / layout.pp
    return {f"EP all-to-all ({link})": TRAINING_PASSES * moe_layers * tokens * per_token}


def ep_all_to_all_bytes(experts: list[list[int]], experts_per_rank: int,
                        row_bytes: int) -> list[dict]:
    """Bytes each rank sends in an EP dispatch and combine, given the expert chosen by
    each of its tokens (`experts[rank]`, top-1): tokens leave for other ranks' experts,
    and the results for other ranks' tokens go back."""
    experts_per_rank = check.positive_int("experts_per_rank", experts_per_rank)
    row_bytes = check.non_negative("row_bytes", row_bytes)
    experts = _routing(experts)
    world = len(experts)
    dest = [[e // experts_per_rank for e in toks] for toks in experts]
    if any(d >= world for toks in dest for d in toks):
        raise ValueError("An expert index is beyond the last rank's experts.")
    out = []
    for r in range(world):
        leaving = sum(d != r for d in dest[r])
        arriving = sum(d == r for s in range(world) if s != r for d in dest[s])
        out.append({"dispatch": leaving * row_bytes, "combine": arriving * row_bytes})
    return out


def _routing(experts) -> list[list[int]]:
    """experts[rank] = the expert each of its tokens chose, as lists of whole numbers ≥ 0
    (lists, tuples or arrays accepted)."""
    def rows(x):
        x = x.tolist() if hasattr(x, "tolist") else x
        if not isinstance(x, (list, tuple)):
            raise ValueError("experts must be a list with, for each rank, the list of experts "
                             f"its tokens chose; got {experts!r:.40}.")
        return x
    return [[check.non_negative_int("an expert index", e) for e in rows(toks)]
            for toks in rows(experts)]


# ------------------------------------------------------------ the global batch

#: DeepSeek-V3 report 4.2: the batch grows from 3,072 to 15,360 sequences over the first
#: 469B tokens, then stays at 15,360; sequences are 4K tokens in pre-training (14.8T tokens).
V3_BATCH = dict(start=3072, end=15360, ramp_tokens=469e9, seq_len=4096, tokens=14.8e12)
#: The report does not give DeepSeek-V3's micro-batch size; the course assumes one 4K
#: sequence per micro-batch (the smallest whole-sequence unit).
V3_MICRO_BATCH = 1


def global_batch(micro_batch: int, accumulation: int, dp: int) -> int:
    """Sequences per optimizer step: micro-batch x accumulation steps x data-parallel
    copies. (With pipeline parallelism, the micro-batches a pipeline runs per step are the
    accumulation steps.)"""
    micro_batch = check.positive_int("micro_batch", micro_batch)
    accumulation = check.positive_int("accumulation", accumulation)
    return micro_batch * accumulation * check.positive_int("dp", dp)


def accumulation_steps(global_sequences: int, micro_batch: int, dp: int) -> int:
    """Micro-batches each data-parallel copy (each pipeline) runs per optimizer step."""
    global_sequences = check.positive_int("global_sequences (the global batch)",
                                          global_sequences)
    micro_batch, dp = check.positive_int("micro_batch", micro_batch), check.positive_int("dp", dp)
    per_copy, left = divmod(global_sequences, micro_batch * dp)
    if left or not per_copy:
        raise ValueError(f"A global batch of {global_sequences:,} sequences does not split "
                         f"into micro-batches of {micro_batch} over {dp} data-parallel "
                         f"copies ({global_sequences / (micro_batch * dp):g} each).")
    return per_copy


def v3_batch(tokens_seen: float) -> float:
    """DeepSeek-V3's batch (sequences) after `tokens_seen` training tokens. The report
    gives only the end points; the course assumes a linear ramp in tokens."""
    b = V3_BATCH
    tokens_seen = check.non_negative("tokens_seen", tokens_seen)
    if tokens_seen >= b["ramp_tokens"]:
        return float(b["end"])
    return b["start"] + (b["end"] - b["start"]) * tokens_seen / b["ramp_tokens"]


def v3_steps() -> dict:
    """Optimizer steps of DeepSeek-V3's pre-training: during the (assumed linear) ramp,
    steps = integral of d tokens / (batch(tokens) x seq_len), in closed form; after it,
    remaining tokens / (15,360 x 4,096)."""
    b = V3_BATCH
    slope = (b["end"] - b["start"]) / b["ramp_tokens"]
    ramp = math.log(b["end"] / b["start"]) / (slope * b["seq_len"])
    after = (b["tokens"] - b["ramp_tokens"]) / (b["end"] * b["seq_len"])
    return {"ramp": ramp, "after": after, "total": ramp + after}


def v3_microbatches(sequences: int | None = None, layout: Layout = DEEPSEEK_V3_LAYOUT,
                    micro_batch: int = V3_MICRO_BATCH) -> int:
    """Micro-batches per pipeline per step for DeepSeek-V3 (full batch by default):
    15,360 / (128 DP x 1) = 120."""
    if not isinstance(layout, Layout):
        raise ValueError(f"layout must be a parallel.Layout, not {layout!r:.40}.")
    return accumulation_steps(V3_BATCH["end"] if sequences is None else sequences,
                              micro_batch, layout.dp)
