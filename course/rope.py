"""Rotary position embeddings (RoPE) on the tiny model: attention scores that depend only
on how far apart two tokens are (notebook 01; notebook 11's decoupled RoPE key builds on it).

RoPE (Su et al. 2021, "RoFormer", section 3.4) rotates each pair of a query's and a key's
dimensions by an angle proportional to the token's position m: q_m = R(m) q, k_n = R(n) k.
Rotations compose, R(m)^T R(n) = R(n - m), so the score q_m . k_n = q^T R(n - m) k depends
on the positions only through n - m. `course.attention.apply_rope` implements the rotation
and `CausalSelfAttention` applies it to q and k (never to v).
"""

from __future__ import annotations

import torch

from course.attention import apply_rope, rope_cos_sin


def query_key(model, layer: int, head: int, q_word: str, k_word: str, tok) -> tuple:
    """The (unrotated) query of `q_word` and key of `k_word` of one head of a trained
    `course.model.TinyLM`, computed from the word embeddings through the layer's input
    norm (what the first layer sees, before any mixing)."""
    block = model.blocks[layer]
    attn = block.attn
    if not hasattr(attn, "wq") or not getattr(attn, "rope", False):
        raise ValueError("query_key needs an MHA layer with RoPE (course.attention).")
    if not 0 <= head < attn.n_heads:
        raise ValueError(f"head must be in 0..{attn.n_heads - 1}, not {head}.")
    ids = torch.tensor([tok.encode(q_word)[0], tok.encode(k_word)[0]])
    with torch.no_grad():
        x = block.attn_norm(model.embed(ids))
        sl = slice(head * attn.head_dim, (head + 1) * attn.head_dim)
        return attn.wq(x[0])[sl], attn.wk(x[1])[sl]


def score(q: torch.Tensor, k: torch.Tensor, m: int, n: int, rope: bool = True,
          base: float = 10000.0) -> float:
    """Attention logit q_m . k_n / sqrt(d) with the query at position m and the key at n."""
    d = q.shape[-1]
    if rope:
        cos, sin = rope_cos_sin(torch.tensor([m, n]), d, base)
        q, k = apply_rope(q, cos[0], sin[0]), apply_rope(k, cos[1], sin[1])
    return float(q @ k) / d**0.5


def score_table(q: torch.Tensor, k: torch.Tensor, positions: int, rope: bool = True,
                base: float = 10000.0) -> torch.Tensor:
    """(positions x positions) logits: row m is the query's position, column n the key's.
    With RoPE the table is constant along each diagonal (it depends on n - m only)."""
    if positions < 1:
        raise ValueError("positions must be at least 1.")
    d = q.shape[-1]
    pos = torch.arange(positions)
    if rope:
        cos, sin = rope_cos_sin(pos, d, base)
        qs, ks = apply_rope(q.expand(positions, d), cos, sin), apply_rope(
            k.expand(positions, d), cos, sin)
    else:
        qs, ks = q.expand(positions, d), k.expand(positions, d)
    return (qs @ ks.T) / d**0.5


def by_offset(table: torch.Tensor) -> dict[int, torch.Tensor]:
    """The table's entries grouped by offset n - m (keys at or before the query: n <= m)."""
    p = table.shape[0]
    return {off: torch.diagonal(table, offset=off) for off in range(-(p - 1), 1)}
