"""Widget for notebook 12: lambda, MTP depth and draft temperature -> measured acceptance."""

from __future__ import annotations

from course import mtp
from course.plots import mtp as plots
from course.presets import preset
from course.runcache import RunCache
from course.speculative import expected_tokens_per_step
from course.widgets import LiveFigure, register_bench, slider

#: Measured speculation by (depth, lambda, draft temperature, preset sizes); `SPECS.clear()`
#: forgets them.
SPECS = RunCache(32)


def measure(lam: float, depth: int, draft_temperature: float, progress=None) -> dict:
    """Train (or reuse) the model for (lambda, depth), then decode greedily with sampled
    drafts; `progress(done, total, text)` reports both phases (see `course.widgets`)."""
    p = preset("mtp")
    depth, lam, temp = int(depth), round(float(lam), 2), round(float(draft_temperature), 2)

    def run():
        trained = mtp.train(depth, lam, progress=progress)  # cached by (depth, lambda)
        spec = mtp.speculate(trained.model, mtp.prompts(p["widget_prompts"], p["prompt_len"]),
                             p["new_tokens"], draft_temperature=temp, progress=progress)
        return trained.val_loss, spec

    sizes = tuple(p[k] for k in ("steps", "widget_prompts", "prompt_len", "new_tokens"))
    val_loss, spec = SPECS.get((depth, lam, temp, sizes), run)
    return dict(val_loss=val_loss, spec=spec, depth=depth)


def clear_caches() -> None:
    """Forget every trained model and measurement (for `course.bench`'s uncached moves)."""
    SPECS.clear()
    mtp.RUNS.clear()


def _draw(fig, result) -> None:
    spec = result["spec"]
    fig.data[0].x = [str(k) for k in spec.by_type]
    fig.data[0].y = [100 * v[0] for v in spec.by_type.values()]
    fig.data[0].customdata = [v[1] for v in spec.by_type.values()]
    fig.layout.shapes[0].y0 = fig.layout.shapes[0].y1 = 100 * spec.acceptance[0]
    fig.layout.annotations[0].text = f"all drafts {100 * spec.acceptance[0]:.0f}%"
    fig.layout.annotations[0].y = 100 * spec.acceptance[0]


def _summary(result) -> str:
    spec = result["spec"]
    acc = ", ".join(f"depth {k}: <b>{100 * a:.0f}%</b>" for k, a in
                    enumerate(spec.acceptance, start=1))
    return (f"acceptance {acc} · <b>{spec.tokens_per_step:.2f}</b> tokens per main-model step "
            f"(ceiling 1 + p + …: {expected_tokens_per_step(spec.acceptance):.2f}) · "
            f"main-model val loss {result['val_loss']:.3f} · greedy output identical: "
            f"{spec.identical}")


@register_bench("mtp_speculation", notebook="12", sweep=lambda: [
    dict(draft_temperature=1.0), dict(lam=0.5), dict(depth=2), dict(lam=0.0)],
    clear=clear_caches)
def mtp_speculation() -> LiveFigure:
    """Sliders -> a (cached) training run and measured speculative decoding."""
    controls = dict(
        lam=slider("MTP weight λ", 0.0, 1.0, 0.3, step=0.1, slow=True, fmt=".1f"),
        depth=slider("MTP depth", 1, 2, 1, slow=True),
        draft_temperature=slider("draft temperature", 0.0, 2.0, 0.0, step=0.25, slow=True,
                                 fmt=".2f"),
    )
    fig = plots.acceptance_bars({"colour": (0.0, 0)}, "Depth-1 drafts accepted, by the kind of "
                                "token guessed", "kind of token", overall=0.0)
    return LiveFigure(controls, measure, _draw, fig, summary=_summary, progress=True)
