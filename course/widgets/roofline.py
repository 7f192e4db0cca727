"""Widget for notebooks 05 and 11: drag tokens per matmul, sequence length or tokens per
expert and watch DeepSeek-V3's operations cross the ridge of a GPU (or of this machine,
measured)."""

from __future__ import annotations

import html
import math

from course import roofline
from course.configs import GPUS, load_config
from course.plots import roofline as plots
from course.widgets import LiveFigure, dropdown, log_slider, register_bench

DOUBLING = math.log10(2)  # a log slider's step that doubles the value

MODEL = "deepseek-v3"
YOURS = "this machine (measured)"


def operations(tokens: float, seq_len: float, tokens_per_expert: float,
               dtype_bytes: float = 2, model: str = MODEL) -> list[roofline.Op]:
    """The widget's four operations of `model`: a dense-FFN matmul on `tokens` tokens, one
    routed expert on `tokens_per_expert` tokens, a causal attention prefill over `seq_len`
    tokens, and one decode step's absorbed-MLA attention over a `seq_len` context."""
    cfg = load_config(model)
    t, s = int(round(tokens)), int(round(seq_len))
    d, inter = cfg.hidden_size, cfg.intermediate_size
    ops = [roofline.matmul(t, d, inter, dtype_bytes, name=f"FFN matmul, {t:,} tokens"),
           roofline.moe_expert(cfg, tokens_per_expert, dtype_bytes),
           roofline.attention_prefill(cfg, s, 1, dtype_bytes),
           roofline.attention_decode(cfg, s, 1, "absorbed", dtype_bytes)]
    ops[2] = ops[2].scaled(1, f"attention prefill, {s:,} tokens")
    ops[3] = ops[3].scaled(1, "decode attention (MLA absorbed)")
    return ops


def explore(gpu_name: str, tokens: float, seq_len: float, tokens_per_expert: float,
            mine: roofline.Machine | None = None) -> dict:
    """Place the operations on the chosen machine's roofline (pure: no drawing)."""
    if gpu_name == YOURS:
        if mine is None:
            raise ValueError("This machine has not been measured: run "
                             "roofline.measure_machine() and pass it to the widget.")
        m = mine
    else:
        m = roofline.machine(gpu_name)
    points = [roofline.placed(op, m) for op in operations(tokens, seq_len, tokens_per_expert,
                                                           m.dtype_bytes)]
    measured = [(op.intensity, roofline.measured_tflops((op, s)), op.name)
                for op, s in m.points]
    return dict(machine=m, points=points, measured=measured)


def _draw(fig, r) -> None:
    plots.update(fig, [r["machine"]], r["points"], r["measured"])


def _summary(r) -> str:
    m = r["machine"]
    rows = "".join(
        f"<tr><td>{plots.tag(i)} · {html.escape(p['label'])}</td><td style='text-align:right'>"
        f"{p['intensity']:,.1f}</td><td><b>{p['bound']}-bound</b></td>"
        f"<td style='text-align:right'>{p['share_of_peak']:.0%}</td></tr>"
        for i, p in enumerate(r["points"]))
    bw = f"{m.tb_s:,.3g} TB/s" if m.tb_s >= 1 else f"{m.tb_s * 1e3:,.3g} GB/s"
    return (f"{html.escape(m.name)}: peak {m.tflops:,.3g} TFLOP/s, {bw}, "
            f"ridge <b>{m.ridge:,.0f} FLOP/B</b>"
            "<table><tr><th>operation</th><th>FLOP/B</th><th>limited by</th>"
            f"<th>of peak</th></tr>{rows}</table>")


@register_bench("roofline_explorer", notebook="05", sweep=lambda: [
    dict(tokens=1), dict(tokens=4096), dict(tokens_per_expert=8192),
    dict(seq_len=128), dict(gpu_name="H200", seq_len=32768), dict(gpu_name="A100")])
def roofline_explorer(mine: roofline.Machine | None = None, gpu_name: str = "H800",
                      tokens: int = 4096, seq_len: int = 4096,
                      tokens_per_expert: int = 128) -> LiveFigure:
    """Sliders -> DeepSeek-V3's operations on a roofline; `mine` (from
    `roofline.measure_machine()`) adds this machine and its measured matmuls."""
    names = list(GPUS) + ([YOURS] if mine is not None else [])
    controls = dict(
        gpu_name=dropdown("machine", names, gpu_name),
        # Token counts are whole: one key press doubles them (a 0.1 step would move 1 to
        # 1.26, which rounds back to 1 and changes nothing on screen).
        tokens=log_slider("tokens per matmul", 0, 5, tokens, step=DOUBLING),
        seq_len=log_slider("sequence length", 2, 5.2, seq_len, step=0.1),
        tokens_per_expert=log_slider("tokens per expert", 0, 4.5, tokens_per_expert,
                                     step=DOUBLING),
    )
    first = explore(gpu_name, tokens, seq_len, tokens_per_expert, mine)
    fig = plots.roofline([first["machine"]], first["points"], first["measured"],
                         title="DeepSeek-V3's operations on the roofline")

    def compute(**values):
        return explore(**values, mine=mine)

    return LiveFigure(controls, compute, _draw, fig, summary=_summary)
