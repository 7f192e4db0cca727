"""Widget for notebook 05: model size, tokens, cluster, MFU and price -> days and dollars."""

from __future__ import annotations

import numpy as np

from course import compute
from course.configs import GPUS
from course.plots import compute as plots
from course.units import fmt_count
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider

GPU_COUNTS = np.unique(np.logspace(0, 5, 41).round().astype(int))


def published_marks() -> dict:
    """Published runs as (GPUs, days): DeepSeek-V3 pre-training and Llama 3.1 405B."""
    v3, ll = compute.DEEPSEEK_V3, compute.LLAMA_31_405B
    return {"DeepSeek-V3 (published)": (v3["n_gpus"], v3["pretrain_gpu_hours"] / v3["n_gpus"] / 24),
            "Llama 3.1 405B (published)": (ll["n_gpus"], ll["total_gpu_hours"] / ll["n_gpus"] / 24)}


def bill(active_b: float, tokens_t: float, gpu_name: str, n_gpus: float, precision: str,
         mfu: float, price: float) -> dict:
    """The estimate at the chosen settings and the days-vs-GPUs curve (no maths here)."""
    kw = dict(gpu_name=gpu_name, precision=precision, mfu=mfu, price_per_hour=price)
    est = compute.estimate(active_b * 1e9, tokens_t * 1e12, n_gpus=int(round(n_gpus)), **kw)
    days = compute.days_vs_gpus(active_b * 1e9, tokens_t * 1e12, GPU_COUNTS, **kw)
    return dict(estimate=est, days=days)


def _draw(fig, result) -> None:
    fig.data[0].y = result["days"]


def _summary(result) -> str:
    e = result["estimate"]
    when = f"{e.years:.1f} years" if e.days > 730 else f"{e.days:.1f} days"
    return (f"<b>{when}</b> on {e.n_gpus:,} GPUs · {fmt_count(e.gpu_hours)} GPU-hours · "
            f"<b>${fmt_count(e.dollars)}</b> · {e.flops:.2e} FLOPs")


@register_bench("training_bill", notebook="05", sweep=lambda: [
    dict(active_b=37, n_gpus=2048), dict(active_b=405, gpu_name="H100 SXM", n_gpus=16384),
    dict(mfu=0.2, precision="fp8"), dict(n_gpus=64, tokens_t=1.0), dict(price=3.5)])
def training_bill() -> LiveFigure:
    """Sliders -> days, GPU-hours, dollars, with a plot of days against GPU count."""
    controls = dict(
        active_b=log_slider("active params (B)", 0, 3, 37, step=0.05),
        tokens_t=log_slider("tokens (T)", -1, 2, 14.8, step=0.05),
        gpu_name=dropdown("GPU", list(GPUS), "H800"),
        n_gpus=log_slider("GPUs", 0, 5, 2048, step=0.05),
        precision=dropdown("precision", ["bf16", "fp8"], "bf16"),
        mfu=slider("MFU", 0.05, 0.8, 0.39, step=0.01, fmt=".2f"),
        price=slider("$ per GPU-hour", 0.5, 6.0, 2.0, step=0.1, fmt=".1f"),
    )
    live_fig = plots.days_vs_gpus(GPU_COUNTS, np.ones(len(GPU_COUNTS)), published_marks())
    return LiveFigure(controls, bill, _draw, live_fig, summary=_summary)
