"""Widget for notebook 05: model, tokens, cluster, MFU and price -> days and dollars."""

from __future__ import annotations

import numpy as np

from course import compute
from course.configs import GPUS, SHIPPED
from course.plots import compute as plots
from course.units import fmt_count
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider

GPU_COUNTS = np.unique(np.logspace(0, 5, 41).round().astype(int))
SEQ_LENS = (1024, 2048, 4096, 8192, 32768, 131072)


def published_marks() -> dict:
    """Published runs as (GPUs, days): DeepSeek-V3 pre-training and Llama 3.1 405B."""
    v3, ll = compute.DEEPSEEK_V3, compute.LLAMA_31_405B
    days = compute.wall_clock_days
    return {"DeepSeek-V3 (published)": (v3["n_gpus"], days(v3["pretrain_gpu_hours"], v3["n_gpus"])),
            "Llama 3.1 405B (published)": (ll["n_gpus"], days(ll["total_gpu_hours"], ll["n_gpus"]))}


def bill(model: str, seq_len: int, tokens_t: float, gpu_name: str, n_gpus: float,
         precision: str, mfu: float, price: float) -> dict:
    """The estimate at the chosen settings and the days-vs-GPUs curve, with the FLOPs of
    `compute.training_flops_per_token` (6·N plus attention), as notebook 05 derives them."""
    per_token = compute.training_flops_per_token(model, seq_len)
    kw = dict(gpu_name=gpu_name, precision=precision, mfu=mfu, price_per_hour=price,
              flops_per_token=per_token.total)
    n, tokens = per_token.matmul_params, tokens_t * 1e12
    est = compute.estimate(n, tokens, n_gpus=int(round(n_gpus)), **kw)
    days = compute.days_vs_gpus(n, tokens, GPU_COUNTS, **kw)
    return dict(estimate=est, days=days, per_token=per_token)


def _draw(fig, result) -> None:
    fig.data[0].y = result["days"]


def _summary(result) -> str:
    e, p = result["estimate"], result["per_token"]
    when = f"{e.years:.1f} years" if e.days > 730 else f"{e.days:.1f} days"
    return (f"<b>{when}</b> on {e.n_gpus:,} GPUs · {fmt_count(e.gpu_hours)} GPU-hours · "
            f"<b>${fmt_count(e.dollars)}</b> · {e.flops:.2e} FLOPs "
            f"({p.matmul / 1e9:,.0f} + {p.attention / 1e9:,.0f} attention GFLOPs per token)")


@register_bench("training_bill", notebook="05", sweep=lambda: [
    dict(model="deepseek-v3", n_gpus=2048), dict(model="llama-3.1-405b", gpu_name="H100 SXM",
                                                 n_gpus=16384, seq_len=8192),
    dict(mfu=0.2, precision="fp8"), dict(n_gpus=64, tokens_t=1.0), dict(price=3.5)])
def training_bill(mfu: float = 0.39) -> LiveFigure:
    """Model, sequence length, tokens, cluster, MFU and price -> days, GPU-hours, dollars,
    with a plot of days against GPU count."""
    controls = dict(
        model=dropdown("model", SHIPPED, "deepseek-v3"),
        seq_len=dropdown("sequence length", SEQ_LENS, 4096),
        tokens_t=log_slider("tokens (T)", -1, 2, 14.8, step=0.05),
        gpu_name=dropdown("GPU", list(GPUS), "H800"),
        n_gpus=log_slider("GPUs", 0, 5, 2048, step=0.05),
        precision=dropdown("precision", ["bf16", "fp8"], "bf16"),
        mfu=slider("MFU", 0.05, 0.8, mfu, step=0.01, fmt=".2f"),
        price=slider("$ per GPU-hour", 0.5, 6.0, 2.0, step=0.1, fmt=".1f"),
    )
    live_fig = plots.days_vs_gpus(GPU_COUNTS, np.ones(len(GPU_COUNTS)), published_marks())
    return LiveFigure(controls, bill, _draw, live_fig, summary=_summary)
