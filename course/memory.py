"""How many parameters a model has, and how many bytes it needs to train or serve.

`param_count` derives the count from a config's shapes (no lookup tables), for the three
families `course.configs` reads: DeepSeek (MLA + MoE with dense first layers and shared
experts), Mixtral (GQA + MoE in every layer) and Llama (GQA/MHA, dense). Linear layers
have no biases; every FFN is SwiGLU (three matrices). Shapes follow DeepSeek-V3's
`inference/model.py`; the worked DeepSeek-V3 and Mixtral sums are in FACTS.md 1.3 and 9.

Training memory per replica = weights + gradients + optimizer states + activations, for a
precision recipe (`RECIPES`); activations live in `course.activations`. Inference memory =
weights + KV cache (`course.kvcache`). Left out: framework buffers, fragmentation,
communication buffers and the CUDA context (a few GB on a real GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from course.configs import ModelConfig, load_config

#: FP8 weights are scaled per 128 x 128 block (DeepSeek-V3 report 3.3.2; README_WEIGHTS).
FP8_BLOCK = 128


@dataclass(frozen=True)
class ParamCount:
    """Parameters of a model: all of them, those one token uses, and a breakdown."""

    total: int
    active: int  # used per token, input embedding included (DeepSeek's "37B" convention)
    by_part: dict = field(default_factory=dict)  # part -> total params
    active_by_part: dict = field(default_factory=dict)  # part -> params one token uses

    @property
    def active_without_embedding(self) -> int:
        """Active params without the input embedding (a lookup, not a matmul)."""
        return self.active - self.active_by_part.get("embedding", 0)

    @property
    def expert_params(self) -> int:
        """Routed-expert params: the part expert parallelism splits."""
        return self.by_part.get("routed_experts", 0)


def attention_params(cfg: ModelConfig) -> int:
    """Parameters of one attention block (projections and MLA's two inner norms)."""
    d, h = cfg.hidden_size, cfg.num_heads
    if cfg.attention_kind == "mla":
        qk_dim = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        if cfg.q_lora_rank:  # wq_a, q_norm, wq_b (W^DQ, then W^UQ with W^QR)
            q = d * cfg.q_lora_rank + cfg.q_lora_rank + cfg.q_lora_rank * h * qk_dim
        else:
            q = d * h * qk_dim
        # wkv_a (W^DKV with the shared RoPE key W^KR), kv_norm, wkv_b (W^UK with W^UV)
        kv = (d * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) + cfg.kv_lora_rank
              + cfg.kv_lora_rank * h * (cfg.qk_nope_head_dim + cfg.v_head_dim))
        return q + kv + h * cfg.v_head_dim * d  # + wo
    q_and_o = 2 * d * h * cfg.head_dim
    return q_and_o + 2 * d * cfg.num_kv_heads * cfg.head_dim


def ffn_params(d: int, inter: int) -> int:
    """One SwiGLU FFN: gate, up (d -> inter) and down (inter -> d)."""
    return 3 * d * inter


def router_params(cfg: ModelConfig) -> int:
    """The gate of one MoE layer; DeepSeek-V3's sigmoid router adds one bias per expert
    (the aux-loss-free balancing bias, `e_score_correction_bias`)."""
    bias = cfg.n_routed_experts if cfg.scoring_func == "sigmoid" else 0
    return cfg.n_routed_experts * cfg.hidden_size + bias


def _layer_parts(cfg: ModelConfig) -> tuple[dict, dict]:
    """Total and per-token params of all transformer layers, by part."""
    d, n_moe = cfg.hidden_size, cfg.n_moe_layers
    expert = ffn_params(d, cfg.moe_intermediate_size)
    total = {
        "attention": cfg.num_layers * attention_params(cfg),
        "dense_mlp": cfg.n_dense_layers * ffn_params(d, cfg.intermediate_size),
        "routed_experts": n_moe * cfg.n_routed_experts * expert,
        "shared_experts": n_moe * cfg.n_shared_experts * expert,
        "router": n_moe * router_params(cfg) if cfg.is_moe else 0,
        "norms": cfg.num_layers * 2 * d + d,  # attn_norm, ffn_norm per layer; final norm
    }
    active = dict(total, routed_experts=n_moe * cfg.experts_per_token * expert)
    return total, active


