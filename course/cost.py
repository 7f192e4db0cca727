"""What a forward and a backward pass cost: FLOPs counted by hand and time measured in
torch (notebooks 01 and 02).

A matmul (m, k) @ (k, n) costs 2·m·k·n FLOPs (one multiply and one add per term). The
backward of a linear layer y = x W needs two matmuls of the same size, one for the input
gradient (dy Wᵀ) and one for the weight gradient (xᵀ dy), so it costs about twice the
forward: forward + backward ≈ 3 × forward, the origin of "6·N·D" (notebook 05).
Elementwise work (SiLU, softmax, norms) is left out of the counts; it is small next to
the matmuls at these widths but not free, so measured ratios drift a little from 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course import device as dev
from course import timing, validate
from course.attention import Block, CausalSelfAttention, SwiGLU
from course.presets import preset

MAX_ELEMENTS = 2**32  # largest tensor a timing allocates (the realistic block needs 2**31)


def _sizes(**sizes) -> tuple:
    return tuple(validate.positive_int(name, n) for name, n in sizes.items())


def _fits(**products) -> None:
    for what, n in products.items():
        if n > MAX_ELEMENTS:
            raise ValueError(f"{what} would hold {n:,} numbers, more than the "
                             f"{MAX_ELEMENTS:,} a timing here allocates; use smaller sizes.")


def swiglu_flops(tokens: int, d_model: int, d_ff: int) -> int:
    """Forward FLOPs of a SwiGLU MLP: three (d_model × d_ff) matmuls per token."""
    tokens, d_model, d_ff = _sizes(tokens=tokens, d_model=d_model, d_ff=d_ff)
    return 2 * tokens * 3 * d_model * d_ff


def block_flops(batch: int, seq_len: int, d_model: int, d_ff: int) -> int:
    """Forward FLOPs of one pre-norm MHA block as `course.attention.Block` computes it:
    q, k, v, o projections, the full (T × T) scores and weighted values (the causal mask
    is applied after the product, so the masked half is computed too) and the SwiGLU."""
    batch, seq_len, d_model, d_ff = _sizes(batch=batch, seq_len=seq_len, d_model=d_model,
                                           d_ff=d_ff)
    tokens = batch * seq_len
    projections = 2 * tokens * 4 * d_model * d_model
    scores_and_values = 2 * 2 * batch * seq_len * seq_len * d_model
    return projections + scores_and_values + swiglu_flops(tokens, d_model, d_ff)


@dataclass
class PassTiming:
    forward_s: float  # median seconds of one forward pass
    backward_s: float | None  # median seconds of one backward pass (None: not measured)
    forward_flops: int  # counted by hand
    where: str  # device and dtype, e.g. "cpu float32"
    fastest_forward_s: float | None = None  # the least-disturbed run (robust under load)
    fastest_backward_s: float | None = None

    @property
    def ratio(self) -> float:
        """Backward time over forward time (about 2 for matmul-bound layers)."""
        return self.backward_s / self.forward_s

    @property
    def forward_tflops(self) -> float:
        return self.forward_flops / self.forward_s / 1e12

    @property
    def backward_tflops(self) -> float:
        return 2 * self.forward_flops / self.backward_s / 1e12


def _default_dtype(device: torch.device) -> torch.dtype:
    # BF16 on a GPU (its tensor cores' native format); FP32 on a CPU.
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def time_passes(module: torch.nn.Module, x: torch.Tensor, flops: int, repeats: int = 5,
                backward: bool = True) -> PassTiming:
    """Median forward (and backward) time of `module` on input `x` after one warm-up.

    The backward pass computes gradients for the input and every weight, as inside a
    deep network; its time is measured separately from the forward that built the graph.
    """
    if not isinstance(module, torch.nn.Module) or not torch.is_tensor(x):
        raise ValueError("time_passes takes a torch module and an input tensor.")
    repeats = validate.integer("repeats", repeats, 1, 1000)
    device = x.device

    def fresh_grads() -> None:
        x.grad = None
        module.zero_grad(set_to_none=True)

    def forward(_):
        with torch.set_grad_enabled(backward):
            return module(x)

    steps = [forward, lambda y: y.backward(torch.ones_like(y))] if backward else [forward]
    fwd, *bwd = timing.lap_times(steps, repeats, device=device, setup=fresh_grads)
    bwd = bwd[0] if bwd else None
    return PassTiming(timing.median(fwd), bwd and timing.median(bwd), flops,
                      f"{device.type} {str(x.dtype).removeprefix('torch.')}",
                      fwd[0], bwd and bwd[0])


def mlp_timing(d_model: int, d_ff: int, tokens: int, repeats: int = 5,
               device: torch.device | None = None, seed: int = 0,
               dtype: torch.dtype | None = None) -> PassTiming:
    """Forward and backward time of one SwiGLU MLP on `tokens` random tokens."""
    d_model, d_ff, tokens = _sizes(d_model=d_model, d_ff=d_ff, tokens=tokens)
    _fits(weights=d_model * d_ff, activations=tokens * d_ff)
    device = device or dev.device()
    torch.manual_seed(seed)
    dtype = dtype or _default_dtype(device)
    mlp = SwiGLU(d_model, d_ff).to(device, dtype)
    x = torch.randn(tokens, d_model, device=device, dtype=dtype, requires_grad=True)
    return time_passes(mlp, x, swiglu_flops(tokens, d_model, d_ff), repeats)


def block_timing(d_model: int, n_heads: int, d_ff: int, seq_len: int, batch: int,
                 repeats: int = 3, device: torch.device | None = None,
                 seed: int = 0, dtype: torch.dtype | None = None) -> PassTiming:
    """Forward time of one MHA + SwiGLU block (course.attention.Block) on random input."""
    d_model, n_heads, d_ff, seq_len, batch = _sizes(
        d_model=d_model, n_heads=n_heads, d_ff=d_ff, seq_len=seq_len, batch=batch)
    if d_model % n_heads:
        raise ValueError(f"n_heads {n_heads} must divide d_model {d_model}.")
    _fits(weights=d_model * max(d_model, d_ff), activations=batch * seq_len * max(d_model, d_ff),
          scores=batch * n_heads * seq_len * seq_len)
    device = device or dev.device()
    torch.manual_seed(seed)
    dtype = dtype or _default_dtype(device)
    block = Block(d_model, CausalSelfAttention(d_model, n_heads), SwiGLU(d_model, d_ff))
    block = block.to(device, dtype)
    forward = lambda x: block(x)[0]  # Block returns (x, attn_update, ffn_update)
    x = torch.randn(batch, seq_len, d_model, device=device, dtype=dtype)
    module = _Wrap(forward)
    with torch.no_grad():
        return time_passes(module, x, block_flops(batch, seq_len, d_model, d_ff), repeats,
                           backward=False)


class _Wrap(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def preset_block_timing(repeats: int = 3) -> PassTiming:
    """`block_timing` at the "block" preset (DeepSeek-V3 width on CUDA, toy on CPU)."""
    return block_timing(**preset("block"), repeats=repeats)


def preset_mlp_timing(repeats: int = 5) -> PassTiming:
    """`mlp_timing` at the "mlp" preset (DeepSeek-V3's dense MLP width on CUDA)."""
    return mlp_timing(**preset("mlp"), repeats=repeats)
