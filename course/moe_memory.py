"""Measure one MoE layer's training step and predict it: the transformer-scale check of
notebook 03's activation accounting (`course.activations.layer_elements`, MoE part).

The layer is DeepSeek-V3's FFN shape without the norm: a softmax router, top-k routed
SwiGLU experts and shared experts (report 2.1.2). Tokens are sorted by expert, each expert
runs on a contiguous slice, results are weighted by the gate and summed back.

Saved for backward per token: its input (d, shared by router and shared experts), the
router scores (E), each shared expert's 4m; per routed copy: the gathered input (d),
SwiGLU's 4m, the expert output (d) and the gate weight (1), plus four int64 indices
(top-k indices, the token of each copy, the sort order for the gate weights,
the unsort order).
On CUDA the whole step is also measured with `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MoELayer(nn.Module):
    """Router + `n_experts` routed SwiGLU experts (top-`top_k`) + shared experts."""

    def __init__(self, d: int, n_experts: int, top_k: int, inter: int, n_shared: int = 1):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError("top_k must be between 1 and the number of experts.")
        self.top_k = top_k
        self.gate = nn.Linear(d, n_experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(n_experts, d, inter) * d**-0.5)
        self.w3 = nn.Parameter(torch.randn(n_experts, d, inter) * d**-0.5)
        self.w2 = nn.Parameter(torch.randn(n_experts, inter, d) * inter**-0.5)
        self.shared = nn.ModuleList(
            nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in ((d, inter), (d, inter),
                                                                   (inter, d)))
            for _ in range(n_shared))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (T, d)
        scores = self.gate(x).softmax(dim=-1)  # (T, E)
        weight, idx = scores.topk(self.top_k, dim=-1)  # (T, k)
        order = idx.flatten().argsort(stable=True)  # (T*k,) copies grouped by expert
        h = x[order // self.top_k]  # (T*k, d) gathered inputs
        counts = torch.bincount(idx.flatten(), minlength=self.w1.shape[0]).tolist()
        outs = [F.silu(part @ self.w1[e]) * (part @ self.w3[e]) @ self.w2[e]
                for e, part in enumerate(h.split(counts)) if counts[e]]
        routed = torch.cat(outs) * weight.flatten()[order][:, None]  # (T*k, d)
        y = routed[order.argsort()].view(x.shape[0], self.top_k, -1).sum(dim=1)
        for w1, w3, w2 in self.shared:
            y = y + w2(F.silu(w1(x)) * w3(x))
        return y


def predicted_saved_bytes(d: int, n_experts: int, top_k: int, inter: int, n_shared: int,
                          tokens: int, dtype_bytes: int = 4) -> int:
    """Bytes `MoELayer` saves for backward (see the module docstring)."""
    floats = d + n_experts + n_shared * 4 * inter + top_k * (2 * d + 4 * inter + 1)
    return tokens * (floats * dtype_bytes + top_k * 4 * 8)


def measure_step(d: int, n_experts: int, top_k: int, inter: int, n_shared: int = 1,
                 tokens: int = 256, device: str = "cpu", seed: int = 0) -> dict:
    """One forward + backward + AdamW step; bytes of parameters, gradients, AdamW
    moments, saved activations and (CUDA only) the peak the allocator saw."""
    torch.manual_seed(seed)
    layer = MoELayer(d, n_experts, top_k, inter, n_shared).to(device)
    params = list(layer.parameters())
    ptrs = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in ptrs:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = torch.randn(tokens, d, device=device, requires_grad=True)  # as from a layer below
    opt = torch.optim.AdamW(params, lr=1e-3)
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    y.float().pow(2).mean().backward()
    opt.step()
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    moments = [v for s in opt.state.values() for k, v in s.items() if k.startswith("exp_avg")]
    out = {"weights": nbytes(params), "gradients": nbytes(p.grad for p in params),
           "optimizer": nbytes(moments), "activations": sum(saved.values())}
    if device != "cpu":
        out["peak_allocated"] = torch.cuda.max_memory_allocated(device)
    return out
