"""Multi-head Latent Attention (MLA), DeepSeek-V2 2.1 / DeepSeek-V3 2.1.1, at any size.

Follows `MLA` in DeepSeek-V3's `inference/model.py` (names kept: wq_a, q_norm, wq_b, wkv_a,
kv_norm, wkv_b, wo). Per token t:
    c_t^KV = kv_norm(W^DKV h_t)   (d_c numbers)       k_t^R = RoPE(W^KR h_t)  (d_h^R, ONE key)
    k_t,i^C, v_t,i = W^UK_i c_t^KV, W^UV_i c_t^KV     per head i, from the latent
    q_t,i = [q_t,i^C ; RoPE(q_t,i^R)], queries directly (q_lora_rank 0) or via a latent c_t^Q.
Only c_t^KV and k_t^R are cached (`MLACache`). Decoding reads them in one of three ways,
chosen by the layer's `path` attribute:
    "naive"     expand the cache to per-head K and V every step, then attend (attn_impl="naive"
                in DeepSeek's code, but there the expanded K/V are cached; here only the latent)
    "absorbed"  fold W^UK into the query and W^UV into the output: attention runs in the
                d_c-dimensional latent space and K, V are never formed (attn_impl="absorb")
    "mha"       the counterfactual: cache the expanded per-head K and V (`ExpandedKVCache`)
All three compute the same function. Left out: YaRN (long-context RoPE scaling), sharding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course import validate
from course.attention import RMSNorm, apply_rope, causal_mask, plain_linear, rope_cos_sin

PATHS = ("naive", "absorbed", "mha")
MAX_CONTEXT = 10**7  # cached tokens filled_cache builds at most


class _Growable:
    """Preallocated (B, capacity, width) buffers written in place, as serving engines do;
    capacity doubles when full, so appending one token never copies the whole cache."""

    def __init__(self, widths: dict[str, int]):
        self.widths, self.buffers, self.length = widths, {}, 0

    def __len__(self) -> int:
        return self.length

    def reserve(self, batch: int, capacity: int, dtype, device) -> None:
        old = self.buffers
        self.buffers = {k: torch.zeros(batch, capacity, w, dtype=dtype, device=device)
                        for k, w in self.widths.items()}
        for k, buf in old.items():
            self.buffers[k][:, : self.length] = buf[:, : self.length]

    def append(self, **parts: torch.Tensor) -> list[torch.Tensor]:
        """parts: name -> (B, T, width); returns every name's (B, S, width) view so far."""
        first = next(iter(parts.values()))
        B, T = first.shape[:2]
        need = self.length + T
        if not self.buffers or need > next(iter(self.buffers.values())).shape[1]:
            self.reserve(B, max(need, 2 * self.length, 16), first.dtype, first.device)
        for k, v in parts.items():
            self.buffers[k][:, self.length: need] = v
        self.length = need
        return [self.buffers[k][:, :need] for k in parts]

    @property
    def nbytes(self) -> int:
        """Bytes of the cached tokens (not of the spare capacity)."""
        return sum(b[:, : self.length].numel() * b.element_size() for b in self.buffers.values())


class MLACache(_Growable):
    """MLA's cache for one layer: the latent c^KV (B, S, d_c) and the shared RoPE key
    k^R (B, S, d_h^R). Nothing per head."""

    def __init__(self, kv_lora_rank: int, qk_rope_head_dim: int):
        validate.positive_int("kv_lora_rank", kv_lora_rank)
        validate.positive_int("qk_rope_head_dim", qk_rope_head_dim)
        super().__init__(dict(latent=kv_lora_rank, k_rope=qk_rope_head_dim))


class ExpandedKVCache(_Growable):
    """What MHA would cache for the same layer: per-head keys (n_h * (d_h + d_h^R)) and
    values (n_h * d_v) for every token, flattened to (B, S, width)."""

    def __init__(self, n_heads: int, qk_head_dim: int, v_head_dim: int):
        for name, n in (("n_heads", n_heads), ("qk_head_dim", qk_head_dim),
                        ("v_head_dim", v_head_dim)):
            validate.positive_int(name, n)
        super().__init__(dict(k=n_heads * qk_head_dim, v=n_heads * v_head_dim))


