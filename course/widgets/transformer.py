"""Widgets for notebook 01: attention heat map and knock-out switches on the trained tiny
model. Each call runs the real model once on the prompt (about a millisecond); the model
itself is trained once per kernel by `course.inspect_model.trained_tiny_model()`."""

from __future__ import annotations

import ipywidgets as W

from course import inspect_model as im
from course.plots import transformer as plots
from course.widgets import LiveFigure, dropdown, register_bench, slider

DEFAULT_PROMPT = "the green forest has"


def _text(value: str) -> W.Text:
    return W.Text(value=value, description="sentence", continuous_update=False,
                  style={"description_width": "initial"}, layout=W.Layout(width="420px"))


def attention_view(text: str, layer: int, head: int):
    """One head's attention map for a prompt (the widget's compute; no maths here)."""
    model = im.trained_tiny_model().model
    if not 0 <= layer < len(model.blocks) or not 0 <= head < model.cfg.n_heads:
        raise ValueError("That layer or head does not exist in the tiny model.")
    maps = im.attention_maps(model, text)
    return maps.tokens, maps.weights[layer, head]


def _draw_attention(fig, result) -> None:
    tokens, w = result
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig.data[0].update(z=w.tolist(), x=labels, y=labels)


@register_bench("attention_map", notebook="01", sweep=lambda: [
    dict(layer=0, head=0), dict(layer=1, head=3), dict(text="babe ruth played"),
    dict(text="in the blue lake every flower is"), dict(text="the green forest has")])
def attention_explorer() -> LiveFigure:
    """Type a sentence; pick a layer and a head; see where each word looks."""
    cfg = im.trained_tiny_model().model.cfg
    controls = dict(text=_text(DEFAULT_PROMPT),
                    layer=slider("layer", 0, cfg.n_layers - 1, 0),
                    head=slider("head", 0, cfg.n_heads - 1, 0))
    tokens, w = attention_view(DEFAULT_PROMPT, 0, 0)
    return LiveFigure(controls, attention_view, _draw_attention,
                      plots.attention_heatmap(tokens, w))


def knockout_view(text: str, ablation: str = "zero", **switches: bool):
    """Next-word probabilities with the checked parts (keys attn_i / ffn_i) zeroed or
    replaced by their mean over held-out sentences (`ablation`)."""
    model = im.trained_tiny_model().model
    attn = [int(k[5:]) for k, on in switches.items() if on and k.startswith("attn_")]
    ffn = [int(k[4:]) for k, on in switches.items() if on and k.startswith("ffn_")]
    with im.ablated(model, im.knockout_set(attn, ffn), ablation) as ko:
        return im.next_token_probs(model, text, ko)


def _draw_bars(fig, pairs) -> None:
    fig.data[0].update(x=[p for _, p in pairs], y=[w for w, _ in pairs],
                       text=[f"{p:.0%}" for _, p in pairs])


def _checkbox(label: str) -> W.Checkbox:
    return W.Checkbox(value=False, description=label, indent=False,
                      layout=W.Layout(width="150px"))


@register_bench("knockout", notebook="01", sweep=lambda: [
    dict(attn_0=True), dict(attn_0=False, ffn_0=True), dict(text="babe ruth played"),
    dict(ffn_0=False, attn_1=True), dict(text="the capital of peru is"),
    dict(ablation="mean")])
def knockout_explorer() -> LiveFigure:
    """Tick a box to knock that part out (zeroed, or replaced by its mean) and watch the
    next-word guess change."""
    L = im.trained_tiny_model().model.cfg.n_layers
    controls = dict(text=_text(DEFAULT_PROMPT),
                    ablation=dropdown("knock out by", list(im.ABLATIONS), "zero"))
    for i in range(L):
        controls[f"attn_{i}"] = _checkbox(f"attention {i}")
        controls[f"ffn_{i}"] = _checkbox(f"MLP {i}")
    pairs = knockout_view(DEFAULT_PROMPT)
    return LiveFigure(controls, knockout_view, _draw_bars, plots.next_token_bars(pairs),
                      summary=lambda p: f"top guess: <b>{p[0][0]}</b> ({p[0][1]:.0%})")


