"""Rotary position embeddings (RoPE) on the tiny model: attention scores that depend only
on how far apart two tokens are (notebook 01; notebook 11's decoupled RoPE key builds on it).

RoPE (Su et al. 2021, "RoFormer", section 3.4) rotates each pair of a query's and a key's
dimensions by an angle proportional to the token's position m: q_m = R(m) q, k_n = R(n) k.
Rotations compose, R(m)^T R(n) = R(n - m), so the score q_m . k_n = q^T R(n - m) k depends
on the positions only through n - m. `course.attention.apply_rope` implements the rotation
and `CausalSelfAttention` applies it to q and k (never to v).

Notebook 11: why MLA (`course.mla`) keeps RoPE out of its latent. `rope_absorption` shows
that a rotated content key puts R(m)^T R(n) between query and latent (no one matrix to
absorb); `latent_ranks` that rotated keys no longer fit in the latent's d_c dimensions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from course import validate
from course.attention import apply_rope, rope_cos_sin


def _pair(q, k) -> int:
    """The width d of a query and key pair: equal, even 1-D vectors (RoPE turns pairs)."""
    if not (torch.is_tensor(q) and torch.is_tensor(k)) or q.dim() != 1 or q.shape != k.shape:
        raise ValueError("q and k must be 1-D tensors of the same width.")
    if q.shape[0] < 2 or q.shape[0] % 2:
        raise ValueError(f"RoPE needs an even width of at least 2, not {q.shape[0]}.")
    return q.shape[0]


def query_key(model, layer: int, head: int, q_word: str, k_word: str, tok) -> tuple:
    """The (unrotated) query of `q_word` and key of `k_word` of one head of a trained
    `course.model.TinyLM`, computed from the word embeddings through the layer's input
    norm (what the first layer sees, before any mixing)."""
    blocks = getattr(model, "blocks", [])
    layer = validate.integer("layer", layer, 0, len(blocks) - 1)
    block = blocks[layer]
    attn = block.attn
    if not hasattr(attn, "wq") or not getattr(attn, "rope", False):
        raise ValueError("query_key needs an MHA layer with RoPE (course.attention).")
    head = validate.integer("head", head, 0, attn.n_heads - 1)
    ids = torch.tensor([tok.encode(q_word)[0], tok.encode(k_word)[0]])
    with torch.no_grad():
        x = block.attn_norm(model.embed(ids))
        sl = slice(head * attn.head_dim, (head + 1) * attn.head_dim)
        return attn.wq(x[0])[sl], attn.wk(x[1])[sl]


def score(q: torch.Tensor, k: torch.Tensor, m: int, n: int, rope: bool = True,
          base: float = 10000.0) -> float:
    """Attention logit q_m . k_n / sqrt(d) with the query at position m and the key at n."""
    d = _pair(q, k)
    m, n = validate.integer("m", m), validate.integer("n", n)
    validate.positive("base", base)
    if rope:
        cos, sin = rope_cos_sin(torch.tensor([m, n]), d, base)
        q, k = apply_rope(q, cos[0], sin[0]), apply_rope(k, cos[1], sin[1])
    return float(q @ k) / d**0.5


def score_table(q: torch.Tensor, k: torch.Tensor, positions: int, rope: bool = True,
                base: float = 10000.0) -> torch.Tensor:
    """(positions x positions) logits: row m is the query's position, column n the key's.
    With RoPE the table is constant along each diagonal (it depends on n - m only)."""
    positions = validate.integer("positions", positions, 1, 100_000)
    validate.positive("base", base)
    d = _pair(q, k)
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
    if not torch.is_tensor(table) or table.dim() != 2 or table.shape[0] != table.shape[1]:
        raise ValueError("table must be a square 2-D tensor (from score_table).")
    p = table.shape[0]
    return {off: torch.diagonal(table, offset=off) for off in range(-(p - 1), 1)}


# ------------------------------------------- MLA: why RoPE is kept out of the latent


@dataclass
class RopeAbsorption:
    """What `rope_absorption` computed on one head (all norms Frobenius, errors absolute)."""

    fold: torch.Tensor  # (T, T, d_nope, d_c): coupled RoPE's R(m)^T R(n) W_UK per (m, n)
    fold_distance: torch.Tensor  # (T, T): ||fold[m, n] - W_UK|| / ||W_UK||
    by_offset_spread: float  # max over n <= m of ||fold[m, n] - fold[m - n, 0]|| / ||W_UK||
    coupled_fold_error: float  # max |q . fold[m, n] c_n - RoPE(q, m) . RoPE(W_UK c_n, n)|
    coupled_fixed_error: float  # the same with the one fixed W_UK, over the largest score
    decoupled_error: float  # max |absorbed - full| scores of the layer as built
    score_scale: float  # largest |score| of the layer as built


def rope_absorption(layer, x: torch.Tensor, head: int = 0) -> RopeAbsorption:
    """Why MLA decouples RoPE (DeepSeek-V2 §2.1.3), computed on one head of `layer` (a
    `course.mla.MLAttention`) for the
    T tokens of x (B, T, d_model; the first sequence is used), positions 0..T-1.

    Coupled (the counterfactual): RoPE rotates the content key made from the latent,
    k_n = R(n) W_UK c_n, and the query, q_m -> R(m) q_m. Then q_m . k_n = q_m^T [R(m)^T R(n)
    W_UK] c_n: the matrix to fold into the query changes with the key's position (it is
    R(n - m) W_UK), so one query needs a different matrix for every cached token, which is
    forming the keys again. Decoupled (the layer as built): the content key is not rotated,
    position lives in the small shared key k^R, and (W_UK^T q) . c_n + q^R . k^R_n is the full
    computation's score, re-associated."""
    _check_input(layer, x)
    head = validate.integer("head", head, 0, layer.n_heads - 1)
    if layer.d_nope % 2:
        raise ValueError(f"RoPE on the content key needs an even qk_nope_head_dim, "
                         f"not {layer.d_nope}.")
    T = x.shape[1]
    with torch.no_grad():
        q_nope, q_rope, latent, k_rope = layer._project(x[:1], 0)
        w_uk = layer.up_weight()[head, : layer.d_nope].to(latent.dtype)  # (d_nope, d_c)
        q, c = q_nope[0, head], latent[0]  # (T, d_nope), (T, d_c)
        cos, sin = rope_cos_sin(torch.arange(T), layer.d_nope, layer.rope_base)
        eye = torch.eye(layer.d_nope, dtype=c.dtype)
        rot = torch.stack([apply_rope(eye, cos[p], sin[p]).T for p in range(T)])  # R(p)
        fold = torch.einsum("mji,njk,kc->mnic", rot, rot, w_uk)  # R(m)^T R(n) W_UK
        true = apply_rope(q, cos, sin) @ apply_rope(c @ w_uk.T, cos, sin).T
        folded = torch.einsum("mi,mnic,nc->mn", q, fold, c)
        fixed = q @ w_uk @ c.T
        norm = torch.linalg.matrix_norm(w_uk)
        distance = torch.linalg.matrix_norm(fold - w_uk) / norm
        spread = max((torch.linalg.matrix_norm(fold[m, n] - fold[m - n, 0]) / norm).item()
                     for m in range(T) for n in range(m + 1))
        k_full, _ = layer._expand(latent, k_rope)  # the keys the naive path forms
        full = torch.cat([q_nope, q_rope], -1)[0, head] @ k_full[0, head].T
        absorbed = (q @ w_uk) @ c.T + q_rope[0, head] @ k_rope[0].T  # never forms a key
    return RopeAbsorption(
        fold=fold, fold_distance=distance, by_offset_spread=spread,
        coupled_fold_error=(folded - true).abs().max().item(),
        coupled_fixed_error=((fixed - true).abs().max() / true.abs().max()).item(),
        decoupled_error=(absorbed - full).abs().max().item(),
        score_scale=full.abs().max().item())