class MLAttention(nn.Module):
    """MLA with a causal mask. `cfg` needs d_model, n_heads, q_lora_rank, kv_lora_rank,
    qk_nope_head_dim, qk_rope_head_dim, v_head_dim (and optionally rope_base).
    forward(x (B, T, d), cache=None) -> (B, T, d)."""

    def __init__(self, cfg, linear=plain_linear, path: str = "naive"):
        super().__init__()
        for name in ("d_model", "kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "n_heads",
                     "qk_rope_head_dim"):
            validate.positive_int(name, getattr(cfg, name, None))
        validate.non_negative_int("q_lora_rank", getattr(cfg, "q_lora_rank", 0) or 0)
        validate.choice("decode path", path, PATHS)
        if cfg.qk_rope_head_dim < 2 or cfg.qk_rope_head_dim % 2:
            raise ValueError("The RoPE key width qk_rope_head_dim must be even and ≥ 2.")
        d, H = cfg.d_model, cfg.n_heads
        self.n_heads, self.kv_lora_rank = H, cfg.kv_lora_rank
        self.d_nope, self.d_rope, self.d_v = (cfg.qk_nope_head_dim, cfg.qk_rope_head_dim,
                                              cfg.v_head_dim)
        self.q_lora_rank = getattr(cfg, "q_lora_rank", 0) or 0
        self.rope_base = getattr(cfg, "rope_base", 10000.0)
        qk = self.d_nope + self.d_rope
        if self.q_lora_rank:  # W^DQ, norm, then W^UQ and W^QR in one matrix
            self.wq_a, self.q_norm = linear(d, self.q_lora_rank), RMSNorm(self.q_lora_rank)
            self.wq_b = linear(self.q_lora_rank, H * qk)
        else:
            self.wq = linear(d, H * qk)
        self.wkv_a = linear(d, self.kv_lora_rank + self.d_rope)  # W^DKV and W^KR
        self.kv_norm = RMSNorm(self.kv_lora_rank)
        self.wkv_b = linear(self.kv_lora_rank, H * (self.d_nope + self.d_v))  # W^UK, W^UV
        self.wo = linear(H * self.d_v, d)
        self.scale = 1 / math.sqrt(qk)
        self.path = path
        self.store_weights = False
        self.last_weights: torch.Tensor | None = None

    def new_cache(self):
        if self.path == "mha":
            return ExpandedKVCache(self.n_heads, self.d_nope + self.d_rope, self.d_v)
        return MLACache(self.kv_lora_rank, self.d_rope)

    def up_weight(self) -> torch.Tensor:
        """W^UK and W^UV as the layer computes them, (H, d_nope + d_v, d_c). For a plain
        linear that is its weight; for BF16/FP8 linears, their map applied to the identity."""
        if type(self.wkv_b) is nn.Linear:
            w = self.wkv_b.weight
        else:
            eye = torch.eye(self.kv_lora_rank, device=self.wkv_b.weight.device)
            w = self.wkv_b(eye).T
        return w.view(self.n_heads, self.d_nope + self.d_v, self.kv_lora_rank)

    def _project(self, x: torch.Tensor, offset: int):
        """Queries (B, H, T, d_nope), (B, H, T, d_rope); latent (B, T, d_c); k^R (B, T, d_rope)."""
        B, T, _ = x.shape
        q = self.wq(x) if not self.q_lora_rank else self.wq_b(self.q_norm(self.wq_a(x)))
        q = q.view(B, T, self.n_heads, -1).transpose(1, 2)
        q_nope, q_rope = q.split([self.d_nope, self.d_rope], dim=-1)
        latent, k_rope = self.wkv_a(x).split([self.kv_lora_rank, self.d_rope], dim=-1)
        cos, sin = rope_cos_sin(torch.arange(offset, offset + T, device=x.device),
                                self.d_rope, self.rope_base)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        # subtle: k^R is rotated once and shared by every head (DeepSeek-V3 eq. 3)
        return q_nope, apply_rope(q_rope, cos, sin), self.kv_norm(latent), apply_rope(
            k_rope, cos, sin)

    def _expand(self, latent: torch.Tensor, k_rope: torch.Tensor):
        """Per-head K (B, H, S, d_nope + d_rope) and V (B, H, S, d_v) from the latent."""
        B, S, _ = latent.shape
        kv = self.wkv_b(latent).view(B, S, self.n_heads, -1).transpose(1, 2)
        k_nope, v = kv.split([self.d_nope, self.d_v], dim=-1)
        k_rope = k_rope[:, None].expand(B, self.n_heads, S, self.d_rope)
        return torch.cat([k_nope, k_rope], dim=-1), v

    def _softmax(self, scores: torch.Tensor, offset: int) -> torch.Tensor:
        mask = causal_mask(scores.shape[-2], offset, scores.device)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        if self.store_weights:
            self.last_weights = weights.detach()
        return weights

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(PATHS)}, not {self.path!r}.")
        if cache is not None and isinstance(cache, ExpandedKVCache) != (self.path == "mha"):
            raise ValueError("This cache was made for another decode path: call new_cache() "
                             "after setting path.")
        B, T, _ = x.shape
        offset = len(cache) if cache is not None else 0
        q_nope, q_rope, latent, k_rope = self._project(x, offset)
        if self.path == "absorbed":
            out = self._absorbed(q_nope, q_rope, latent, k_rope, cache, offset)
        else:
            if self.path == "mha":
                k, v = self._expand(latent, k_rope)
                if cache is not None:  # store per-head K, V flattened per token
                    k, v = cache.append(k=k.transpose(1, 2).flatten(2),
                                        v=v.transpose(1, 2).flatten(2))
                    k = k.view(B, -1, self.n_heads, self.d_nope + self.d_rope).transpose(1, 2)
                    v = v.view(B, -1, self.n_heads, self.d_v).transpose(1, 2)
            else:  # naive: cache the latent, expand all of it every step
                if cache is not None:
                    latent, k_rope = cache.append(latent=latent, k_rope=k_rope)
                k, v = self._expand(latent, k_rope)
            q = torch.cat([q_nope, q_rope], dim=-1)
            out = self._softmax(q @ k.transpose(-2, -1) * self.scale, offset) @ v
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))

    def _absorbed(self, q_nope, q_rope, latent, k_rope, cache, offset) -> torch.Tensor:
        """Attention in latent space. q^C_i . (W^UK_i c) = (W^UK_i^T q^C_i) . c, and
        sum_s a_s W^UV_i c_s = W^UV_i (sum_s a_s c_s): matrix products re-associated."""
        if cache is not None:
            latent, k_rope = cache.append(latent=latent, k_rope=k_rope)
        w = self.up_weight().to(latent.dtype)
        w_uk, w_uv = w[:, : self.d_nope], w[:, self.d_nope:]  # (H, d_nope, d_c), (H, d_v, d_c)
        q_latent = torch.einsum("bhtd,hdc->bhtc", q_nope, w_uk)  # (B, H, T, d_c)
        scores = (torch.einsum("bhtc,bsc->bhts", q_latent, latent)
                  + torch.einsum("bhtr,bsr->bhts", q_rope, k_rope)) * self.scale
        mixed = torch.einsum("bhts,bsc->bhtc", self._softmax(scores, offset), latent)
        return torch.einsum("bhtc,hdc->bhtd", mixed, w_uv)  # (B, H, T, d_v)


