"""Widgets for notebook 11: the cache calculator, the toy latent rank, measured decode."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from course import kvcache, mla
from course.configs import GPUS, SHIPPED, load_config
from course.plots import kvcache as plots
from course.units import fmt_bytes
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider

CONTEXTS = np.unique(np.logspace(2, np.log10(131072), 60).round())
DTYPES = {"BF16 (2 bytes)": 2.0, "FP8 (1 byte)": 1.0, "6-bit (0.75 byte)": 0.75,
          "FP32 (4 bytes)": 4.0}
GPU_LINES = {"H100 / H800: 80 GB": GPUS["H800"].memory_gb, "H200: 141 GB": GPUS["H200"].memory_gb}


def cache_curve(model: str, context: float, batch: int, dtype: str) -> dict:
    """The model's cache and its MHA counterfactual against context, and at `context`."""
    b, ctx = DTYPES[dtype], int(round(context))
    cfg = load_config(model)
    return dict(own=kvcache.cache_gb(cfg, CONTEXTS, batch, b),
                mha=kvcache.cache_gb(cfg, CONTEXTS, batch, b, mha=True),
                at=kvcache.kv_cache_bytes(cfg, ctx, batch, b), context=ctx, batch=batch,
                per_token=kvcache.kv_bytes_per_token(cfg, b), kind=cfg.attention_kind,
                mha_at=kvcache.mha_bytes_per_token(cfg, b) * ctx * batch)


def _draw_cache(fig, r) -> None:
    fig.data[0].y, fig.data[1].y = r["own"], r["mha"]
    fig.data[0].name = f"this model ({r['kind'].upper()})"
    fig.data[2].x, fig.data[2].y = [r["context"]], [r["at"] / 1e9]


def _summary_cache(r) -> str:
    return (f"<b>{fmt_bytes(r['at'])}</b> of cache for {r['batch']} × {r['context']:,} tokens "
            f"({fmt_bytes(r['per_token'])} per token) · the same model with MHA: "
            f"{fmt_bytes(r['mha_at'])}")


@register_bench("kv_cache_calculator", notebook="11", sweep=lambda: [
    dict(model=m, context=c, batch=b) for m, c, b in
    [("deepseek-v3", 32768, 1), ("llama-3-70b", 131072, 8), ("llama-3-8b", 4096, 64),
     ("llama-3.1-405b", 1000, 1), ("mixtral-8x7b", 8192, 16)]])
def kv_cache_calculator() -> LiveFigure:
    """Model, context, batch, dtype -> cache GB, with GPU memory lines."""
    controls = dict(model=dropdown("model", SHIPPED, "deepseek-v3"),
                    context=log_slider("context (tokens)", 2, np.log10(131072), 32768),
                    batch=slider("batch", 1, 256, 1),
                    dtype=dropdown("cache dtype", DTYPES, "BF16 (2 bytes)"))
    n = np.ones(len(CONTEXTS))
    fig = plots.cache_growth(CONTEXTS, {"this model": n, "same model with MHA": n}, GPU_LINES)
    fig.add_scatter(x=[1], y=[1], mode="markers", name="your setting",
                    marker=dict(size=12, color="black"))
    return LiveFigure(controls, cache_curve, _draw_cache, fig, summary=_summary_cache)


# ------------------------------------------------------------------------- latent rank

def toy_mla_config(rank: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4):
    """The toy MLA model's shapes as a DeepSeek-style config, for kvcache's formulas."""
    return load_config(dict(model_type="deepseek_v3", hidden_size=d_model,
                            num_hidden_layers=n_layers, num_attention_heads=n_heads,
                            intermediate_size=4 * d_model, vocab_size=103, kv_lora_rank=rank,
                            qk_nope_head_dim=d_model // n_heads, qk_rope_head_dim=8,
                            v_head_dim=d_model // n_heads))


def _rank_compute(curves: dict, d_model: int):
    def compute(rank: int) -> dict:
        if not 1 <= rank <= d_model:
            raise ValueError(f"The latent rank must be between 1 and the width {d_model}.")
        cfg = toy_mla_config(rank, d_model)
        return dict(rank=rank, errors={k: float(v[rank]) for k, v in curves.items()},
                    mla=kvcache.kv_bytes_per_token(cfg, 4), mha=kvcache.mha_bytes_per_token(
                        cfg, 4))
    return compute


def _draw_rank(fig, r) -> None:
    fig.layout.shapes[0].x0 = fig.layout.shapes[0].x1 = r["rank"]


def _summary_rank(r) -> str:
    errs = " · ".join(f"{k}: {100 * v:.1f}%" for k, v in r["errors"].items())
    return (f"rank {r['rank']}: cache {r['mla']} B per token (FP32) vs {r['mha']} B with MHA "
            f"({100 * (1 - r['mla'] / r['mha']):.0f}% smaller) · error {errs}")


@register_bench("latent_rank", notebook="11", sweep=lambda: [
    dict(rank=r) for r in (2, 8, 16, 32, 64)])
def latent_rank(model=None, idx: torch.Tensor | None = None) -> LiveFigure:
    """Latent-rank slider: the error of a rank-r K/V latent (from the model's real K and V)
    against the cache it would need. Without a model, an untrained seeded one."""
    if model is None:
        from course.device import seed_everything
        from course.model import TinyLM
        from course.train import tiny_config

        seed_everything(0)
        model = TinyLM(tiny_config())
        idx = torch.randint(0, model.cfg.vocab_size, (8, model.cfg.seq_len))
    d = model.cfg.d_model
    curves = kvcache.kv_rank_curves(model, idx, np.arange(d + 1))
    fig = plots.rank_errors(np.arange(d + 1), curves, marker=16)
    controls = dict(rank=slider("latent rank d_c", 1, d, 16))
    return LiveFigure(controls, _rank_compute(curves, d), _draw_rank, fig, summary=_summary_rank)


# ---------------------------------------------------------------------- measured decode


def _toy() -> bool:
    from course.device import size

    return size() == "toy"


@lru_cache(maxsize=8)
def measured(batch: int) -> dict:
    """Measured decode-step times at the preset sizes, cached per batch (seconds once)."""
    return mla.measure_decode(batch=batch)


def _draw_decode(fig, r) -> None:
    for trace, path in zip(fig.data, r["seconds"]):
        trace.x, trace.y = list(r["contexts"]), [1e3 * s for s in r["seconds"][path]]


@register_bench("measured_decode", notebook="11", sweep=lambda: [
    dict(batch=b) for b in (1, 4, 1, 4)] if _toy() else [dict(batch=1), dict(batch=2)])
def measured_decode() -> LiveFigure:
    """Batch dropdown -> measured decode-step time against context for the three paths."""
    from course.presets import preset

    sizes = preset("mla_decode")
    controls = dict(batch=dropdown("batch", sizes["batches"], sizes["batch"]))
    first = measured(sizes["batch"])
    fig = plots.decode_times(first["contexts"], first["seconds"],
                             f"One MLA layer, one decode step ({first['device']})")
    return LiveFigure(controls, measured, _draw_decode, fig)
