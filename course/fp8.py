"""FP8 as DeepSeek-V3 trains with it (report §3.3): the formats, fine-grained scaling, and
an FP8 linear layer whose three GEMMs (Fprop, Dgrad, Wgrad) run on FP8 operands.

* The formats, rounding and decoding live in `course.fp8_formats` (re-exported here).
* `quantize(x, fmt, block)` scales by amax / format max, online, like `act_quant` in
  DeepSeek-V3's `inference/kernel.py`: one scale per tensor (`block=None`), per 1×128 tile
  (activations) or per 128×128 block (weights). Shapes that do not divide the block are
  zero-padded: the last tile or block is simply smaller.
* `FP8Linear` quantizes the operands of its three GEMMs and multiplies the FP8 numbers
  with their scales. The report's GEMM sums each 128-wide group of products and applies
  the group's scales when it promotes the sum to FP32 (Fig. 7); `course.fp8_accum.
  scaled_gemm` does exactly that, while `fp8_matmul` (used by FP8Linear) dequantizes first
  and does one FP32 matmul: the same sum up to FP32 rounding order. A product of two FP8
  numbers is exact in FP32, so what a CPU does not reproduce is only the narrow
  accumulator inside a group, which `course.fp8_accum` emulates.

Left out: the E5M6 format for cached attention outputs, power-of-two scales, FP8 caching
of SwiGLU inputs and FP8 communication (report §3.3.3).
"""

from __future__ import annotations

import torch
from torch import nn

from course import validate
from course.fp8_formats import (  # noqa: F401  (notebook 10 reads them as fp8.*)
    DTYPES,
    FORMATS,
    FormatSpec,
    checked_tensor,
    format_spec,
    representable_values,
    round_to,
    to_float,
    torch_dtype,
)
from course.memory import RECIPES

MAX_ELEMENTS = 2**24  # largest generated activation (tokens x channels), 64 MB in FP32
TILE = (1, 128)  # activations: per token, per 128 channels (report §3.3.2)
BLOCK = (128, 128)  # weights: per 128 input × 128 output channels


# ----------------------------------------------------------------------- fine-grained scaling


def _check_block(x: torch.Tensor, block) -> tuple[int, int] | None:
    if block is None:
        return None
    allowed = "None, (1, 128), (128, 128) or another (rows, cols) of whole numbers ≥ 1"
    if not isinstance(block, (tuple, list)) or len(block) != 2:
        raise ValueError(f"block must be {allowed}, not {block!r}.")
    try:
        rows, cols = (validate.positive_int("block", b) for b in block)
    except ValueError:
        raise ValueError(f"block must be {allowed}, not {block!r}.") from None
    if x.dim() < 2:
        raise ValueError("Tile or block scaling needs a tensor with at least 2 dimensions.")
    return rows, cols


