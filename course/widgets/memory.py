"""Notebook 03's widget: pick a model and a training recipe, see the gigabytes."""

from __future__ import annotations

from course import memory
from course.configs import SHIPPED
from course.plots.memory import COMPONENTS, stacked_gb
from course.units import fmt_count
from course.widgets import LiveFigure, dropdown, register_bench, slider
from course.widgets.gates import Rule, gate

SEQ_LENS = [512, 1024, 2048, 4096, 8192, 16384, 32768, 131072]


def compute(model: str, recipe: str, optimizer: str, seq_len: int, micro_batch: int,
            recompute: str, hidden: int, layers: int, experts: int) -> dict:
    """Training and inference memory of one replica (custom sliders used for "custom")."""
    cfg = memory.custom_config(hidden, layers, experts) if model == "custom" else model
    train = memory.training_memory(cfg, recipe, optimizer, seq_len, micro_batch, recompute)
    infer = memory.inference_memory(cfg, memory.recipe(recipe).weights, seq_len, micro_batch)
    return {"train": train, "infer": infer, "params": memory.param_count(cfg),
            "train_gpus": memory.gpus_needed(sum(train.values())),
            "infer_gpus": memory.gpus_needed(sum(infer.values()))}


def draw(fig, r: dict) -> None:
    for trace in fig.data:
        trace.y = [r["train"].get(trace.name, 0) / 1e9, r["infer"].get(trace.name, 0) / 1e9]


def summary(r: dict) -> str:
    p = r["params"]
    return (f"<b>{fmt_count(p.total, 'params')}</b> ({fmt_count(p.active)} active per token) · "
            f"training replica <b>{sum(r['train'].values()) / 1e9:,.0f} GB</b> → "
            f"<b>{r['train_gpus']}</b> GPUs of 80 GB · inference "
            f"{sum(r['infer'].values()) / 1e9:,.0f} GB → {r['infer_gpus']} GPUs")


@register_bench("memory_calculator", notebook="03", sweep=lambda: [
    dict(model=m, seq_len=s) for m in ("deepseek-v3", "llama-3-70b") for s in (1024, 32768)
] + [dict(model="custom", hidden=h, experts=e) for h in (2048, 8192) for e in (0, 64)])
def memory_widget() -> LiveFigure:
    controls = {
        "model": dropdown("model", [*SHIPPED, "custom"]),
        "recipe": dropdown("precision", list(memory.RECIPES), "deepseek-fp8"),
        "optimizer": dropdown("optimizer", list(memory.OPTIMIZERS)),
        "seq_len": dropdown("sequence length", SEQ_LENS, 4096),
        "micro_batch": slider("micro-batch", 1, 16, 1),
        "recompute": dropdown("recompute", ["none", "selective", "full"]),
        "hidden": slider("custom: hidden", 1024, 16384, 4096, step=128),
        "layers": slider("custom: layers", 1, 128, 32),
        "experts": slider("custom: experts", 0, 256, 0),
    }
    hint = gate(controls, Rule(("hidden", "layers", "experts"),
                               lambda v: v["model"] == "custom",
                               "The custom sliders act only when the model is “custom”."))
    start = compute(**{k: c.value for k, c in controls.items()})
    fig = stacked_gb({"training": start["train"], "inference": start["infer"]},
                     "One replica: training vs inference", gpu_gb=80)
    assert {t.name for t in fig.data} <= set(COMPONENTS)
    return LiveFigure(controls, compute, draw, fig, summary=summary, extra=[hint])
