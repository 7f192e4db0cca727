"""Notebook 04's widget: choose a layout and a cluster, see one GPU's memory and traffic,
and run the real gloo job for a strategy next to its prediction."""

from __future__ import annotations

import html

import ipywidgets as W

from course import parallel
from course.configs import SHIPPED, gpu
from course.plots import COLORS
from course.plots.parallel import MEMORY_PARTS, per_gpu
from course.widgets import ERROR_STYLE, LiveFigure, dropdown, register_bench, slider
from course.widgets.gates import Rule, gate

POW2 = [1, 2, 4, 8, 16, 32, 64, 128, 256]
CLUSTERS = [8, 16, 64, 256, 1024, 2048, 4096]


def compute(model: str, gpus: int, tp: int, pp: int, ep: int, zero: int, sp: bool,
            recipe: str, gpu_name: str, microbatches: int, seq_len: int) -> dict:
    """Per-GPU memory and bytes per step; DP is what is left: gpus / (TP x PP)."""
    if gpus % (tp * pp):
        raise ValueError(f"TP × PP = {tp * pp} does not divide the {gpus} GPUs.")
    layout = parallel.Layout(dp=gpus // (tp * pp), tp=tp, pp=pp, ep=ep, sp=sp, zero=zero)
    parallel.validate(model, layout, gpus)
    mem = parallel.per_gpu_memory(model, layout, recipe, seq_len=seq_len,
                                  recompute="selective", microbatches=microbatches)
    comm = parallel.comm_per_step(model, layout, recipe, seq_len=seq_len,
                                  microbatches=microbatches)
    return {"layout": layout, "memory": mem, "comm": comm, "gpu_gb": gpu(gpu_name).memory_gb,
            "replicas": parallel.replicas(model, layout)}


def draw(fig, r: dict) -> None:
    for trace in fig.data[:len(MEMORY_PARTS)]:
        trace.y = [r["memory"][trace.name] / 1e9]
    fig.data[-1].x, fig.data[-1].y = list(r["comm"]), [v / 1e9 for v in r["comm"].values()]
    fig.layout.shapes[0].y0 = fig.layout.shapes[0].y1 = r["gpu_gb"]


def summary(r: dict) -> str:
    rep, total = r["replicas"], sum(r["memory"].values()) / 1e9
    fits = "fits" if total <= r["gpu_gb"] else f"<b style='color:{COLORS['bad']}'>does not fit</b>"
    experts = (f", each expert {rep['expert_copies']}× ({rep['experts_per_gpu']} experts "
               f"per GPU)" if rep["experts_per_gpu"] else "")
    return (f"DP = {r['layout'].dp} · {rep['layers_per_stage']:.2f} layers per stage · "
            f"copies of each dense weight: {rep['dense_copies']}{experts} · "
            f"<b>{total:,.1f} GB</b> per GPU: {fits} in {r['gpu_gb']:g} GB")


def _run_button() -> tuple[W.Widget, W.HTML]:
    from course import parallel_run

    strategy = dropdown("real run", parallel_run.STRATEGIES)
    button = W.Button(description="Run on 2 gloo processes", button_style="primary")
    out = W.HTML()

    def click(_):
        out.value = "running 2 processes…"
        try:
            rows = parallel_run.compare(strategy.value, world=2)
        except (RuntimeError, ValueError) as err:
            out.value = f'<span style="{ERROR_STYLE}">⚠ {html.escape(str(err)[:300])}</span>'
            return
        body = "".join(f"<tr><td>{k}</td><td>{m:,.0f}</td><td>{p:,.0f}</td></tr>"
                       for k, m, p in rows)
        out.value = ("<table><tr><th>rank 0</th><th>measured bytes</th>"
                     f"<th>predicted bytes</th></tr>{body}</table>")

    button.on_click(click)
    return W.HBox([strategy, button]), out


@register_bench("parallel_layout", notebook="04", sweep=lambda: [
    dict(model="deepseek-v3", tp=1, pp=16, ep=64, zero=1),
    dict(model="deepseek-v3", tp=8, pp=8, ep=8, zero=0),
    dict(model="deepseek-v3", tp=1, pp=16, ep=64, zero=3),
    dict(model="llama-3.1-405b", ep=1, tp=8, pp=16, zero=1),
])
def parallel_widget(with_button: bool = True) -> LiveFigure:
    controls = {
        "model": dropdown("model", SHIPPED),
        "gpus": dropdown("GPUs", CLUSTERS, 2048),
        "tp": dropdown("TP", POW2[:5], 1),
        "pp": dropdown("PP", POW2[:7], 16),
        "ep": dropdown("EP", POW2, 64),
        "zero": dropdown("ZeRO", [0, 1, 2, 3], 1),
        "sp": W.Checkbox(description="SP", value=False),
        "recipe": dropdown("precision", ["deepseek-fp8", "bf16-mixed", "fp32"]),
        "gpu_name": dropdown("GPU", ["H800", "H100 SXM", "H200", "A100"]),
        "microbatches": slider("micro-batches", 1, 64, 16),
        "seq_len": dropdown("sequence length", [1024, 4096, 16384], 4096),
    }
    start = compute(**{k: c.value for k, c in controls.items()})
    fig = per_gpu(start["memory"], start["comm"], start["gpu_gb"])
    hint = gate(controls, Rule(("sp",), lambda v: v["tp"] > 1,
                               "SP splits activations across the TP group: it acts only "
                               "with TP > 1."))
    extra = [hint, *_run_button()] if with_button else [hint]
    return LiveFigure(controls, compute, draw, fig, summary=summary, extra=extra)
