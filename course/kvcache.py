"""How many bytes the KV cache holds: per token, per sequence, and how much fits on a GPU.

Per token and layer the cache holds (DeepSeek-V2 paper, 2.1.4, Table 1):
    MHA  2 * n_h * d_h          GQA  2 * n_g * d_h
    MQA  2 * d_h                MLA  d_c + d_h^R  (the latent and ONE RoPE key shared by all heads)
For DeepSeek-V3: 512 + 64 = 576 elements per layer, 61 layers, BF16 -> 70,272 bytes per token.
The MTP module is not counted: it is dropped (or run as a draft) at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course import validate
from course.configs import ModelConfig, gpu, load_config
from course.params import ffn_params, param_count


def kv_elements_per_token_per_layer(cfg: ModelConfig) -> int:
    """Cached numbers per token in one layer, for the config's own attention kind."""
    cfg = load_config(cfg)
    if cfg.attention_kind == "mla":
        return cfg.kv_lora_rank + cfg.qk_rope_head_dim
    return 2 * cfg.num_kv_heads * cfg.head_dim


def kv_bytes_per_token(cfg, dtype_bytes: float = 2) -> int:
    """Cache bytes per token for the whole model (all layers).

    >>> kv_bytes_per_token("deepseek-v3")
    70272
    """
    cfg = load_config(cfg)
    validate.positive("dtype_bytes", dtype_bytes)
    return int(round(kv_elements_per_token_per_layer(cfg) * cfg.num_layers * dtype_bytes))


def kv_cache_bytes(cfg, seq_len: int, batch: int = 1, dtype_bytes: float = 2) -> int:
    """Bytes of cache for `batch` sequences of `seq_len` tokens: linear in both."""
    seq_len = validate.non_negative_int("seq_len", seq_len)
    batch = validate.positive_int("batch", batch)
    return kv_bytes_per_token(cfg, dtype_bytes) * seq_len * batch


# ----------------------------------------------------------------------- counterfactuals


def mha_bytes_per_token(cfg, dtype_bytes: float = 2, materialised: bool = False) -> int:
    """What the same model would cache per token with plain multi-head attention.

    Default: 2 * n_h * d_h * layers, the V2 paper's Table 1 comparison (d_h = 128 for V3).
    materialised=True (MLA models only): the per-head K (d_h + d_h^R) and V (d_v) that
    MLA's up-projections produce, i.e. what DeepSeek's attn_impl="naive" code caches.
    """
    cfg = load_config(cfg)
    validate.positive("dtype_bytes", dtype_bytes)
    if materialised and cfg.attention_kind != "mla":
        raise ValueError("materialised=True needs an MLA model (it expands MLA's latent).")
    if materialised:
        per_head = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim + cfg.v_head_dim
    else:
        per_head = 2 * cfg.head_dim
    return int(round(cfg.num_heads * per_head * cfg.num_layers * dtype_bytes))


def reduction(cfg, dtype_bytes: float = 2, materialised: bool = False) -> float:
    """1 - cache / MHA cache: the share of the MHA cache the model's attention saves."""
    return 1 - kv_bytes_per_token(cfg, dtype_bytes) / mha_bytes_per_token(
        cfg, dtype_bytes, materialised)


#: DeepSeek-V2 (arXiv:2405.04434 2.1, 3.1.2): 60 layers, 128 heads, d_c 512, d_h^R 64.
DEEPSEEK_V2 = dict(name="deepseek-v2", model_type="deepseek_v2", hidden_size=5120,
                   num_hidden_layers=60, num_attention_heads=128, intermediate_size=12288,
                   vocab_size=102400, q_lora_rank=1536, kv_lora_rank=512,
                   qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128)
#: DeepSeek LLM 67B (arXiv:2401.02954; HF config): 95 layers, GQA with 8 KV heads of 128.
#: The KV-head count is from a secondary citation of the paper
#: and the HF config, not checked against the paper itself.
DEEPSEEK_67B = dict(name="deepseek-llm-67b", model_type="llama", hidden_size=8192,
                    num_hidden_layers=95, num_attention_heads=64, num_key_value_heads=8,
                    intermediate_size=22016, vocab_size=102400)


