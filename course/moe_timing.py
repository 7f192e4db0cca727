"""Time DeepSeek-V3's router and one MoE layer at full width (notebook 08 §7).

`time_layer()` builds the "moe_layer" preset's layer (realistic: V3's width 7168, 256
experts, 8 active, 8 groups keeping 4, expert width 2048, one shared expert, in BF16 on a
GPU; toy sizes on a CPU) and times the router alone and the whole layer forward with
`course.timing.median_seconds` (one untimed warm-up, the GPU synchronised around each run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course import device as dev
from course import timing, validate
from course.moe import MoE


@dataclass
class LayerTiming:
    tokens: int
    router_seconds: float  # gate alone (scores, groups, top-k), median of repeats
    layer_seconds: float  # whole MoE layer forward, median of repeats
    load: np.ndarray  # (E,) tokens per expert in the timed batch
    device: str
    dtype: str

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.layer_seconds


@torch.no_grad()
def time_layer(size: str | None = None, repeats: int = 3, seed: int = 0) -> LayerTiming:
    """Time DeepSeek-V3's router and one MoE layer forward over a batch of tokens.

    Sizes from the "moe_layer" preset: realistic is V3 (width 7168, 256 experts, 8 active,
    8 groups keeping 4, expert width 2048, 1 shared expert) in BF16 on CUDA; without a
    GPU the toy sizes run on the CPU.
    """
    from types import SimpleNamespace

    from course.configs import load_config
    from course.presets import preset

    size = validate.choice("size", dev.size() if size is None else size, dev.SIZES)
    repeats = validate.integer("repeats", repeats, 1, 1000)
    seed = validate.non_negative_int("seed", seed)
    where = dev.device() if size == "realistic" else torch.device("cpu")
    if where.type != "cuda":
        size = "toy"  # the full layer is 11.3 B parameters: GPU only
    p = preset("moe_layer", size)
    dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
    cfg = SimpleNamespace(d_model=p["d_model"], n_routed_experts=p["n_experts"],
                          experts_per_token=p["top_k"], moe_inter_dim=p["moe_inter_dim"],
                          n_shared_experts=1, n_groups=p["n_groups"],
                          topk_groups=p["topk_groups"], score_func="sigmoid",
                          route_scale=load_config("deepseek-v3").routed_scaling_factor,
                          extra=dict(router_std=0.006))  # V3 init std (report 4.2)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(where):
            layer = MoE(cfg).eval()
            x = torch.randn(p["tokens"], p["d_model"])
    finally:
        torch.set_default_dtype(default)
    router = timing.median_seconds(lambda: layer.gate(x), repeats, device=where)
    full = timing.median_seconds(lambda: layer(x), repeats, device=where)
    return LayerTiming(p["tokens"], router, full, layer.last_load.numpy(), str(where),
                       str(dtype).replace("torch.", ""))