# ------------------------------------------------------- absorption, one head at a time


def content_scores(q_nope: torch.Tensor, w_uk: torch.Tensor, latent: torch.Tensor,
                   absorbed: bool = True) -> torch.Tensor:
    """One head's content scores q_t . k_s with k_s = W_UK c_s: q_nope (T, d_h), w_uk (d_h,
    d_c), latent (S, d_c) -> (T, S). absorbed=False forms every key (S, d_h) first, as the
    naive path does; absorbed=True multiplies each query by W_UK once, (W_UK^T q) . c_s,
    and never forms a key. Re-associated products: the same scores."""
    for name, t in (("q_nope", q_nope), ("w_uk", w_uk), ("latent", latent)):
        if not torch.is_tensor(t) or t.dim() != 2:
            raise ValueError(f"{name} must be a 2-D tensor, not {type(t).__name__} "
                             f"of shape {tuple(getattr(t, 'shape', ()))}.")
    if q_nope.shape[1] != w_uk.shape[0] or latent.shape[1] != w_uk.shape[1]:
        raise ValueError(f"Shapes do not chain: q_nope {tuple(q_nope.shape)}, w_uk "
                         f"{tuple(w_uk.shape)}, latent {tuple(latent.shape)}; need (T, d_h), "
                         "(d_h, d_c), (S, d_c).")
    if absorbed:
        return (q_nope @ w_uk) @ latent.T
    return q_nope @ (latent @ w_uk.T).T


# ----------------------------------------------------------------------------- timing


