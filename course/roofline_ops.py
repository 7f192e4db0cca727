"""FLOPs and bytes of a transformer's operations, for the roofline (`course.roofline`).

Bytes are counted as an ideal kernel moves them: every operand read once from memory and
the output written once (no cache reuse beyond one kernel, no re-reads). A matmul
(m, k) @ (k, n) does 2 m k n FLOPs and moves (m k + k n + m n) x dtype_bytes.
"""

from __future__ import annotations

from course.compute import attention_flops_per_token
from course.configs import ModelConfig, load_config
from course.roofline_model import Op


def matmul(m: int, k: int, n: int, dtype_bytes: float = 2, name: str | None = None) -> Op:
    """(m, k) @ (k, n): 2 m k n FLOPs; A and B read once, C written once."""
    if min(m, k, n) < 1:
        raise ValueError(f"A matmul needs positive sizes; got m={m}, k={k}, n={n}.")
    if dtype_bytes <= 0:
        raise ValueError(f"dtype_bytes must be positive, not {dtype_bytes}.")
    return Op(name or f"matmul {m}×{k}×{n}", 2.0 * m * k * n,
              float(m * k + k * n + m * n) * dtype_bytes, (m, k, n))


def tokens_per_expert(tokens: float, cfg, ep: int = 1) -> float:
    """Tokens one routed expert receives when `tokens` tokens on each of the `ep` ranks of an
    expert-parallel group are routed uniformly: ep x tokens x K_r / N_r."""
    cfg = load_config(cfg)
    if not cfg.is_moe:
        raise ValueError(f"{cfg.name} is dense: it has no routed experts.")
    if tokens <= 0 or ep < 1:
        raise ValueError("tokens must be positive and ep at least 1.")
    return ep * tokens * cfg.experts_per_token / cfg.n_routed_experts


def moe_expert(cfg, tokens_per_expert: float, dtype_bytes: float = 2) -> Op:
    """One routed SwiGLU expert applied to `tokens_per_expert` tokens: gate and up
    (T, d) @ (d, inter), down (T, inter) @ (inter, d). Each weight is read once, whatever T:
    so few tokens per expert means few FLOPs per weight byte."""
    cfg = load_config(cfg)
    if not cfg.is_moe:
        raise ValueError(f"{cfg.name} is dense: it has no routed experts.")
    t = max(1, int(round(tokens_per_expert)))
    d, inter = cfg.hidden_size, cfg.moe_intermediate_size
    parts = (matmul(t, d, inter, dtype_bytes), matmul(t, d, inter, dtype_bytes),
             matmul(t, inter, d, dtype_bytes))
    return Op(f"MoE expert, {t:,} tokens", sum(p.flops for p in parts),
              sum(p.bytes for p in parts), (t, d, inter))


def _qkv_dims(cfg: ModelConfig) -> tuple[int, int, int]:
    """(key heads, q/k dim, v dim) as attention sees them in prefill. MLA in prefill (and
    training) expands the latent to per-head keys and values: every head has its own."""
    if cfg.attention_kind == "mla":
        return cfg.num_heads, cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.v_head_dim
    return cfg.num_kv_heads, cfg.head_dim, cfg.head_dim


def attention_prefill(cfg, seq_len: int, batch: int = 1, dtype_bytes: float = 2) -> Op:
    """Scores and weighted values of a causal prefill over `seq_len` tokens, all layers, as
    a fused (flash) kernel does it: Q, K, V read once, O written once, no (T x T) matrix in
    memory. FLOPs from `course.compute.attention_flops_per_token` (T/2 keys on average)."""
    cfg = load_config(cfg)
    if seq_len < 1 or batch < 1:
        raise ValueError("seq_len and batch must be at least 1.")
    kv_heads, d_qk, d_v = _qkv_dims(cfg)
    h = cfg.num_heads
    per_token = h * d_qk + kv_heads * d_qk + kv_heads * d_v + h * d_v  # q, k, v, o
    tokens = batch * seq_len
    return Op(f"attention prefill, {seq_len:,} tokens",
              tokens * attention_flops_per_token(cfg, seq_len),
              float(tokens * per_token * cfg.num_layers * dtype_bytes),
              (batch, seq_len))


def attention_decode(cfg, context: int, batch: int = 1, path: str = "absorbed",
                     dtype_bytes: float = 2) -> Op:
    """One decode step's attention for `batch` sequences over `context` cached tokens, all
    layers: FLOPs from `course.kvcache.attention_flops_per_token`, bytes = the cache read
    once (the query and output are negligible next to it). For an MLA model, `path`
    "absorbed" reads the latent cache, "mha" the materialised per-head K and V."""
    from course import kvcache

    cfg = load_config(cfg)
    if context < 1 or batch < 1:
        raise ValueError("context and batch must be at least 1.")
    if path == "mha" and cfg.attention_kind == "mla":
        per_token = kvcache.mha_bytes_per_token(cfg, dtype_bytes, materialised=True)
    else:
        per_token = kvcache.kv_bytes_per_token(cfg, dtype_bytes)
    flops = batch * kvcache.attention_flops_per_token(cfg, context, path)
    return Op(f"attention decode ({path}), {context:,} context", flops,
              float(batch * context * per_token), (batch, context))


