"""Widgets for notebook 10 (FP8): scaling granularity against an outlier, and the
accumulator width / promotion interval of an FP8 GEMM. No maths here."""

from __future__ import annotations

from course import fp8, fp8_accum
from course.plots import fp8 as plots
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider


def _draw_scaling(fig, result) -> None:
    labels = list(fp8.SCALINGS)
    fig.data[0].y = [100 * result[k]["rel_error"] for k in labels]
    fig.data[1].y = [100 * result[k]["underflow"] for k in labels]


def _summary_scaling(result) -> str:
    parts = [f"{k}: <b>{v['rel_error']:.1%}</b> error, {v['underflow']:.1%} flushed"
             for k, v in result.items()]
    return " · ".join(parts)


@register_bench("fp8_scaling", notebook="10", sweep=lambda: [
    dict(outlier=10.0), dict(outlier=1e4), dict(outlier=1e6), dict(fmt="e5m2"),
    dict(fmt="e4m3", outlier=300.0)])
def scaling_widget() -> LiveFigure:
    """Outlier magnitude and format → error of per-tensor, tile and block scaling."""
    controls = dict(outlier=log_slider("outlier magnitude", 0, 6, 1e4, step=0.25),
                    fmt=dropdown("format", ["e4m3", "e5m2"], "e4m3"))
    fig = plots.scaling_bars()
    fig.update_yaxes(range=[0, 40])
    return LiveFigure(controls, fp8.compare_scalings, _draw_scaling, fig,
                      summary=_summary_scaling)


def _accumulation(log2_k: int, mant_bits: int, n_c: int, dist: str) -> dict:
    return fp8_accum.accumulation_curves(2 ** log2_k, mant_bits, n_c, dist)


def _draw_accumulation(fig, result) -> None:
    fig.data[0].x = fig.data[1].x = result["ks"]
    fig.data[0].y = 100 * result["none"]
    fig.data[1].y = 100 * result["promoted"]


def _summary_accumulation(result) -> str:
    k = result["ks"][-1]
    return (f"K = {k:,}: max error <b>{result['none'][-1]:.3%}</b> without promotion, "
            f"<b>{result['promoted'][-1]:.4%}</b> with it")


@register_bench("fp8_accumulation", notebook="10", sweep=lambda: [
    dict(log2_k=12), dict(mant_bits=10), dict(n_c=512), dict(dist="normal"),
    dict(log2_k=14, mant_bits=14, n_c=128, dist="uniform")])
def accumulation_widget() -> LiveFigure:
    """K, accumulator bits, N_C and input distribution → error against K."""
    controls = dict(log2_k=slider("log₂ K", 8, 14, 12),
                    mant_bits=slider("accumulator bits", 8, 23, 14),
                    n_c=dropdown("promote every N_C", [32, 64, 128, 256, 512, 1024], 128),
                    dist=dropdown("inputs", ["uniform", "normal"], "uniform"))
    first = _accumulation(12, 14, 128, "uniform")
    fig = plots.accumulation_error(first["ks"], {"no promotion": first["none"],
                                                 "promotion every N_C": first["promoted"]})
    return LiveFigure(controls, _accumulation, _draw_accumulation, fig,
                      summary=_summary_accumulation)