def _blocks(x2d: torch.Tensor, bm: int, bn: int) -> torch.Tensor:
    """Zero-pad (R, C) to whole blocks and view it as (R/bm, bm, C/bn, bn)."""
    R, C = x2d.shape
    # A block wider than the tensor is the whole tensor: no padding needed.
    bm, bn = min(bm, max(R, 1)), min(bn, max(C, 1))
    pr, pc = -R % bm, -C % bn
    if pr or pc:
        x2d = torch.nn.functional.pad(x2d, (0, pc, 0, pr))
    return x2d.reshape((R + pr) // bm, bm, (C + pc) // bn, bn)


def _unblock(xb: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of `_blocks`: (R/bm, bm, C/bn, bn) back to `shape` (R, C), padding cut off."""
    a, bm, b, bn = xb.shape
    full = xb.reshape(a * bm, b * bn)
    return full if full.shape == shape else full[: shape[0], : shape[1]].contiguous()


def quantize(x: torch.Tensor, fmt: str = "e4m3", block=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale `x` so each tensor/tile/block's max-abs lands on the format max, then cast.

    x (..., C); block None → scale (), (bm, bn) → scale (ceil(R/bm), ceil(C/bn)) with the
    leading dimensions flattened into R rows. Returns (q in the FP8 dtype, FP32 scale),
    and x ≈ dequantize(q, scale, block). An all-zero group gets scale 1.
    """
    x = checked_tensor("x", x)
    _check_block(x, block)
    return _quantize(x, fmt, block)


def _quantize(x: torch.Tensor, fmt: str, block) -> tuple[torch.Tensor, torch.Tensor]:
    """`quantize` without the argument checks (FP8Linear calls it three times per step)."""
    fmax, dtype = format_spec(fmt).max, torch_dtype(fmt)
    x = x.float()
    blk = _check_block(x, block)
    if blk is None:
        amax = x.abs().max() if x.numel() else torch.tensor(0.0)
        scale = torch.where(amax > 0, amax / fmax, torch.ones_like(amax))
        # No clamp needed: |x / scale| <= fmax up to FP32 rounding, which the cast's
        # round-to-nearest absorbs.
        return (x / scale).to(dtype), scale
    x2d = x.reshape(-1, x.shape[-1])
    xb = _blocks(x2d, *blk)  # (R/bm, bm, C/bn, bn)
    amax = xb.abs().amax(dim=(1, 3))
    scale = torch.where(amax > 0, amax / fmax, torch.ones_like(amax))
    q = _unblock((xb / scale[:, None, :, None]).to(dtype), x2d.shape)
    return q.view(x.shape), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor, block=None) -> torch.Tensor:
    """Undo `quantize`: q (..., C) times its scales, in float32, same shape as q."""
    if not (torch.is_tensor(q) and torch.is_tensor(scale)):
        raise ValueError("dequantize takes the tensors q and scale that quantize returned.")
    blk = _check_block(q, block)
    if blk is None:
        return to_float(q) * scale
    q2d = to_float(q).reshape(-1, q.shape[-1])
    xb = _blocks(q2d, *blk)
    if tuple(scale.shape) != (xb.shape[0], xb.shape[2]):
        raise ValueError(f"scale has shape {tuple(scale.shape)}, expected one per block "
                         f"{(xb.shape[0], xb.shape[2])}.")
    return _unblock(xb * scale[:, None, :, None], q2d.shape).view(q.shape)


def quantization_error(x: torch.Tensor, fmt: str = "e4m3", block=None) -> dict:
    """How a quantize→dequantize round trip hurts x: mean of |x̂−x|/|x| over non-zero
    entries (the typical entry's error), norm-wise ‖x̂−x‖/‖x‖ (dominated by the largest
    entries), and the fraction of non-zero entries flushed to zero (underflow)."""
    x = checked_tensor("x", x).float()
    xh = dequantize(*quantize(x, fmt, block), block)
    nonzero = x != 0
    rel = (xh - x).abs()[nonzero] / x.abs()[nonzero]
    return {"rel_error": rel.mean().item() if rel.numel() else 0.0,
            "norm_error": ((xh - x).norm() / x.norm().clamp(min=1e-30)).item(),
            "underflow": ((xh == 0) & nonzero).sum().item() / max(int(nonzero.sum()), 1)}


SCALINGS = {"per tensor": None, "1×128 tiles": TILE, "128×128 blocks": BLOCK}


def compare_scalings(outlier: float = 1e4, fmt: str = "e4m3", tokens: int = 256,
                     channels: int = 512, seed: int = 0) -> dict:
    """`quantization_error` of one activation with an outlier, for each of `SCALINGS`."""
    torch_dtype(fmt)
    x = activations_with_outlier(tokens, channels, outlier, seed)
    return {label: quantization_error(x, fmt, block) for label, block in SCALINGS.items()}


def activations_with_outlier(tokens: int = 256, channels: int = 512, outlier: float = 100.0,
                             seed: int = 0) -> torch.Tensor:
    """A (tokens, channels) activation: N(0, 1) entries plus one token with one huge
    channel of size `outlier` (the outliers LLM activations are known for)."""
    outlier = validate.positive("outlier", outlier)
    tokens = validate.integer("tokens", tokens, 1, MAX_ELEMENTS)
    channels = validate.integer("channels", channels, 1, MAX_ELEMENTS // tokens)
    if outlier > torch.finfo(torch.float32).max:
        raise ValueError(f"outlier must fit in float32 (≤ 3.4e38), not {outlier:g}.")
    g = torch.Generator().manual_seed(validate.integer("seed", seed, 0, 2**63 - 1))
    x = torch.randn(tokens, channels, generator=g)
    x[tokens // 3, channels // 5] = outlier
    return x


# ----------------------------------------------------------------------------- FP8 linear


def fp8_matmul(qa, sa, qb, sb, a_block=TILE, b_block=TILE) -> torch.Tensor:
    """A @ Bᵀ from FP8 operands qa (M, K), qb (N, K): dequantize both, one FP32 matmul.

    Equal to `course.fp8_accum.scaled_gemm`, which applies the scales per K-group as the
    hardware does, up to FP32 rounding order: every scale is constant over a 128-group of
    K, so it can be applied before or after the group's sum. Faster on a CPU.
    """
    return dequantize(qa, sa, a_block) @ dequantize(qb, sb, b_block).t()


class _FP8LinearFn(torch.autograd.Function):
    """y = x Wᵀ with all three GEMMs on FP8 operands (report §3.3, Fig. 6)."""

    @staticmethod
    def forward(ctx, x2d, weight, fmt):
        qx, sx = _quantize(x2d, fmt, TILE)  # 1x128 tiles along the input channels
        qw, sw = _quantize(weight, fmt, BLOCK)  # 128x128 blocks
        ctx.save_for_backward(qx, sx, qw, sw)  # activations are cached in FP8 (§3.3.3)
        ctx.fmt = fmt
        return fp8_matmul(qx, sx, qw, sw, TILE, BLOCK)  # Fprop

    @staticmethod
    def backward(ctx, grad_out):
        qx, sx, qw, sw = ctx.saved_tensors
        fmt = ctx.fmt
        # Dgrad: dX = dY W, reduction over the output channels: tiles of dY along them,
        # and the same 128x128 weight blocks read transposed.
        qg, sg = _quantize(grad_out, fmt, TILE)
        grad_x = dequantize(qg, sg, TILE) @ dequantize(qw, sw, BLOCK)
        # Wgrad: dW = dYᵀ X, reduction over tokens: both operands re-tiled 1x128 along
        # tokens (the report's 1x128 → 128x1 re-tiling), from the cached FP8 activations.
        qgt, sgt = _quantize(grad_out.t(), fmt, TILE)
        qxt, sxt = _quantize(dequantize(qx, sx, TILE).t(), fmt, TILE)
        grad_w = fp8_matmul(qgt, sgt, qxt, sxt, TILE, TILE)
        return grad_x, grad_w, None


class FP8Linear(nn.Linear):
    """A bias-free linear whose Fprop, Dgrad and Wgrad use FP8 operands with fine-grained
    scales; the master weight `.weight` stays FP32 (report §3.3.3). x (..., in) → (..., out)."""

    def __init__(self, in_features: int, out_features: int, fmt: str = "e4m3"):
        in_features = validate.integer("in_features", in_features, 1, MAX_ELEMENTS)
        out_features = validate.integer("out_features", out_features, 1,
                                        MAX_ELEMENTS // in_features)
        format_spec(fmt)
        super().__init__(in_features, out_features, bias=False)
        if fmt == "bf16":
            raise ValueError("FP8Linear computes in e4m3 or e5m2; use precision='bf16' for BF16.")
        self.fmt = fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"FP8Linear({self.in_features} → {self.out_features}) needs inputs "
                             f"whose last dimension is {self.in_features}, got shape "
                             f"{tuple(x.shape)}.")
        x2d = x.reshape(-1, self.in_features)
        y = _FP8LinearFn.apply(x2d, self.weight, self.fmt)
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, fmt={self.fmt}"


_V3 = RECIPES["deepseek-fp8"]
#: Bytes per parameter DeepSeek-V3 keeps while training (report §3.3.3): FP32 master
#: weights and gradients, AdamW moments in BF16, from `course.memory.RECIPES`'s
#: "deepseek-fp8" recipe. The FP8 weight copy is made per GEMM.
TRAINING_BYTES_PER_PARAM = {"master weight (FP32)": _V3.master, "gradient (FP32)": _V3.grads,
                            "AdamW first moment (BF16)": _V3.moment,
                            "AdamW second moment (BF16)": _V3.moment}
