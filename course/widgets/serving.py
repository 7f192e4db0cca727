"""Widgets for notebook 15: the toy server, V3's decode on paper, EPLB, the economics."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from course import eplb, serving
from course.plots import serving as plots
from course.presets import preset
from course.units import fmt_bytes
from course.widgets import LiveFigure, dropdown, log_slider, register_bench, slider


def _live(controls, compute, draw, figure, summary, slow: bool = False) -> LiveFigure:
    """A LiveFigure; a slow one runs in the background with a progress line."""
    return LiveFigure(controls, compute, draw, figure, summary=summary, progress=slow)


# -------------------------------------------------------------------------- the server

ON_OFF = {"on": True, "off": False}


def serve_toy(max_batch: int, rate: float, budget_tokens: int, prefix_share: float,
              prefix_cache: str = "on", progress=None, model=None) -> serving.ServeResult:
    """One measured run of the toy server at these settings (a second or two)."""
    return serving.run(max_batch=int(max_batch), rate=float(rate),
                       budget_tokens=int(budget_tokens), prefix_share=float(prefix_share),
                       prefix_cache=ON_OFF[prefix_cache], progress=progress, model=model)


def summary_server(r: serving.ServeResult) -> str:
    s, per = r.summary(), r.kv_bytes_per_token
    return (f"<b>{s['output_tokens_per_s']:,.0f} output tokens/s</b> · time to first token "
            f"{1e3 * s['mean_ttft_s']:,.0f} ms on average ({1e3 * s['p90_ttft_s']:,.0f} ms "
            f"for the slowest 10%) · <b>{1e3 * s['mean_tpot_s']:.1f} ms per output token</b> "
            f"· {s['mean_batch']:.1f} requests per decode step · prompt tokens computed "
            f"{s['prefill_share_computed']:.0%} · cache peak {s['peak_used_tokens']} of "
            f"{s['budget_tokens']} tokens ({fmt_bytes(s['peak_used_tokens'] * per)} of "
            f"{fmt_bytes(s['budget_tokens'] * per)})")


@register_bench("toy_server", notebook="15", sweep=lambda: [
    dict(max_batch=b, rate=r, budget_tokens=m, prefix_share=p) for b, r, m, p in
    [(1, 40.0, 512, 0.5), (16, 40.0, 512, 0.5), (8, 10.0, 256, 0.0), (8, 100.0, 1024, 1.0)]])
def server(model=None, first: serving.ServeResult | None = None) -> LiveFigure:
    """Batch cap, arrival rate, cache budget, prefix share -> a measured serving run.
    `first`: a run already made at the default settings (the notebook's own, with the
    same model) to show at the start instead of serving the stream again."""
    p = preset("serving")
    controls = dict(
        max_batch=slider("batch cap", 1, 32, p["max_batch"], slow=True),
        rate=log_slider("arrivals per second", 0, 2.5, p["rate"], slow=True),
        budget_tokens=slider("KV budget (tokens)", 64, 2048, p["budget_tokens"], step=32,
                             slow=True),
        prefix_share=slider("share with the shared prefix", 0.0, 1.0, p["prefix_share"],
                            step=0.1, slow=True, fmt=".1f"),
        prefix_cache=dropdown("prefix cache", ON_OFF, "on"),
    )

    start = {k: c.value for k, c in controls.items()}
    ready = []  # the run at `start`, used once: by LiveFigure's own first update

    def compute(progress=None, **values):
        if ready and all(math.isclose(values[k], v) if isinstance(v, float) else values[k] == v
                         for k, v in start.items()):
            return ready.pop()
        return serve_toy(**values, progress=progress, model=model)

    if first is None:
        first = compute(**start)
    elif ((first.max_batch, first.budget_tokens, first.prefix_cache)
          != (p["max_batch"], p["budget_tokens"], True)):
        raise ValueError("first must be a run at the widget's defaults: batch cap "
                         f"{p['max_batch']}, KV budget {p['budget_tokens']} tokens, prefix "
                         "cache on.")
    ready.append(first)
    fig = plots.server_timeline(first)
    return _live(controls, compute, plots.update_timeline, fig, summary_server, slow=True)


# ------------------------------------------------------------------------ V3 on paper

BATCHES = np.unique(np.logspace(0, np.log10(512), 48).round().astype(int))
KV_DTYPES = {"BF16 (2 bytes)": 2.0, "FP8 (1 byte)": 1.0}


def decode_on_paper(context: float, batch: int, gpu_name: str = "H800",
                    kv_dtype: str = "BF16 (2 bytes)") -> dict:
    kw = dict(context=int(round(context)), gpu_name=gpu_name,
              kv_dtype_bytes=KV_DTYPES[kv_dtype])
    return dict(curve=serving.v3_decode_curve(BATCHES, **kw),
                step=serving.v3_decode(int(batch), **kw),
                hidden=serving.v3_decode(int(batch), overlap=True, **kw))


def summary_decode(r) -> str:
    s, h = r["step"], r["hidden"]
    ms = lambda v: f"{1e3 * v:.1f} ms"  # noqa: E731
    return (f"{s.batch} requests per GPU at {s.context:,} cached tokens: weights "
            f"{ms(s.weight_s)} + KV cache {ms(s.kv_s)} of HBM reads, matmuls {ms(s.matmul_s)} "
            f"+ attention {ms(s.attention_s)} of tensor-core time, all-to-all "
            f"{ms(s.comm_s)} · step {ms(s.seconds)} → <b>{s.tokens_per_s_per_node:,.0f} "
            f"tokens/s per node, {s.tokens_per_s_per_request:.1f} per request</b> "
            f"(all-to-all hidden: {h.tokens_per_s_per_node:,.0f} and "
            f"{h.tokens_per_s_per_request:.1f}) · published: 14.8k per node, 20–22 per request")


@register_bench("v3_decode_on_paper", notebook="15", sweep=lambda: [
    dict(context=c, batch=b) for c, b in [(4989, 128), (1000, 16), (32768, 64), (128000, 4)]])
def v3_decode() -> LiveFigure:
    """Context, requests per GPU, GPU, KV dtype -> V3's decode throughput on paper."""
    controls = dict(context=log_slider("cached tokens per request", 2.5, np.log10(131072),
                                       4989),
                    batch=slider("requests per GPU", 1, 512, 128),
                    gpu_name=dropdown("GPU", ["H800", "H200"], "H800"),
                    kv_dtype=dropdown("KV cache", KV_DTYPES, "BF16 (2 bytes)"))
    first = decode_on_paper(**{k: c.value for k, c in controls.items()})
    fig = plots.v3_decode(first["curve"], serving.PUBLISHED)
    s = first["step"]
    fig.add_scatter(x=[s.batch], y=[s.tokens_per_s_per_node], mode="markers", row=1, col=1,
                    name="your setting", marker=dict(size=12, color="black"))
    return _live(controls, decode_on_paper, _draw_decode_marker, fig, summary_decode)


