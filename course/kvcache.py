"""How many bytes the KV cache holds: per token, per sequence, and how much fits on a GPU.

Per token and layer the cache holds (DeepSeek-V2 paper, 2.1.4, Table 1):
    MHA  2 * n_h * d_h          GQA  2 * n_g * d_h
    MQA  2 * d_h                MLA  d_c + d_h^R  (the latent and ONE RoPE key shared by all heads)
For DeepSeek-V3: 512 + 64 = 576 elements per layer, 61 layers, BF16 -> 70,272 bytes per token.
The MTP module is not counted: it is dropped (or run as a draft) at inference.
"""

from __future__ import annotations

from course.configs import ModelConfig, load_config


def kv_elements_per_token_per_layer(cfg: ModelConfig) -> int:
    """Cached numbers per token in one layer, for the config's own attention kind."""
    if cfg.attention_kind == "mla":
        return cfg.kv_lora_rank + cfg.qk_rope_head_dim
    return 2 * cfg.num_kv_heads * cfg.head_dim


def kv_bytes_per_token(cfg, dtype_bytes: float = 2) -> int:
    """Cache bytes per token for the whole model (all layers).

    >>> kv_bytes_per_token("deepseek-v3")
    70272
    """
    cfg = load_config(cfg)
    if dtype_bytes <= 0:
        raise ValueError("dtype_bytes must be positive.")
    return int(round(kv_elements_per_token_per_layer(cfg) * cfg.num_layers * dtype_bytes))


def kv_cache_bytes(cfg, seq_len: int, batch: int = 1, dtype_bytes: float = 2) -> int:
    """Bytes of cache for `batch` sequences of `seq_len` tokens: linear in both."""
    if seq_len < 0 or batch < 1:
        raise ValueError("seq_len must be ≥ 0 and batch ≥ 1.")
    return kv_bytes_per_token(cfg, dtype_bytes) * seq_len * batch
