"""Widget for notebook 13: configure model, cluster, layout and precision; see the bill."""

from __future__ import annotations

from course import planner
from course.configs import GPUS, SHIPPED
from course.memory import RECIPES
from course.parallel import Layout
from course.plots import COLORS
from course.plots import planner as plots
from course.units import fmt_bytes, fmt_count
from course.widgets import LiveFigure, dropdown, register_bench, slider

POW2 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def bill(model: str, gpu_name: str, dp: int, tp: int, pp: int, ep: int, zero: int,
         recipe: str, precision: str, mfu: float, tokens_t: float, price: float) -> planner.Plan:
    """A plan from the widget's values (DeepSeek-V3's batch and sequence length)."""
    layout = Layout(dp=dp, tp=tp, pp=pp, ep=ep, zero=zero, sp=tp > 1)
    return planner.plan(model=model, gpu_name=gpu_name, layout=layout, recipe=recipe,
                        precision=precision, mfu=mfu, tokens=tokens_t * 1e12,
                        price_per_hour=price)


def _draw(fig, p: planner.Plan) -> None:
    for trace, value in zip(fig.data[:-1], p.memory.values()):
        trace.y = [value / plots.GIB]
    fig.data[-1].y = [p.gpu_bytes / plots.GIB]


def _summary(p: planner.Plan) -> str:
    fit = (f'<span style="color:{COLORS["good"]}">fits</span>' if p.fits
           else f'<span style="color:{COLORS["bad"]}">does not fit</span>')
    return (f"{p.setup.layout.world:,} GPUs · {fmt_bytes(p.per_gpu_bytes)} per GPU: <b>{fit}</b>"
            f"<br>step {p.compute_s:.1f} s compute + {p.comm_s:.1f} s communication → "
            f"<b>{p.days():.0f} days</b> overlapped ({p.days(False):.0f} not) · "
            f"{fmt_count(p.gpu_hours())} GPU-hours · <b>${fmt_count(p.dollars())}</b>"
            f"<br>serving: weights {fmt_bytes(list(p.serving_bytes.values())[0])} + "
            f"{fmt_bytes(list(p.serving_bytes.values())[1])} of KV cache per 1M tokens")


@register_bench("planner", notebook="13", sweep=lambda: [
    dict(model="deepseek-v3", dp=256, tp=1, pp=8, ep=64),
    dict(model="deepseek-v3", dp=64, tp=1, pp=16, ep=32),
    dict(model="llama-3.1-405b", dp=128, tp=8, pp=16, ep=1),
    dict(precision="bf16", recipe="bf16-mixed"), dict(zero=0), dict(mfu=0.3)])
def planner_widget() -> LiveFigure:
    """Model, GPUs, layout and precision -> fit, step time, days, dollars, serving memory."""
    s = planner.PRESETS["DeepSeek-V3"]
    controls = dict(
        model=dropdown("model", SHIPPED, s.model),
        gpu_name=dropdown("GPU", list(GPUS), s.gpu_name),
        dp=dropdown("DP", POW2, s.layout.dp), tp=dropdown("TP", POW2[:5], s.layout.tp),
        pp=dropdown("PP", POW2[:7], s.layout.pp), ep=dropdown("EP", POW2[:9], s.layout.ep),
        zero=dropdown("ZeRO", [0, 1, 2, 3], s.layout.zero),
        recipe=dropdown("recipe", list(RECIPES), s.recipe),
        precision=dropdown("matmuls", ["bf16", "fp8"], s.precision),
        mfu=slider("MFU", 0.05, 0.8, s.mfu, step=0.01, fmt=".2f"),
        tokens_t=slider("tokens (T)", 0.5, 30.0, s.tokens / 1e12, step=0.1, fmt=".1f"),
        price=slider("$ per GPU-hour", 0.5, 6.0, s.price_per_hour, step=0.1, fmt=".1f"),
    )
    first = planner.plan(s)
    fig = plots.memory_bars(["per GPU"], [first.memory], [first.gpu_bytes],
                            title="Memory per GPU against its capacity")
    return LiveFigure(controls, bill, _draw, fig, summary=_summary)