def decode_step(cfg, context: int, batch: int = 1, path: str = "absorbed",
                weight_bytes: float = 2, kv_dtype_bytes: float = 2) -> Op:
    """A whole decode step (every weight touched + the cache), from
    `course.kvcache.decode_step_cost`."""
    from course import kvcache

    c = kvcache.decode_step_cost(cfg, context, batch, path, weight_bytes, kv_dtype_bytes)
    return Op(f"decode step, batch {batch}", c.flops, c.bytes, (batch, context))


def decode_intensity_limit(cfg, context: int, path: str = "absorbed",
                           kv_dtype_bytes: float = 2) -> float:
    """The intensity a decode step approaches as the batch grows: the weights' bytes are
    shared by ever more sequences and vanish, while each sequence still brings its own
    FLOPs (weights + attention) and its own cache to read:
    (2 x active params + attention FLOPs per token) / cache bytes per sequence."""
    from course import kvcache
    from course.memory import param_count

    cfg = load_config(cfg)
    one = kvcache.decode_step_cost(cfg, context, 1, path, kv_dtype_bytes=kv_dtype_bytes)
    weight_flops = 2.0 * param_count(cfg).active_without_embedding
    return (weight_flops + one.attention_flops) / one.cache_bytes


def prefill_step(cfg, seq_len: int, batch: int = 1, weight_bytes: float = 2,
                 dtype_bytes: float = 2) -> Op:
    """A whole prefill forward: every weight the tokens touch read once, 2 FLOPs per active
    weight per token, plus attention (`attention_prefill`) and the cache written once."""
    from course import kvcache
    from course.memory import param_count

    cfg = load_config(cfg)
    attn = attention_prefill(cfg, seq_len, batch, dtype_bytes)
    tokens = batch * seq_len
    weights = kvcache.weights_touched(cfg, tokens) * weight_bytes
    cache = tokens * kvcache.kv_bytes_per_token(cfg, dtype_bytes)
    flops = 2.0 * param_count(cfg).active_without_embedding * tokens + attn.flops
    return Op(f"prefill, {tokens:,} tokens", flops, weights + cache + attn.bytes,
              (batch, seq_len))


def elementwise(name: str, elements: float, reads: int, writes: int, flops_per_element: float,
                dtype_bytes: float = 2) -> Op:
    """An elementwise pass over `elements` numbers: each read `reads` tensors and wrote
    `writes`; a few FLOPs per element, so far below any GPU's ridge."""
    return Op(name, flops_per_element * elements, (reads + writes) * elements * dtype_bytes)


def moe_layer_ops(cfg, tokens: int = 4096, seq_len: int = 4096, ep: int = 1,
                  dtype_bytes: float = 2) -> list[Op]:
    """The forward pass of one MoE transformer layer of an MLA model on one GPU that holds
    `tokens` tokens (sequences of `seq_len`) and N_r / ep of the routed experts, each of
    which receives `tokens_per_expert(tokens, cfg, ep)` tokens. Matmuls and the fused
    attention core, plus the elementwise work between them (RMSNorms: ~4 FLOPs per element,
    one tensor read, one written; SwiGLU's gate: ~5 FLOPs, two read, one written; residual
    adds: two read, one written)."""
    cfg = load_config(cfg)
    if cfg.attention_kind != "mla" or not cfg.is_moe:
        raise ValueError(f"{cfg.name} is not an MLA mixture of experts like DeepSeek-V3.")
    if tokens < 1 or seq_len < 1 or tokens % seq_len:
        raise ValueError(f"tokens ({tokens}) must be a whole number of {seq_len}-token "
                         "sequences.")
    t, d, h, b = tokens, cfg.hidden_size, cfg.num_heads, dtype_bytes
    qk, rope = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.qk_rope_head_dim
    dq, dc, inter = cfg.q_lora_rank, cfg.kv_lora_rank, cfg.moe_intermediate_size
    tpe = tokens_per_expert(t, cfg, ep)
    local_experts = cfg.n_routed_experts // ep
    attn = attention_prefill(cfg, seq_len, t // seq_len, b)
    experts = moe_expert(cfg, tpe, b).scaled(local_experts,
                                             f"{local_experts} routed experts × {tpe:,.0f} tokens")
    swiglu_elems = (local_experts * tpe + cfg.n_shared_experts * t) * inter
    return [
        elementwise("RMSNorms", 2 * t * d + t * (dq + dc), 1, 1, 4, b),
        matmul(t, d, dq + dc + rope, b, name="q, kv down-projections"),
        matmul(t, dq, h * qk, b, name="q up-projection"),
        matmul(t, dc, h * (cfg.qk_nope_head_dim + cfg.v_head_dim), b, name="kv up-projection"),
        attn.scaled(1 / cfg.num_layers, "attention core (fused)"),
        matmul(t, h * cfg.v_head_dim, d, b, name="output projection"),
        elementwise("residual adds", 2 * t * d, 2, 1, 1, b),
        matmul(t, d, cfg.n_routed_experts, b, name="router"),
        experts,
        moe_expert(cfg, t, b).scaled(cfg.n_shared_experts, "shared expert"),
        elementwise("SwiGLU gates", swiglu_elems, 2, 1, 5, b),
    ]