def mtp_params(cfg: ModelConfig) -> int:
    """Unique params of the MTP modules: per depth, enorm + hnorm, eh_proj (d x 2d), one
    MoE block and shared_head.norm; embedding and output head are shared (report 2.2)."""
    d = cfg.hidden_size
    ffn = (cfg.n_routed_experts + cfg.n_shared_experts) * ffn_params(d, cfg.moe_intermediate_size)
    block = attention_params(cfg) + ffn + router_params(cfg) + 2 * d
    return cfg.mtp_depth * (2 * d + 2 * d * d + block + d)


def param_count(cfg, include_mtp: bool = False) -> ParamCount:
    """Count parameters from the config's shapes.

    >>> param_count("deepseek-v3").total
    671026419200
    """
    cfg = load_config(cfg)
    total, active = _layer_parts(cfg)
    emb = cfg.vocab_size * cfg.hidden_size
    for parts in (total, active):
        parts["embedding"] = emb
        parts["output_head"] = 0 if cfg.tie_word_embeddings else emb
    if include_mtp:
        total["mtp"] = mtp_params(cfg)
        # One MTP depth runs per token: its block's active part (8 routed of 256).
        routed = (cfg.n_routed_experts - cfg.experts_per_token) * ffn_params(
            cfg.hidden_size, cfg.moe_intermediate_size)
        active["mtp"] = total["mtp"] - cfg.mtp_depth * routed
    return ParamCount(sum(total.values()), sum(active.values()), total, active)


def _fp8_scales(out_dim: int, in_dim: int) -> int:
    return math.ceil(out_dim / FP8_BLOCK) * math.ceil(in_dim / FP8_BLOCK)


def _fp8_linear_shapes(cfg: ModelConfig) -> tuple[list, list, list]:
    """(out, in) of the FP8 linears of one attention block, one dense FFN, one expert."""
    d, h = cfg.hidden_size, cfg.num_heads
    qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
    attn = [(cfg.q_lora_rank, d), (h * qk, cfg.q_lora_rank),
            (cfg.kv_lora_rank + cfg.qk_rope_head_dim, d),
            (h * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank),
            (d, h * cfg.v_head_dim)]
    i, m = cfg.intermediate_size, cfg.moe_intermediate_size
    return attn, [(i, d), (d, i), (i, d)], [(m, d), (d, m), (m, d)]


def hf_checkpoint_params(cfg="deepseek-v3") -> dict:
    """Numbers stored in DeepSeek-V3's Hugging Face checkpoint (FACTS.md 1.3): main model,
    MTP modules, their duplicated embedding + head, and FP32 `weight_scale_inv` per
    128 x 128 block of every FP8 linear (attention, dense FFN, experts)."""
    cfg = load_config(cfg)
    if cfg.attention_kind != "mla" or not cfg.q_lora_rank or not cfg.is_moe:
        raise ValueError("hf_checkpoint_params follows DeepSeek-V3's FP8 checkpoint layout.")
    attn, dense, expert = (sum(_fp8_scales(o, i) for o, i in s) for s in _fp8_linear_shapes(cfg))
    experts = (cfg.n_routed_experts + cfg.n_shared_experts) * expert
    main_scales = cfg.num_layers * attn + cfg.n_dense_layers * dense + cfg.n_moe_layers * experts
    mtp_scales = cfg.mtp_depth * (attn + experts)
    parts = {
        "main": param_count(cfg).total,
        "mtp_unique": mtp_params(cfg),
        "mtp_embedding_and_head_copies": cfg.mtp_depth * 2 * cfg.vocab_size * cfg.hidden_size,
        "scales": main_scales + mtp_scales,
    }
    parts["total"] = sum(parts.values())
    return parts


# ----------------------------------------------------------------------------- bytes


@dataclass(frozen=True)
class Recipe:
    """Bytes per parameter kept by a precision recipe (activations: bytes per element)."""

    name: str
    weights: float  # the copy the matmuls read
    master: float  # a higher-precision copy the optimizer updates (0: none)
    grads: float
    moment: float  # each optimizer moment (Adam keeps two)
    activations: float