def _per_token(cfg, dtype_bytes: float, mha: bool) -> int:
    return mha_bytes_per_token(cfg, dtype_bytes) if mha else kv_bytes_per_token(cfg, dtype_bytes)


def tokens_that_fit(cfg, gpu_gb: float = 141, n_gpus: int = 1, weight_bytes: float = 1,
                    kv_dtype_bytes: float = 2, mha: bool = False) -> int:
    """Tokens of cache (summed over all sequences) that fit in `n_gpus` GPUs of `gpu_gb`
    decimal GB beside the weights (`weight_bytes` per parameter; no activations, no
    framework overhead). Weights from `course.params.param_count`. mha=True: the same
    model caching like plain MHA (`mha_bytes_per_token`)."""
    cfg = load_config(cfg)
    validate.positive("gpu_gb", gpu_gb)
    validate.positive_int("n_gpus", n_gpus)
    validate.non_negative("weight_bytes", weight_bytes)
    free = gpu_gb * 1e9 * n_gpus - param_count(cfg).total * weight_bytes
    if free <= 0:
        raise ValueError(f"The weights alone ({param_count(cfg).total * weight_bytes / 1e9:,.0f}"
                         f" GB) do not fit in {n_gpus} × {gpu_gb:g} GB.")
    return int(free // _per_token(cfg, kv_dtype_bytes, mha))


def tokens_to_outweigh(cfg, weight_bytes: float = 2, kv_dtype_bytes: float = 2,
                       mha: bool = False) -> int:
    """The fewest cached tokens (context x batch, over all sequences) whose cache holds more
    bytes than the model's weights (`weight_bytes` per parameter, `param_count(cfg).total`).

    >>> tokens_to_outweigh("deepseek-v3")  # BF16 weights and cache
    19097975
    """
    cfg = load_config(cfg)
    validate.positive("weight_bytes", weight_bytes)
    weights = param_count(cfg).total * weight_bytes
    return int(weights // _per_token(cfg, kv_dtype_bytes, mha)) + 1


# ----------------------------------------------------------------------------- decode cost

DECODE_PATHS = ("absorbed", "naive", "mha")


@dataclass(frozen=True)
class DecodeCost:
    """Work of one decode step (one new token for each of `batch` sequences)."""

    weight_flops: float  # 2 * active params * batch: the matrix-vector products
    attention_flops: float  # scores and mixing over the cached context
    weight_bytes: float  # every weight the step touches, read once
    cache_bytes: float  # the whole cache, read once

    @property
    def flops(self) -> float:
        return self.weight_flops + self.attention_flops

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.cache_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte moved from memory."""
        return self.flops / self.bytes


def attention_flops_per_token(cfg: ModelConfig, context: int, path: str = "absorbed") -> float:
    """FLOPs one new token spends attending over `context` cached tokens, all layers."""
    cfg = load_config(cfg)
    validate.choice("decode path", path, DECODE_PATHS)
    context = validate.non_negative_int("context", context)
    h, S = cfg.num_heads, context
    if cfg.attention_kind != "mla":
        return cfg.num_layers * 4 * S * h * cfg.head_dim  # q.k and weights @ v
    qk, dc = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.kv_lora_rank
    if path == "absorbed":  # scores against [c ; k^R], mixing of c
        per_layer = 2 * S * h * (dc + cfg.qk_rope_head_dim) + 2 * S * h * dc
    else:
        per_layer = 2 * S * h * (qk + cfg.v_head_dim)
        if path == "naive":  # re-expanding every cached latent to K and V, every step
            per_layer += 2 * S * dc * h * (cfg.qk_nope_head_dim + cfg.v_head_dim)
    return cfg.num_layers * per_layer


def weights_touched(cfg: ModelConfig, batch: int) -> float:
    """Parameters a decode step reads (no input embedding). In an MoE layer, `batch`
    tokens each picking k of N experts touch N(1 - (1 - k/N)^B) distinct experts on
    average (uniform routing)."""
    cfg = load_config(cfg)
    batch = validate.positive_int("batch", batch)
    pc = param_count(cfg)
    n = pc.active_without_embedding
    if cfg.is_moe:
        N, k = cfg.n_routed_experts, cfg.experts_per_token
        distinct = N * (1 - (1 - k / N) ** batch)
        n += cfg.n_moe_layers * (distinct - k) * ffn_params(cfg.hidden_size,
                                                            cfg.moe_intermediate_size)
    return n


def decode_step_cost(cfg, context: int, batch: int = 1, path: str = "absorbed",
                     weight_bytes: float = 2, kv_dtype_bytes: float = 2) -> DecodeCost:
    """FLOPs and bytes of one decode step at `context` cached tokens per sequence."""
    cfg = load_config(cfg)
    context = validate.positive_int("context", context)
    batch = validate.positive_int("batch", batch)
    validate.choice("decode path", path, DECODE_PATHS)
    validate.non_negative("weight_bytes", weight_bytes)
    per_token = (mha_bytes_per_token(cfg, kv_dtype_bytes, materialised=True)
                 if path == "mha" and cfg.attention_kind == "mla"
                 else kv_bytes_per_token(cfg, kv_dtype_bytes))
    return DecodeCost(weight_flops=2 * param_count(cfg).active_without_embedding * batch,
                      attention_flops=batch * attention_flops_per_token(cfg, context, path),
                      weight_bytes=weights_touched(cfg, batch) * weight_bytes,
                      cache_bytes=batch * context * per_token)


def roofline_seconds(cost: DecodeCost, gpu_name: str = "H200", precision: str = "bf16") -> dict:
    """Lower bound on the step time: max(FLOPs / peak, bytes / bandwidth), and which wins."""
    if not isinstance(cost, DecodeCost):
        raise ValueError(f"cost must be a DecodeCost (from decode_step_cost), not {cost!r}.")
    spec = gpu(gpu_name)
    compute_s = cost.flops / (spec.peak_tflops(precision) * 1e12)
    memory_s = cost.bytes / (spec.hbm_tb_s * 1e12)
    return dict(seconds=max(compute_s, memory_s), compute_s=compute_s, memory_s=memory_s,
                bound="compute" if compute_s > memory_s else "memory")


def ridge_intensity(gpu_name: str = "H200", precision: str = "bf16") -> float:
    """FLOPs per byte above which a kernel on this GPU is compute-bound (the ridge point)."""
    spec = gpu(gpu_name)
    return spec.peak_tflops(precision) * 1e12 / (spec.hbm_tb_s * 1e12)


# ------------------------------------------------------- what the cache holds: K and V


@dataclass(frozen=True)
class NewRow:
    """One layer's, one head's attention weights when a token is added (`attention_rows`)."""

    before: torch.Tensor  # (T, T): the T tokens' softmax rows, computed before the new token
    step: torch.Tensor  # (T + 1,): the new token's row, from the cache (its only new row)
    full: torch.Tensor  # (T + 1, T + 1): all T + 1 tokens at once, without a cache
    old_rows_change: float  # max |full[:T, :T] - before|: the old rows do not change
    step_error: float  # max |step - full[T]|: the cached step computes the full's last row
    nearest_old_row: float  # min over old rows of max |step[:T] / sum - before[i]|


def attention_rows(model, idx: torch.Tensor, layer: int = 0, head: int = 0) -> NewRow:
    """Run `model` (a `course.model.TinyLM`) on idx (1, T + 1) twice: T tokens into a cache
    and then the last one alone, and all T + 1 at once. Scores are not what the cache
    keeps: the new token's row is made from its new query against the cached keys."""
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.shape[0] != 1 or idx.shape[1] < 2:
        raise ValueError("idx must be a (1, T + 1) tensor of token ids with T + 1 ≥ 2.")
    blocks = getattr(model, "blocks", [])
    layer = validate.integer("layer", layer, 0, len(blocks) - 1)
    attn = blocks[layer].attn
    head = validate.integer("head", head, 0, attn.n_heads - 1)
    T, stored = idx.shape[1] - 1, attn.store_weights
    attn.store_weights = True
    try:
        with torch.no_grad():
            cache = model.new_cache()
            model(idx[:, :T], cache=cache)
            before = attn.last_weights[0, head]
            model(idx[:, T:], cache=cache)
            step = attn.last_weights[0, head, 0]
            model(idx)
            full = attn.last_weights[0, head]
    finally:
        attn.store_weights = stored
    renormed = step[:T] / step[:T].sum()
    return NewRow(before, step, full,
                  old_rows_change=(full[:T, :T] - before).abs().max().item(),
                  step_error=(step - full[T]).abs().max().item(),
                  nearest_old_row=(renormed - before).abs().amax(-1).min().item())


# ------------------------------------------------------------- the compression trade-off


def kv_activations(model, idx) -> list[tuple]:
    """Keys and values an MHA `course.model.TinyLM` computes for the tokens `idx` (B, T):
    per layer (K, V), each (B*T, d_model), before RoPE (RoPE is what MLA keeps apart)."""
    blocks = getattr(model, "blocks", None)
    if not blocks or not all(hasattr(getattr(b, "attn", None), "wk") for b in blocks):
        raise ValueError("kv_activations needs a model with MHA attention (attention='mha').")
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.dtype != torch.long or not idx.numel():
        raise ValueError("idx must be a non-empty (batch, tokens) tensor of token ids.")
    captured = []
    hooks = [b.attn.register_forward_hook(
        lambda mod, args, out: captured.append((mod.wk(args[0]), mod.wv(args[0]))))
        for b in model.blocks]
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    return [(k.flatten(0, 1), v.flatten(0, 1)) for k, v in captured]


def rank_error(matrix: torch.Tensor, ranks) -> np.ndarray:
    """Relative error ||M - M_r||_F / ||M||_F of the best rank-r approximation of each
    `matrix` (N, d) for every r in `ranks` (Eckart-Young: from the singular values)."""
    if not torch.is_tensor(matrix) or matrix.dim() != 2 or not matrix.numel():
        raise ValueError("matrix must be a non-empty 2-D (N, d) tensor.")
    if not bool(torch.isfinite(matrix).all()) or not bool(matrix.any()):
        raise ValueError("matrix must be finite and not all zero.")
    ranks = np.array([validate.integer("rank", r, 0, 10**9) for r in np.ravel(ranks)],
                     dtype=int).reshape(np.shape(ranks))
    s2 = torch.linalg.svdvals(matrix.double()).pow(2).numpy()
    tail = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])  # tail[r] = sum_{i>=r} s_i^2
    return np.sqrt(tail[np.minimum(ranks, len(s2))] / s2.sum())


def kv_rank_curves(model, idx: torch.Tensor, ranks) -> dict[str, np.ndarray]:
    """Reconstruction error of K, V, and K and V stacked side by side (one latent for both,
    as MLA does), at each latent rank, averaged over the model's layers."""
    acts = kv_activations(model, idx)
    curves = {"K": [rank_error(k, ranks) for k, _ in acts],
              "V": [rank_error(v, ranks) for _, v in acts],
              "K and V together": [rank_error(torch.cat([k, v], 1), ranks) for k, v in acts]}
    return {name: np.mean(errs, axis=0) for name, errs in curves.items()}


def cache_gb(cfg, contexts, batch: int = 1, dtype_bytes: float = 2,
             mha: bool = False) -> np.ndarray:
    """Cache GB (decimal) at each context length: the model's own, or its MHA counterfactual."""
    per = _per_token(cfg, dtype_bytes, mha)
    batch = validate.positive_int("batch", batch)
    contexts = np.array([validate.non_negative("context", c) for c in np.ravel(contexts)],
                        dtype=float).reshape(np.shape(contexts))
    return per * batch * contexts / 1e9
