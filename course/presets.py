"""Every size the course runs at, in one place: a toy preset (CPU, seconds) and a
realistic preset (CUDA, DeepSeek-V3 widths). Notebooks and `course.bench` read sizes
from here through `preset(name)`, never from literals.

Each entry is owned by the notebook named in its comment; edit only your own entry.
"""

from __future__ import annotations

from course import device

PRESETS: dict[str, dict[str, dict]] = {
    # 01 · one transformer block timed at DeepSeek-V3 width (7168, 128 heads).
    "block": {
        "toy": dict(d_model=128, n_heads=4, d_ff=344, seq_len=256, batch=2),
        "realistic": dict(d_model=7168, n_heads=128, d_ff=18432, seq_len=4096, batch=1),
    },
    # 01, 08-12, 14 · the course's one tiny language model (course.model).
    "tiny_lm": {
        "toy": dict(d_model=64, n_layers=2, n_heads=4, seq_len=32, batch=32, steps=300, lr=3e-3),
        "realistic": dict(d_model=512, n_layers=8, n_heads=8, seq_len=64, batch=64, steps=2000,
                          lr=1e-3),
    },
    # 02 · forward vs backward of an MLP (DeepSeek-V3 dense MLP width on CUDA).
    "mlp": {
        "toy": dict(d_model=256, d_ff=1024, tokens=512),
        "realistic": dict(d_model=7168, d_ff=18432, tokens=4096),
    },
    # 05 · the matmul used to measure this machine's peak.
    "matmul": {
        "toy": dict(n=512, d_model=256, d_ff=1024, n_layers=2, tokens=512),
        "realistic": dict(n=8192, d_model=4096, d_ff=16384, n_layers=4, tokens=8192),
    },
    # 07 · micro-batches timed through one block of the tiny model for the pipeline simulator.
    "pipeline": {
        "toy": dict(batch=16, seq_len=64, repeats=9),
        "realistic": dict(batch=8, seq_len=1024, repeats=20),
    },
    # 08-09 · MoE training runs.
    "moe": {
        "toy": dict(n_experts=8, top_k=2, steps=150),
        "realistic": dict(n_experts=64, top_k=6, steps=1000),
    },
    # 08-09 · DeepSeek-V3's router and one MoE layer on a large batch.
    "moe_layer": {
        "toy": dict(d_model=128, n_experts=16, top_k=4, n_groups=4, topk_groups=2,
                    moe_inter_dim=64, tokens=1024),
        "realistic": dict(d_model=7168, n_experts=256, top_k=8, n_groups=8, topk_groups=4,
                          moe_inter_dim=2048, tokens=8192),
    },
    # 10 · FP8 GEMM.
    "fp8_gemm": {
        "toy": dict(n=256),
        "realistic": dict(n=8192),
    },
    # 11 · MLA decode at long context.
    "mla_decode": {
        "toy": dict(d_model=128, n_heads=4, kv_lora_rank=32, qk_nope_head_dim=16,
                    qk_rope_head_dim=8, v_head_dim=16, contexts=(64, 256, 1024)),
        "realistic": dict(d_model=7168, n_heads=128, kv_lora_rank=512, qk_nope_head_dim=128,
                          qk_rope_head_dim=64, v_head_dim=128, contexts=(1024, 8192, 32768)),
    },
}


def preset(name: str, size: str | None = None) -> dict:
    """The sizes of `name` at the current (or given) size preset, as a fresh dict."""
    if name not in PRESETS:
        raise ValueError(f"No preset named {name!r}; known: {', '.join(sorted(PRESETS))}.")
    chosen = size or device.size()
    if chosen not in device.SIZES:
        raise ValueError(f"size must be one of {', '.join(device.SIZES)}, not {chosen!r}.")
    return dict(PRESETS[name][chosen])