RECIPES = {
    "fp32": Recipe("FP32", 4, 0, 4, 4, 4),
    # Mixed precision as in the ZeRO paper: 2 + 2 + (4 + 4 + 4) = 16 bytes per param.
    "bf16-mixed": Recipe("BF16 mixed (FP32 master + moments)", 2, 4, 2, 4, 2),
    # DeepSeek-V3 report 3.3.3: FP8 GEMMs, FP32 master weights and gradients, BF16 AdamW
    # moments; activations cached in FP8 (a few, e.g. the attention output, in BF16/E5M6).
    "deepseek-fp8": Recipe("DeepSeek-V3 FP8 (FP32 master + grads, BF16 moments)", 1, 4, 4, 2, 1),
    # What the essay's 5,120 GB needs: everything in BF16, no master copy.
    "bf16-pure": Recipe("pure BF16 (no master copy)", 2, 0, 2, 2, 2),
}

#: Optimizer -> number of per-parameter moments it keeps.
OPTIMIZERS = {"adamw": 2, "sgd-momentum": 1, "sgd": 0}

#: The GPU the course sizes replicas against (H100/H800: 80 GB, decimal as in datasheets).
GPU_GB = 80


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown precision recipe {name!r}; known: {', '.join(RECIPES)}.")
    return RECIPES[name]


def state_bytes(n_params: int, recipe_name: str = "bf16-mixed",
                optimizer: str = "adamw") -> dict:
    """Bytes of weights, gradients and optimizer states (master copy + moments) for
    `n_params` parameters; every parameter has a gradient, routed experts included."""
    if n_params < 0:
        raise ValueError("The number of parameters must be ≥ 0.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}.")
    r = recipe(recipe_name)
    return {
        "weights": n_params * r.weights,
        "gradients": n_params * r.grads,
        "optimizer": n_params * (r.master + OPTIMIZERS[optimizer] * r.moment),
    }


def training_memory(cfg, recipe_name: str = "bf16-mixed", optimizer: str = "adamw",
                    seq_len: int = 4096, micro_batch: int = 1,
                    recompute: str = "none") -> dict:
    """Bytes one model replica needs to train: weights, gradients, optimizer, activations.

    Activations are for one micro-batch of `micro_batch` sequences of `seq_len` tokens.
    """
    from course.activations import activation_bytes

    cfg = load_config(cfg)
    out = state_bytes(param_count(cfg).total, recipe_name, optimizer)
    out["activations"] = activation_bytes(cfg, seq_len, micro_batch, recompute,
                                          recipe(recipe_name).activations)
    return out


def inference_memory(cfg, weight_bytes: float = 2, seq_len: int = 4096, batch: int = 1,
                     kv_bytes: float = 2) -> dict:
    """Bytes to serve: the weights at `weight_bytes` per param plus the KV cache."""
    from course.kvcache import kv_cache_bytes

    cfg = load_config(cfg)
    if weight_bytes <= 0:
        raise ValueError("weight_bytes must be positive.")
    return {"weights": param_count(cfg).total * weight_bytes,
            "kv_cache": kv_cache_bytes(cfg, seq_len, batch, kv_bytes)}


def gpus_needed(n_bytes: float, gpu_gb: float = GPU_GB) -> int:
    """How many GPUs of `gpu_gb` decimal GB hold `n_bytes` (memory only, no headroom)."""
    if gpu_gb <= 0:
        raise ValueError("GPU memory must be positive.")
    return max(1, math.ceil(n_bytes / (gpu_gb * 1e9)))


def custom_config(hidden_size: int = 4096, num_layers: int = 32, n_experts: int = 0,
                  top_k: int = 2, vocab_size: int = 128256) -> ModelConfig:
    """A Llama-style model (GQA with 8 KV heads, 128-wide heads, FFN 3.5 d), or a
    Mixtral-style MoE when `n_experts` > 0, for the calculators' custom sliders."""
    if hidden_size % 128 or hidden_size < 128:
        raise ValueError("hidden size must be a positive multiple of the 128-wide heads.")
    if n_experts and not 1 <= top_k <= n_experts:
        raise ValueError(f"top-k {top_k} must be between 1 and the {n_experts} experts.")
    raw = dict(model_type="mixtral" if n_experts else "llama", hidden_size=hidden_size,
               num_hidden_layers=num_layers, num_attention_heads=hidden_size // 128,
               num_key_value_heads=min(8, hidden_size // 128),
               intermediate_size=hidden_size * 7 // 2, vocab_size=vocab_size, name="custom")
    if n_experts:
        raw.update(num_local_experts=n_experts, num_experts_per_tok=top_k)
    return load_config(raw)
