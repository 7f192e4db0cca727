"""Widget for notebook 07: a Gantt chart of any schedule that follows the sliders."""

from __future__ import annotations

from course import pipeline
from course.plots import pipeline as plots
from course.widgets import LiveFigure, dropdown, register_bench, slider
from course.widgets.gates import Rule, gate

USES_W = ("zb1p", "dualpipe", "dualpipev")  # the schedules that split B into B_i and W
USES_FB = ("dualpipe", "dualpipev")  # the schedules that overlap a forward and a backward


def schedule_view(schedule: str, stages: int, microbatches: int, f: float, b: float,
                  w: float, fb: float, virtual: int = 1):
    """`pipeline.simulate`, given W, F&B and virtual only for the schedules that use them."""
    return pipeline.simulate(schedule, stages, microbatches, f=f, b=b,
                             w=w if schedule in USES_W else 0.0,
                             fb=fb if schedule in USES_FB else None,
                             virtual=virtual if schedule == "interleaved" else 1)


def _summary(tl) -> str:
    t = tl.times
    formula = pipeline.published_bubble(tl.schedule, tl.stages, t["f"], t["b"], t["w"], t["fb"],
                                        virtual=tl.virtual)
    return (f"step <b>{tl.makespan:.3g}</b> · bubble <b>{tl.bubble:.3g}</b> per device on "
            f"average, worst device {max(tl.idle):.3g} (published formula: {formula:.3g}) · "
            f"peak activations {max(tl.peak_activations):.3g} micro-batches · parameters "
            f"{max(tl.params_per_device):g}× a stage, on {tl.devices} devices · "
            f"{tl.sends_per_microbatch:g} sends per micro-batch")


@register_bench("pipeline_gantt", notebook="07", sweep=lambda: [
    dict(schedule="1f1b"), dict(schedule="gpipe", microbatches=12), dict(schedule="zb1p"),
    dict(schedule="dualpipe", stages=8, microbatches=20), dict(stages=6, microbatches=24),
    dict(schedule="dualpipev"), dict(w=0.5), dict(fb=2.9), dict(f=1.4, fb=3.2),
    dict(schedule="interleaved", stages=8, microbatches=16, virtual=2),
    dict(schedule="interleaved", stages=16, microbatches=64, virtual=4),
    dict(stages=8, microbatches=20, schedule="dualpipe", w=1.0, fb=2.5)])
def pipeline_gantt(schedule: str = "dualpipe", stages: int = 8, microbatches: int = 20
                   ) -> LiveFigure:
    """Sliders for schedule, PP, micro-batches, F, B, W, F&B and virtual chunks -> a live
    Gantt chart."""
    controls = dict(
        schedule=dropdown("schedule", pipeline.SCHEDULES, schedule),
        stages=slider("stages PP", 2, 16, stages),
        microbatches=slider("micro-batches", 1, 64, microbatches),
        f=slider("F", 0.2, 4.0, 1.0, step=0.1, fmt=".1f"),
        b=slider("B (full)", 0.2, 6.0, 2.0, step=0.1, fmt=".1f"),
        w=slider("W (part of B)", 0.0, 3.0, 1.0, step=0.1, fmt=".1f"),
        fb=slider("F&B", 0.2, 10.0, 2.5, step=0.1, fmt=".1f"),
        virtual=slider("virtual chunks v", 1, 4, 2),
    )
    hint = gate(controls,
                Rule(("w",), lambda v: v["schedule"] in USES_W,
                     "W acts only in schedules that split the backward (zb1p, dualpipe, "
                     "dualpipev)."),
                Rule(("fb",), lambda v: v["schedule"] in USES_FB,
                     "F&B acts only in dualpipe and dualpipev."),
                Rule(("virtual",), lambda v: v["schedule"] == "interleaved",
                     "virtual chunks act only in interleaved."))
    first = schedule_view(schedule, stages, microbatches, f=1.0, b=2.0, w=1.0, fb=2.5)
    return LiveFigure(controls, schedule_view, plots.update_gantt, plots.gantt(first),
                      summary=_summary, extra=[hint])
