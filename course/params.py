"""How many parameters a model has, derived from a config's shapes (no lookup tables).

`param_count` covers the three families `course.configs` reads: DeepSeek (MLA + MoE with
dense first layers and shared experts), Mixtral (GQA + MoE in every layer) and Llama
(GQA/MHA, dense). Linear layers have no biases; every FFN is SwiGLU (three matrices).
Shapes follow DeepSeek-V3's `inference/model.py`; the worked DeepSeek-V3 and Mixtral sums
follow DeepSeek-V3's `inference/configs/config_671B.json` and
Mixtral's Hugging Face `MixtralConfig`. `course.memory` turns these counts into bytes and re-exports
the names below; `course.kvcache` uses them without depending on `course.memory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from course import validate
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
    cfg = load_config(cfg)
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
    return 3 * validate.non_negative_int("d", d) * validate.non_negative_int("inter", inter)


def router_params(cfg: ModelConfig) -> int:
    """The gate of one MoE layer; DeepSeek-V3's sigmoid router adds one bias per expert
    (the aux-loss-free balancing bias, `e_score_correction_bias`)."""
    cfg = load_config(cfg)
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
    cfg = load_config(cfg)
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
    """Numbers stored in DeepSeek-V3's Hugging Face checkpoint (`README_WEIGHTS.md` of
    deepseek-ai/DeepSeek-V3): main model,
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
