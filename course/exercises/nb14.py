"""Exercises of notebook 14 · Build a tiny DeepSeek."""

from types import SimpleNamespace

from course import memory
from course import tiny_deepseek as td
from course.exercises import Exercise, register


def _kv_ratio() -> float:
    cfg = td.full_config()
    return td.kv_formula(td.variant_config("mha", cfg)) / td.kv_formula(cfg)


register(Exercise(
    name="14.kv_ratio", notebook="14",
    prompt="Before running it: how many times more KV-cache bytes per token does the tiny "
           "DeepSeek need with MHA instead of MLA?",
    hint="MHA caches a key and a value per head: 2 x n_heads x head width per layer. MLA "
         "caches the latent (kv_lora_rank) plus ONE shared RoPE key (qk_rope_head_dim).",
    expected=_kv_ratio, wrong=8.0, rtol=1e-6,  # the RoPE key forgotten: 128 / 16
))


def dense_width(moe_inter_dim: int, n_shared: int, top_k: int, n_routed: int) -> int:
    return (n_shared + top_k) * moe_inter_dim


register(Exercise(
    name="14.dense_width", notebook="14",
    prompt="The SwiGLU width of a dense FFN with the same active parameters as an MoE layer "
           "(ignore the router).",
    hint="One token runs through the shared experts and its top-k routed experts, each a "
         "SwiGLU of width moe_inter_dim; the other routed experts sit idle.",
    reference=dense_width,
    oracle=lambda inter, shared, k, routed: td.dense_width(SimpleNamespace(
        moe_inter_dim=inter, n_shared_experts=shared, experts_per_token=k,
        n_routed_experts=routed)),
    cases=lambda: [(32, 1, 2, 8), (2048, 1, 8, 256), (64, 2, 6, 64)],
    wrong=lambda m, s, k, n: (s + n) * m,  # all experts: total, not active
))


register(Exercise(
    name="14.v3_active_share", notebook="14",
    prompt="Which share of DeepSeek-V3's parameters does one token use (active / total)?",
    hint="course.memory.param_count('deepseek-v3') has both; the embedding, attention, "
         "dense layers and shared experts are active for every token, not only 8 of 256 "
         "experts.",
    expected=lambda: (lambda c: c.active / c.total)(memory.param_count("deepseek-v3")),
    wrong=8 / 256, rtol=0.01,
))