def _check_input(layer, x) -> None:
    if not hasattr(layer, "wkv_a") or not hasattr(layer, "_project"):
        raise ValueError("layer must be an MLA layer (course.mla.MLAttention).")
    width = layer.wkv_a.weight.shape[1]
    if not torch.is_tensor(x) or x.dim() != 3 or x.shape[-1] != width or not x.shape[1]:
        raise ValueError(f"x must be (batch, tokens, {width}), "
                         f"not {tuple(getattr(x, 'shape', ()))}.")


@dataclass(frozen=True)
class LatentRanks:
    """Ranks of the per-head keys and values an MLA layer forms for N tokens (`latent_ranks`)."""

    tokens: int  # N, the rows of each matrix
    width: int  # H (d_nope + d_v): the columns of [K^C V], all heads side by side
    d_c: int  # the latent's width: the bound on [K^C V] before RoPE
    d_rope: int  # the shared RoPE key's width
    before_rope: int  # rank of [K^C V]: content keys and values, no rotation
    content_rotated: int  # rank of [R(t) K^C V]: RoPE on the content keys (the counterfactual)
    with_rope_key: int  # rank of [K^C k^R V]: what the layer forms from its cache (<= d_c + d_rope)


def latent_ranks(layer, x: torch.Tensor) -> LatentRanks:
    """Why the latent can stand in for every head's key and value, and only before RoPE.
    For the tokens of x (B, T, d_model; all B*T rows used), in float64: [K^C V] = c [W_UK;
    W_UV]^T has rank <= d_c whatever the number of heads. Rotating each content key by its
    token's position, k_t -> R(t) k_t, is a different linear map per token, so the rotated
    keys leave that d_c-dimensional space and the rank grows past d_c: no latent of width
    d_c could then hold them. The decoupled RoPE key adds at most d_rope."""
    _check_input(layer, x)
    if layer.d_nope % 2:
        raise ValueError(f"RoPE on the content key needs an even qk_nope_head_dim, "
                         f"not {layer.d_nope}.")
    layer64 = copy.deepcopy(layer).double()
    B, T, _ = x.shape
    with torch.no_grad():
        _, _, latent, k_rope = layer64._project(x.double(), 0)
        k, v = layer64._expand(latent, k_rope)  # (B, H, T, d_nope + d_rope), (B, H, T, d_v)
        k_c = k[..., : layer.d_nope]
        cos, sin = rope_cos_sin(torch.arange(T), layer.d_nope, layer.rope_base)
        rotated = apply_rope(k_c, cos.double(), sin.double())

        def rank(*parts) -> int:  # (B, H, T, w) pieces -> rows = tokens, columns = all heads
            m = torch.cat([p.transpose(1, 2).flatten(2) for p in parts], -1).flatten(0, 1)
            return int(torch.linalg.matrix_rank(m))

        return LatentRanks(tokens=B * T, width=layer.n_heads * (layer.d_nope + layer.d_v),
                           d_c=layer.kv_lora_rank, d_rope=layer.d_rope,
                           before_rope=rank(k_c, v), content_rotated=rank(rotated, v),
                           with_rope_key=rank(k_c, k_rope[:, None], v))
