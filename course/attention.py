"""The transformer block, written out so a learner can read it (notebook 01).

* `RMSNorm`: x / rms(x) * g  (no mean subtraction, no bias; as in Llama and DeepSeek).
* `SwiGLU`: W2 (silu(W1 x) * W3 x), the MLP of Llama, Mixtral and DeepSeek.
* `CausalSelfAttention`: multi-head attention with a causal mask, optional rotary
  position embedding (RoPE) and a KV cache for decoding.
* `Block`: pre-norm residual block, x + attn(norm(x)) then x + ffn(norm(x)).

Every linear layer is made by a `linear(in_features, out_features)` factory so the model
can swap in BF16 or FP8 linears (notebook 10) without touching this file.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Linear = Callable[[int, int], nn.Module]


def plain_linear(in_features: int, out_features: int) -> nn.Module:
    return nn.Linear(in_features, out_features, bias=False)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(-1, keepdim=True).add(self.eps).rsqrt()
        return x * rms * self.weight


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int, linear: Linear = plain_linear):
        super().__init__()
        self.w1, self.w3 = linear(dim, hidden), linear(dim, hidden)  # gate, up
        self.w2 = linear(hidden, dim)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def rope_cos_sin(positions: torch.Tensor, dim: int, base: float = 10000.0):
    """cos and sin tables (T, dim) for rotary embeddings at the given integer positions."""
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i+dim/2}) of the last dim by position-dependent angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    # subtle: tables are FP32; cast so a BF16 model stays BF16 (mixed dtypes fail in matmul)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def causal_mask(T: int, offset: int = 0, device=None) -> torch.Tensor:
    """(T, offset+T) boolean mask, True where query t may attend to key s (s <= t+offset)."""
    q = torch.arange(T, device=device)[:, None] + offset
    k = torch.arange(offset + T, device=device)[None, :]
    return k <= q


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offset: int = 0):
    """Scaled dot-product attention with a causal mask.

    q (B, H, T, d), k (B, H, S, d), v (B, H, S, dv) with S = offset + T.
    Returns the output (B, H, T, dv) and the attention weights (B, H, T, S).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S)
    mask = causal_mask(q.shape[-2], offset, q.device)
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return weights @ v, weights


class KVCache:
    """Keys and values of past tokens for one layer: (B, H, S, d) each, grown by `append`."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)
        return self.k, self.v

    @property
    def nbytes(self) -> int:
        if self.k is None:
            return 0
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; `rope=False` gives the classic (position-free) form
    that `nn.MultiheadAttention` computes."""

    def __init__(self, dim: int, n_heads: int, linear: Linear = plain_linear,
                 rope: bool = True, rope_base: float = 10000.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"The width {dim} is not divisible by {n_heads} heads.")
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.rope, self.rope_base = rope, rope_base
        self.wq, self.wk, self.wv = linear(dim, dim), linear(dim, dim), linear(dim, dim)
        self.wo = linear(dim, dim)
        self.store_weights = False
        self.last_weights: torch.Tensor | None = None  # (B, H, T, S) when store_weights

    def new_cache(self) -> KVCache:
        return KVCache()

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        offset = len(cache) if cache is not None else 0
        # 1) project, then split the width into heads: (B, T, D) -> (B, H, T, hd)
        q, k, v = (w(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
                   for w in (self.wq, self.wk, self.wv))
        if self.rope:
            cos, sin = rope_cos_sin(torch.arange(offset, offset + T, device=x.device),
                                    self.head_dim, self.rope_base)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.append(k, v)
        # 2) each head mixes the values of the tokens it attends to
        out, weights = attend(q, k, v, offset)
        if self.store_weights:
            self.last_weights = weights.detach()
        # 3) concatenate the heads and project back to the residual stream
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))


class Block(nn.Module):
    """Pre-norm transformer block. `attn` and `ffn` are any modules mapping (B, T, D) to
    (B, T, D); attention modules also take a per-layer cache."""

    def __init__(self, dim: int, attn: nn.Module, ffn: nn.Module, eps: float = 1e-6):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(dim, eps), attn
        self.ffn_norm, self.ffn = RMSNorm(dim, eps), ffn

    def forward(self, x: torch.Tensor, cache=None, skip_attn: bool = False,
                skip_ffn: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns the new residual stream and the two updates written into it."""
        a = self.attn(self.attn_norm(x), cache)
        a = torch.zeros_like(a) if skip_attn else a
        x = x + a
        m = torch.zeros_like(x) if skip_ffn else self.ffn(self.ffn_norm(x))
        return x + m, a, m