def _draw_decode_marker(fig, r) -> None:
    c = r["curve"]
    for i, key in enumerate(("serial", "overlap")):
        fig.data[2 * i].y = c[key]["per_node"]
        fig.data[2 * i + 1].x, fig.data[2 * i + 1].y = c[key]["per_node"], c[key]["per_request"]
    s = r["step"]
    fig.data[-1].x, fig.data[-1].y = [s.batch], [s.tokens_per_s_per_node]


# ------------------------------------------------------------------------------- EPLB

LAYOUTS = {
    "prefill unit: 32 GPUs on 4 nodes (hierarchical)": dict(nodes=4, gpus=32),
    "decode unit: 144 GPUs on 18 nodes (global)": dict(nodes=18, gpus=144),
}
V3_LAYERS, V3_EXPERTS, V3_GROUPS = 58, 256, 8


@lru_cache(maxsize=16)
def _v3_load(skew: float) -> np.ndarray:
    return eplb.skewed_load(V3_LAYERS, V3_EXPERTS, skew, seed=0)


def _redundant(gpus: int, extra: int) -> int:
    """Redundant experts when each of `gpus` GPUs holds `extra` slots more than the fewest
    that fit all 256 experts (the total must fill every GPU equally)."""
    return (-(-V3_EXPERTS // gpus) + extra) * gpus - V3_EXPERTS


def balance_v3(layout: str, extra_slots: int, skew: float = 1.0) -> dict:
    """EPLB on the V3-shaped synthetic load for the chosen layout, with `extra_slots` slots
    per GPU beyond the minimum (prefill: 8 + extra, decode: 2 + extra)."""
    lay = LAYOUTS[layout]
    if int(extra_slots) != extra_slots or not 0 <= extra_slots <= 8:
        raise ValueError(f"Extra slots per GPU must be 0 to 8, not {extra_slots}.")
    load = _v3_load(round(float(skew), 2))
    redundant = _redundant(lay["gpus"], int(extra_slots))
    placement = eplb.rebalance(load, V3_EXPERTS + redundant, V3_GROUPS, lay["nodes"],
                               lay["gpus"])
    static = (eplb.static_placement(load, lay["gpus"]) if V3_EXPERTS % lay["gpus"] == 0
              else None)
    return dict(placement=placement, static=static, sweep=_sweep(layout, round(float(skew), 2)),
                redundant=redundant, gpus=lay["gpus"])


@lru_cache(maxsize=32)
def _sweep(layout: str, skew: float) -> dict:
    """The imbalance curve over 0..8 extra slots per GPU (cached: ~1 s, once per curve)."""
    lay = LAYOUTS[layout]
    return eplb.sweep_redundant(_v3_load(skew), [_redundant(lay["gpus"], e) for e in range(9)],
                                V3_GROUPS, lay["nodes"], lay["gpus"])


def eplb_figure(r: dict):
    from plotly.subplots import make_subplots

    from course.plots import COLORS, TEMPLATE

    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.1,
                        subplot_titles=("tokens per GPU, layer 0", "busiest / average GPU"))
    gpus = list(range(r["gpus"]))
    fig.add_bar(x=gpus, y=[0] * r["gpus"], name="one copy per expert", row=1, col=1,
                marker_color=COLORS["bad"], opacity=0.5)
    fig.add_bar(x=gpus, y=[0] * r["gpus"], name="EPLB", row=1, col=1,
                marker_color=COLORS["good"])
    fig.add_scatter(x=[0], y=[1], mode="lines+markers", name="EPLB, mean over layers",
                    row=1, col=2, line=dict(color=COLORS["primary"]))
    fig.add_scatter(x=[0], y=[1], mode="lines", name="one copy per expert", row=1, col=2,
                    line=dict(color=COLORS["bad"], dash="dash"))
    fig.add_scatter(x=[0], y=[1], mode="markers", name="your setting", row=1, col=2,
                    marker=dict(size=12, color="black"))
    fig.update_layout(template=TEMPLATE, title="Expert-parallel load balancing on a "
                      "V3-shaped load (256 experts, 58 layers)", barmode="overlay",
                      height=420, width=900, legend=dict(orientation="h", y=-0.22))
    fig.update_xaxes(title_text="GPU", row=1, col=1)
    fig.update_xaxes(title_text="redundant expert slots", row=1, col=2)
    _draw_eplb(fig, r)
    return fig


def _draw_eplb(fig, r) -> None:
    p, s = r["placement"], r["sweep"]
    fig.data[1].x, fig.data[1].y = list(range(r["gpus"])), p.gpu_load[0]
    fig.data[0].x = list(range(r["gpus"]))
    fig.data[0].y = r["static"].gpu_load[0] if r["static"] is not None else [0] * r["gpus"]
    fig.data[2].x, fig.data[2].y = s["redundant"], s["imbalance"]
    fig.data[3].x = [s["redundant"][0], s["redundant"][-1]]
    fig.data[3].y = [s["static"]] * 2 if np.isfinite(s["static"]) else [None, None]
    fig.data[4].x, fig.data[4].y = [r["redundant"]], [float(p.imbalance.mean())]


def summary_eplb(r) -> str:
    p = r["placement"]
    before = ("one copy per expert: busiest GPU <b>{:.2f}×</b> the average · ".format(
        r["sweep"]["static"]) if r["static"] is not None else
        f"one copy per expert does not fit: 256 experts do not divide over {r['gpus']} GPUs · ")
    return (before + f"EPLB ({p.policy}, {r['redundant']} redundant, {p.per_gpu} slots per "
            f"GPU): <b>{p.imbalance.mean():.2f}×</b> on average over the layers, worst layer "
            f"{p.imbalance.max():.2f}×")


@register_bench("eplb_v3", notebook="15", sweep=lambda: [
    dict(layout=layout, extra_slots=e, skew=s) for layout, e, s in
    [(list(LAYOUTS)[0], 1, 1.0), (list(LAYOUTS)[0], 0, 1.5), (list(LAYOUTS)[1], 0, 1.0),
     (list(LAYOUTS)[1], 1, 0.5)]])
def eplb_v3() -> LiveFigure:
    """Layout, redundant slots, skew -> GPU loads before/after and the imbalance curve."""
    first_layout = list(LAYOUTS)[0]
    controls = dict(layout=dropdown("layout", LAYOUTS, first_layout),
                    extra_slots=slider("slots per GPU above the minimum", 0, 8, 1),
                    skew=slider("load skew (log-normal σ)", 0.0, 2.0, 1.0, step=0.1,
                                fmt=".1f", slow=True))
    fig = eplb_figure(balance_v3(first_layout, 1, 1.0))
    return _live(controls, balance_v3, _draw_eplb, fig, summary_eplb)


# -------------------------------------------------------------------------- economics


def economics(price: float, cache_hit: float, billed: float, decode_per_node: float,
              prefill_per_node: float, idle: float, price_scale: float) -> dict:
    return serving.scenario(price, cache_hit, billed, decode_per_node, prefill_per_node,
                            idle, price_scale)


def _draw_economics(fig, s) -> None:
    P = serving.PUBLISHED
    fig.data[0].y = [P["cost"], s["cost"]]
    fig.data[0].text = [f"${P['cost']:,.0f}", f"${s['cost']:,.0f}"]
    fig.data[1].y = [P["revenue"], s["revenue"]]
    fig.data[1].text = [f"${P['revenue']:,.0f}", f"${s['revenue']:,.0f}"]


def summary_economics(s) -> str:
    return (f"{s['nodes']:.1f} nodes on average ({s['busy']['prefill']:.1f} prefilling, "
            f"{s['busy']['decode']:.1f} decoding, the rest idle) · cost <b>${s['cost']:,.0f}</b>"
            f" · revenue <b>${s['revenue']:,.0f}</b> · profit / cost "
            f"<b>{s['cost_profit_margin']:.0%}</b> · profit / revenue "
            f"<b>{s['revenue_margin']:.1%}</b>")


@register_bench("serving_economics", notebook="15", sweep=lambda: [
    dict(price=p, billed=b, idle=i) for p, b, i in
    [(2.0, 1.0, 0.0), (3.0, 0.5, 0.2), (1.0, 0.2, 0.4), (2.0, 0.8, 0.1)]])
def economics_widget() -> LiveFigure:
    """Price, cache hits, billed share, per-node rates, idle share, price scale ->
    cost, revenue and the two margins for the published day's tokens."""
    P = serving.PUBLISHED
    controls = dict(
        price=slider("$ per GPU-hour", 0.5, 5.0, 2.0, step=0.1, fmt=".1f"),
        cache_hit=slider("input hitting the cache", 0.0, 1.0, 0.5625, step=0.0125,
                         fmt=".3f"),
        billed=slider("share of tokens billed", 0.0, 1.0, 1.0, step=0.05, fmt=".2f"),
        decode_per_node=log_slider("decode tokens/s per node", 3, 5, P[
            "decode_tokens_per_s_per_node"], step=0.02),
        prefill_per_node=log_slider("prefill tokens/s per node", 4, 6, P[
            "prefill_tokens_per_s_per_node"], step=0.02),
        idle=slider("capacity idle", 0.0, 0.6, 0.0, step=0.05, fmt=".2f"),
        price_scale=slider("prices × (R1 list = 1)", 0.1, 1.5, 1.0, step=0.05, fmt=".2f"),
    )
    first = economics(**{k: c.value for k, c in controls.items()})
    fig = plots.economics(first, P)
    return _live(controls, economics, _draw_economics, fig, summary_economics)