def filled_cache(layer: MLAttention, context: int, batch: int = 1, dtype=torch.float32,
                 generator: torch.Generator | None = None):
    """A cache of the layer's kind already holding `context` tokens, made by running the
    layer's own projections on random inputs (cheaper than a prefill, same contents)."""
    context = validate.integer("context", context, 1, MAX_CONTEXT)
    batch = validate.integer("batch", batch, 1, 4096)
    cache = layer.new_cache()
    device = next(layer.parameters()).device
    width = layer.wkv_a.weight.shape[1]
    cache.reserve(batch, context + 64, dtype, device)
    chunk = max(1, min(context, 4096))
    with torch.no_grad():
        for start in range(0, context, chunk):
            n = min(chunk, context - start)
            h = torch.randn(batch, n, width, generator=generator).to(device, dtype)
            _, _, latent, k_rope = layer._project(h, start)
            if isinstance(cache, MLACache):
                cache.append(latent=latent, k_rope=k_rope)
            else:
                k, v = layer._expand(latent, k_rope)
                cache.append(k=k.transpose(1, 2).flatten(2), v=v.transpose(1, 2).flatten(2))
    return cache


def time_decode_step(layer: MLAttention, path: str, context: int, batch: int = 1,
                     repeats: int = 5, dtype=torch.float32, seed: int = 0) -> float:
    """Best-of-`repeats` seconds (`course.timing.best_seconds`, one untimed warm-up) of one
    decode step (one new token per sequence) at `context` cached tokens, for the layer
    decoding along `path` ("naive", "absorbed" or "mha"). Each call appends its token."""
    from course import timing

    validate.choice("decode path", path, PATHS)
    context = validate.integer("context", context, 1, MAX_CONTEXT)
    batch = validate.integer("batch", batch, 1, 4096)
    repeats = validate.integer("repeats", repeats, 1, 1000)
    old, layer.path = layer.path, path
    try:
        gen = torch.Generator().manual_seed(seed)
        cache = filled_cache(layer, context, batch, dtype, gen)
        device = next(layer.parameters()).device
        x = torch.randn(batch, 1, layer.wkv_a.weight.shape[1], generator=gen).to(device, dtype)
        with torch.no_grad():
            return timing.best_seconds(lambda: layer(x, cache), repeats, device=device)
    finally:
        layer.path = old


def decode_layer(sizes: dict, device=None, dtype=None) -> MLAttention:
    """One MLA layer at the `mla_decode` preset's sizes (DeepSeek-V3 widths when realistic),
    in BF16 on CUDA and FP32 on CPU, with random weights (timing does not need trained ones)."""
    from types import SimpleNamespace

    from course.device import device as pick_device

    if not isinstance(sizes, dict):
        raise ValueError(f"sizes must be a dict of layer widths (a preset), not {sizes!r}.")
    device = device or pick_device()
    dtype = dtype or (torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32)
    keys = ("d_model", "n_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
            "qk_rope_head_dim", "v_head_dim")
    cfg = SimpleNamespace(**{k: sizes.get(k, 0) for k in keys})
    return MLAttention(cfg).to(device, dtype).eval()


def measure_decode(sizes: dict | None = None, contexts=None, batch: int | None = None,
                   repeats: int | None = None) -> dict:
    """Measured decode-step seconds per path ("mha", "naive", "absorbed") against context
    length, at the `mla_decode` preset for the current size (toy on CPU, V3 dims on CUDA)."""
    from course.presets import preset

    sizes = preset("mla_decode") if sizes is None else sizes
    layer = decode_layer(sizes)
    contexts = tuple(validate.integer("context", c, 1, MAX_CONTEXT)
                     for c in (sizes.get("contexts", ()) if contexts is None else contexts))
    if not contexts:
        raise ValueError("contexts must name at least one context length.")
    batch = validate.positive_int("batch", sizes.get("batch", 1) if batch is None else batch)
    repeats = validate.positive_int("repeats",
                                    sizes.get("repeats", 5) if repeats is None else repeats)
    dtype = next(layer.parameters()).dtype
    seconds = {p: [time_decode_step(layer, p, c, batch, repeats, dtype) for c in contexts]
               for p in ("mha", "naive", "absorbed")}
    return dict(contexts=contexts, batch=batch, seconds=seconds, dtype=str(dtype),
                device=str(next(layer.parameters()).device))
