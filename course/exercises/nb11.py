"""Exercises of notebook 11 · The KV cache and Multi-head Latent Attention."""

import torch

from course import kvcache, mla
from course.exercises import Exercise, register


def gqa_bytes_per_token(layers: int, kv_heads: int, head_dim: int, dtype_bytes: float) -> float:
    return 2 * kv_heads * head_dim * layers * dtype_bytes


register(Exercise(
    name="11.gqa_bytes_per_token", notebook="11",
    prompt="KV cache bytes per token of a GQA model: layers, KV heads, head width, bytes.",
    hint="Each layer caches one key AND one value vector per KV head: 2 x kv_heads x head_dim.",
    reference=gqa_bytes_per_token,
    oracle=lambda layers, kv, hd, b: kvcache.kv_bytes_per_token(dict(
        model_type="llama", hidden_size=kv * hd * 8, num_hidden_layers=layers,
        num_attention_heads=kv * 8, num_key_value_heads=kv, head_dim=hd,
        intermediate_size=1, vocab_size=1), b),
    cases=lambda: [(80, 8, 128, 2), (32, 8, 128, 2), (61, 128, 128, 1)],
    wrong=lambda layers, kv_heads, head_dim, b: kv_heads * head_dim * layers * b,  # K only
))


register(Exercise(
    name="11.llama70b_kib_per_token", notebook="11",
    prompt="Llama-3-70B's KV cache per token in BF16, in KiB (1 KiB = 1024 bytes).",
    hint="80 layers x 2 (K and V) x 8 KV heads x 128 x 2 bytes, then divide by 1024.",
    expected=lambda: kvcache.kv_bytes_per_token("llama-3-70b") / 1024,
    wrong=2560.0, rtol=1e-6,  # as if all 64 heads were cached (MHA)
))


def absorbed_scores(q_nope: torch.Tensor, w_uk: torch.Tensor,
                    latent: torch.Tensor) -> torch.Tensor:
    return (q_nope @ w_uk) @ latent.T


register(Exercise(
    name="11.absorbed_scores", notebook="11",
    prompt="One head's scores q . (W_UK c_s) for all cached latents, without forming keys.",
    hint="q . (W c) = (W^T q) . c: multiply the query by W_UK once, then by every latent.",
    reference=absorbed_scores,
    oracle=lambda q, w, c: mla.content_scores(q, w, c, absorbed=False),  # forms the keys
    cases=lambda: [(torch.randn(3, 4, generator=torch.Generator().manual_seed(s)),
                    torch.randn(4, 6, generator=torch.Generator().manual_seed(s + 1)),
                    torch.randn(5, 6, generator=torch.Generator().manual_seed(s + 2)))
                   for s in (0, 10)],
    wrong=lambda q, w, c: q @ (c @ w.T).T / 2,  # an extra scale
))


def mla_decode_intensity(n_heads: int, d_c: int, d_rope: int, dtype_bytes: float) -> float:
    # per cached token: scores against [c ; k^R] and mixing of c, for every head...
    flops = 2 * n_heads * (d_c + d_rope) + 2 * n_heads * d_c
    return flops / ((d_c + d_rope) * dtype_bytes)  # ...over ONE shared latent read


def _mla_decode_oracle(n_heads, d_c, d_rope, dtype_bytes):
    from course import roofline

    cfg = dict(kvcache.DEEPSEEK_V2, num_attention_heads=n_heads, kv_lora_rank=d_c,
               qk_rope_head_dim=d_rope)
    return roofline.attention_decode(cfg, 1000, dtype_bytes=dtype_bytes).intensity


register(Exercise(
    name="11.mla_decode_intensity", notebook="11",
    prompt="Arithmetic intensity (FLOP/B) of absorbed MLA decode attention: n_heads query "
           "heads against a cache of d_c latent + d_rope RoPE numbers per token.",
    hint="Every head scores against [c; k^R] (2(d_c + d_rope) FLOPs) and mixes c (2 d_c); "
         "all heads share one read of d_c + d_rope numbers.",
    reference=mla_decode_intensity, oracle=_mla_decode_oracle,
    cases=lambda: [(128, 512, 64, 2), (16, 512, 64, 1), (4, 16, 8, 4)],
    wrong=lambda h, dc, dr, b: (2 * (dc + dr) + 2 * dc) / ((dc + dr) * b),  # one head only
))


def _rotation(p: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """RoPE's rotation matrix R(p) in float64 (pairs i, i + d/2, as course.attention)."""
    from course.attention import apply_rope

    angle = p * base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    cos, sin = torch.cat([angle.cos()] * 2), torch.cat([angle.sin()] * 2)
    return apply_rope(torch.eye(d, dtype=torch.float64), cos, sin).T


def coupled_fold(w_uk: torch.Tensor, m: int, n: int) -> torch.Tensor:
    # the query at m and the key at n are both rotated: q^T R(m)^T R(n) W_UK c
    d = w_uk.shape[0]
    return _rotation(m, d).T @ _rotation(n, d) @ w_uk


def _relative_fold(w_uk: torch.Tensor, m: int, n: int) -> torch.Tensor:
    # rotations compose: R(m)^T R(n) = R(n - m); one rotation by the offset
    return _rotation(n - m, w_uk.shape[0]) @ w_uk


register(Exercise(
    name="11.coupled_rope_fold", notebook="11",
    prompt="With RoPE on the content key, the matrix between a query at position m and a "
           "latent at position n: w_uk (d_h, d_c), positions m, n -> (d_h, d_c).",
    hint="Score = (R(m) q) . (R(n) W_UK c) = q^T R(m)^T R(n) W_UK c; build R(p) by rotating "
         "the identity with course.attention.apply_rope (float64 angles).",
    reference=coupled_fold, oracle=_relative_fold,
    cases=lambda: [(torch.randn(4, 6, generator=torch.Generator().manual_seed(s),
                                dtype=torch.float64), m, n)
                   for s, m, n in ((0, 0, 0), (1, 3, 1), (2, 7, 7), (3, 9, 2), (4, 1, 5))],
    wrong=lambda w, m, n: _rotation(n, w.shape[0]) @ w,  # forgets the query's rotation
    rtol=1e-9, atol=1e-9,
))
