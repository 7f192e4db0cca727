"""The notebooks' widgets, built exactly as each notebook builds them and driven here.

Notebooks show their widgets and leave them alone: after Run All every widget sits at its
defaults with no error (issue 16). The moves that the notebooks used to make from code,
and the claims they checked, live here, checked against the computation the widget shows
(its figure data and summary, not only `live.result`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import ipywidgets as W
import numpy as np
import pytest
import torch

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


# ------------------------------------------------------- the notebooks' own builders


@lru_cache(maxsize=1)
def nb11_model_and_idx():
    """Notebook 11's trained MHA model and held-out batch, made as the notebook makes them."""
    from course import data
    from course.device import seed_everything
    from course.train import tiny_config, train_lm

    seed_everything(0)
    run = train_lm(tiny_config(), steps=300, seed=0)
    _, val = data.split()
    return run.model, val[: 32 * 16].view(16, 32)


@lru_cache(maxsize=1)
def nb14_model():
    """Notebook 14 passes `td.train("full").model`; training it (FP8 emulated on a CPU)
    takes about a minute on a loaded machine, so the test passes the same full tiny
    DeepSeek untrained and seeded. Nothing checked here depends on the training: the
    vocabulary, greedy decoding and the draft check are the same for any weights."""
    from course import tiny_deepseek as td
    from course.model import TinyLM

    torch.manual_seed(0)
    return TinyLM(td.full_config("toy"))


@lru_cache(maxsize=1)
def nb05_machine():
    """Notebook 05's measurement of this machine, which its roofline widget is given."""
    from course import roofline

    return roofline.measure_machine()


def _build(notebook: str, name: str):
    """Build widget `name` the way notebook `notebook` does (same factory, same arguments)."""
    import importlib

    module = importlib.import_module(f"course.widgets.{WIDGETS[notebook][name]}")
    factory = getattr(module, name)
    if name == "latent_rank":
        return factory(*nb11_model_and_idx())
    if name == "generation":
        return factory(nb14_model())
    if name == "roofline_explorer" and notebook == "11":  # set for decode on an H200
        return factory(gpu_name="H200", tokens=1, seq_len=32_768, tokens_per_expert=1)
    if name == "roofline_explorer":
        return factory(nb05_machine())
    return factory()


#: notebook -> {factory name: course.widgets module}; every widget a notebook shows.
WIDGETS = {
    "00": {"turntable_widget": "welcome"},
    "01": {"attention_explorer": "transformer", "knockout_explorer": "transformer"},
    "02": {"knob_explorer": "backprop"},
    "03": {"memory_widget": "memory"},
    "04": {"parallel_widget": "parallel"},
    "05": {"training_bill": "compute",
           "roofline_explorer": "roofline"},  # driven in tests/test_roofline.py
    "06": {"collectives_widget": "comms", "routing_widget": "comms"},
    "07": {"pipeline_gantt": "pipeline"},
    "08": {"collapse_explorer": "moe"},
    "09": {"balancing_explorer": "moe"},
    "10": {"scaling_widget": "fp8", "accumulation_widget": "fp8"},
    "11": {"kv_cache_calculator": "kvcache", "latent_rank": "kvcache",
           "measured_decode": "kvcache",
           "roofline_explorer": "roofline"},  # driven in tests/test_roofline.py
    "12": {"mtp_speculation": "mtp"},
    "13": {"planner_widget": "planner"},
    "14": {"generation": "tiny_deepseek"},
    "16": {"imitation_explorer": "rl", "grpo_explorer": "rl"},  # driven in tests/test_rl.py
}
TRAINING_BACKED = {"collapse_explorer", "balancing_explorer", "mtp_speculation", "generation",
                   "latent_rank", "imitation_explorer", "grpo_explorer"}


def _notebook_source(notebook: str) -> str:
    (path,) = NOTEBOOKS.glob(f"{notebook}_*.py")
    return path.read_text()


def test_the_list_covers_every_widget_the_notebooks_show():
    import importlib
    import inspect

    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        nb = path.name[:2]
        imported = {(m, n.strip()) for m, names in re.findall(
            r"^from course\.widgets\.(\w+) import (.+)$", path.read_text(), flags=re.M)
            for n in names.split(",")}
        shown = {(m, n) for m, n in imported  # widget factories, not helper classes
                 if inspect.isfunction(getattr(importlib.import_module(f"course.widgets.{m}"),
                                               n))}
        listed = {(m, n) for n, m in WIDGETS.get(nb, {}).items()}
        assert shown == listed, (f"{path.name} shows widgets {sorted(shown - listed)} that "
                                 "WIDGETS here does not list: add them (and a test that drives "
                                 "them) so their defaults are checked too")


@pytest.mark.parametrize("notebook", sorted(WIDGETS))
def test_notebooks_do_not_drive_their_widgets(notebook):
    text = _notebook_source(notebook)
    driving = [line for line in text.splitlines()
               if re.search(r"\.controls\[[^]]+\]\.value *=|\b\w*live\w*\.apply\(|"
                            r"\.descend\(\)", line)]
    assert not driving, f"notebook {notebook} drives a widget from code: {driving}"


def _texts(live) -> str:
    """All the text the widget shows outside its figure (hints, messages, summary)."""
    return " ".join(c.value for c in live.widget.children if isinstance(c, W.HTML))


def _figure_has_data(live) -> bool:
    values = [getattr(trace, axis, None) for trace in live.fig.data for axis in ("x", "y", "z")]
    return any(v is not None and len(v) > 0 for v in values)


@pytest.mark.parametrize("notebook,name", [(nb, n) for nb, names in WIDGETS.items()
                                           for n in names if n not in TRAINING_BACKED])
def test_defaults_show_no_error_and_a_figure(notebook, name):
    live = _build(notebook, name)
    assert live.error is None and live.message.value == ""
    assert live.result is not None and _figure_has_data(live)
    if live.summarise is not None:
        assert live.summary.value == live.summarise(live.result) != ""


# ------------------------------------------------------------------------------ 00-02


def test_00_turntable_knobs_and_button():
    from course import turntable

    live = _build("00", "turntable_widget")
    pts = turntable.make_points()
    before = live.result["loss"]
    live.controls["w"].value = 2.0
    live.controls["b"].value = 1.0
    assert live.result["loss"] == pytest.approx(turntable.loss(2.0, 1.0, pts))
    assert live.result["loss"] < before
    assert list(live.fig.data[1].y) == pytest.approx([2.0 * -2.2 + 1, 2.0 * 2.2 + 1])
    assert f"{turntable.loss(2.0, 1.0, pts):.3f}" in live.summary.value
    live.descend()  # ten gradient steps, as the button does
    w, b = live.controls["w"].value, live.controls["b"].value
    assert (w, b) != (2.0, 1.0) and live.result["loss"] < turntable.loss(2.0, 1.0, pts)
    assert live.result["loss"] == pytest.approx(turntable.loss(w, b, pts))


def test_01_knockout_changes_the_guess_and_unknown_words_are_a_sentence():
    from course import inspect_model as im

    model = im.trained_tiny_model().model
    ko = _build("01", "knockout_explorer")
    before = ko.result[0][0]
    ko.controls["attn_0"].value = True
    expected = im.next_token_probs(model, "the green forest has", im.knockout_set([0], []))
    assert ko.result == expected and ko.result[0][0] != before
    assert list(ko.fig.data[0].y) == [w for w, _ in expected]
    assert f"<b>{expected[0][0]}</b>" in ko.summary.value

    attn = _build("01", "attention_explorer")
    z = attn.fig.data[0].z
    attn.apply(text="the purple dragon")
    assert attn.error and "never saw" in attn.error and "never saw" in attn.message.value
    assert attn.fig.data[0].z == z  # the last good map stays


def test_02_more_steps_lower_the_loss_and_a_large_rate_diverges():
    from course import optim

    live = _build("02", "knob_explorer")
    short = live.result["paths"]["sgd"].loss[-1]
    live.controls["steps"].value = 100
    sgd = optim.trajectories(-1.0, 4.0, 0.02, 100)["sgd"]
    assert live.result["paths"]["sgd"].loss[-1] == pytest.approx(sgd.loss[-1])
    assert sgd.loss[-1] < short
    trace = live.fig.data[1 + list(live.result["paths"]).index("sgd")]
    assert list(trace.x) == pytest.approx(list(sgd.knobs[:, 0]))
    live.apply(lr=0.2)
    assert 0.2 > optim.max_stable_lr(optim.valley_points())
    assert live.result["paths"]["sgd"].diverged and "sgd: diverged" in live.summary.value
    assert "plain SGD must diverge" in live.summary.value


# ------------------------------------------------------------------------------ 03-07


def test_03_memory_follows_model_sequence_and_recompute():
    from course import memory

    live = _build("03", "memory_widget")
    before = live.result["train_gpus"]
    live.apply(recompute="full", seq_len=32768, model="llama-3-70b")
    train = memory.training_memory("llama-3-70b", "deepseek-fp8", "adamw", 32768, 1, "full")
    assert live.error is None and live.result["train"] == train
    assert live.result["train_gpus"] == memory.gpus_needed(sum(train.values())) != before
    for trace in live.fig.data:
        assert trace.y[0] == pytest.approx(train.get(trace.name, 0) / 1e9)


def test_03_custom_sliders_act_only_for_the_custom_model():
    live = _build("03", "memory_widget")
    custom = [live.controls[k] for k in ("hidden", "layers", "experts")]
    hint = "The custom sliders act only when the model is “custom”."
    assert all(c.disabled for c in custom) and hint in _texts(live)
    live.controls["model"].value = "custom"
    assert not any(c.disabled for c in custom) and hint not in _texts(live)
    params = live.result["params"].total
    live.controls["layers"].value = 64
    assert live.result["params"].total > params
    live.controls["model"].value = "deepseek-v3"
    assert all(c.disabled for c in custom)


def test_04_fewer_experts_per_rank_cost_memory_and_too_many_stages_are_a_sentence():
    from course.widgets.parallel import compute

    live = _build("04", "parallel_widget")
    before = sum(live.result["memory"].values())
    live.controls["ep"].value = 8
    values = {k: c.value for k, c in live.controls.items()}
    assert live.result["memory"] == compute(**values)["memory"]
    assert sum(live.result["memory"].values()) > before
    live.controls["pp"].value = 64  # 64 stages, but only 61 layers
    assert "more stages than" in live.error and "more stages than" in live.message.value
    assert live.controls["sp"].disabled  # TP = 1: sequence parallelism has nothing to split
    live.apply(pp=16, tp=2)
    assert live.error is None and not live.controls["sp"].disabled


def test_05_twice_the_gpus_half_the_days():
    live = _build("05", "training_bill")
    before = live.result["estimate"].days
    live.controls["n_gpus"].value = 4096  # from 2,048: the same work on twice the GPUs
    assert live.result["estimate"].days == pytest.approx(before / 2, rel=1e-9)
    assert f"{before / 2:.1f} days" in live.summary.value


def test_06_more_nodes_slow_the_all_reduce_and_the_node_limit_holds():
    from course import comms

    live = _build("06", "collectives_widget")
    before = live.result["times"][0].total_s
    live.controls["nodes"].value = 64
    t = comms.collective_time(comms.KINDS[0], 100e6, 8, 64, nvlink_gb_s=160, ib_gb_s=50)
    assert live.result["times"][0] == t and t.total_s > before
    assert live.fig.data[1].y[0] == pytest.approx(t.inter_s * 1e3)

    route = _build("06", "routing_widget")
    route.controls["max_nodes"].value = 2
    stats = comms.simulate_routing(n_tokens=2048, max_nodes=2, locality=0.0)
    assert route.result["stats"] == stats and stats.nodes_per_token <= 2
    assert list(route.fig.data[0].y) == list(stats.histogram)
    assert sum(stats.histogram[2:]) == 0 and sum(stats.histogram) == pytest.approx(1)


def test_06_links_that_carry_nothing_are_disabled():
    live = _build("06", "collectives_widget")
    assert not live.controls["ib_gb_s"].disabled and not live.controls["nvlink_gb_s"].disabled
    live.apply(nodes=1)
    assert live.controls["ib_gb_s"].disabled and "InfiniBand joins nodes" in _texts(live)
    live.apply(gpus_per_node=1, nodes=2)
    assert live.controls["nvlink_gb_s"].disabled and not live.controls["ib_gb_s"].disabled


def test_07_1f1b_on_five_stages_has_the_published_bubble():
    from course import pipeline

    live = _build("07", "pipeline_gantt")
    before = live.result.makespan
    live.controls["schedule"].value = "1f1b"
    assert live.result.schedule == "1f1b" and live.result.makespan != before
    live.controls["stages"].value = 5
    expected = pipeline.simulate("1f1b", 5, 20, f=1.0, b=2.0)
    assert live.result.stages == 5 and live.result.makespan == expected.makespan
    assert live.result.bubble == pytest.approx((5 - 1) * (1.0 + 2.0))  # (PP-1)(F+B)
    assert sum(len(t.x) for t in live.fig.data) == len(expected.events)


def test_07_w_and_fb_act_only_in_the_schedules_that_use_them():
    live = _build("07", "pipeline_gantt")  # dualpipe: both act
    assert not live.controls["w"].disabled and not live.controls["fb"].disabled
    live.apply(fb=0.5)  # shorter than B: a sentence
    assert live.error and "fb" in live.error
    live.apply(schedule="1f1b")  # F&B no longer used: the stale value cannot block 1F1B
    assert live.error is None and live.controls["w"].disabled and live.controls["fb"].disabled
    live.apply(schedule="zb1p")
    assert not live.controls["w"].disabled and live.controls["fb"].disabled
    assert live.controls["virtual"].disabled  # chunks act only in interleaved
    live.apply(schedule="interleaved", microbatches=16)
    assert not live.controls["virtual"].disabled and live.controls["w"].disabled
    assert live.result.bubble == pytest.approx((8 - 1) * 3.0 / 2)  # (PP-1)(F+B)/v, v = 2


# ------------------------------------------------------------------------------ 08-09


def test_08_collapse_widget_trains_a_new_run_for_new_steps():
    live = _build("08", "collapse_explorer")
    assert live.error is None
    before = live.result["run"]
    live.apply(steps=60)
    assert live.result["run"].load.shape[0] == 60 and live.result["run"] is not before
    assert live.error is None


def test_09_balancing_opens_on_a_method_and_none_is_its_own_baseline():
    live = _build("09", "balancing_explorer")
    assert live.error is None and live.controls["method"].value != "none"
    assert live.result["run"] is not live.result["base"]
    assert [t.name for t in live.fig.data] == ["none", live.controls["method"].value]
    live.apply(method="none")
    assert live.result["run"] is live.result["base"]


# ------------------------------------------------------------------------------ 10-11


def test_10_a_larger_outlier_hurts_per_tensor_scaling():
    from course import fp8, fp8_accum

    scaling = _build("10", "scaling_widget")
    before = scaling.result["per tensor"]["rel_error"]
    scaling.controls["outlier"].value = 1e6
    expected = fp8.compare_scalings(outlier=1e6, fmt="e4m3")
    assert scaling.result["per tensor"]["rel_error"] == expected["per tensor"]["rel_error"]
    assert expected["per tensor"]["rel_error"] > before
    bar = list(fp8.SCALINGS).index("per tensor")
    assert scaling.fig.data[0].y[bar] == pytest.approx(100 * expected["per tensor"]["rel_error"])

    acc = _build("10", "accumulation_widget")
    before = acc.result["none"][-1]
    acc.controls["mant_bits"].value = 18
    curves = fp8_accum.accumulation_curves(2 ** 12, 18, 128, "uniform")
    np.testing.assert_allclose(acc.result["none"], curves["none"])
    assert curves["none"][-1] < before
    np.testing.assert_allclose(acc.fig.data[0].y, 100 * curves["none"])


def test_11_cache_calculator_matches_the_closed_form():
    live = _build("11", "kv_cache_calculator")
    before = live.result["at"]
    live.controls["model"].value = "llama-3-70b"
    live.controls["batch"].value = 8
    # Llama 3 70B: 80 layers x 8 KV heads x 128 x (K and V) x 2 bytes = 327,680 B per token
    assert 80 * 8 * 128 * 2 * 2 == 327_680
    assert live.error is None and live.result["at"] == 8 * 32_768 * 327_680 != before
    assert live.fig.data[2].y[0] == pytest.approx(8 * 32_768 * 327_680 / 1e9)


def test_11_latent_rank_trades_cache_for_error():
    model, idx = nb11_model_and_idx()
    live = _build("11", "latent_rank")
    assert live.error is None
    live.controls["rank"].value = 4
    small = live.result
    live.controls["rank"].value = 32
    big = live.result
    assert small["mla"] < big["mla"] and small["errors"]["K"] > big["errors"]["K"]
    from course import kvcache

    curves = kvcache.kv_rank_curves(model, idx, np.array([4, 32]))
    assert small["errors"]["K"] == pytest.approx(float(curves["K"][0]), rel=1e-5)
    assert live.fig.layout.shapes[0].x0 == 32


# ------------------------------------------------------------------------------ 12-14


def test_12_a_hotter_draft_changes_acceptance():
    live = _build("12", "mtp_speculation")
    assert live.error is None and live.result["spec"].identical
    before = live.result["spec"].acceptance[0]
    live.apply(draft_temperature=1.0)
    assert live.error is None and live.result["spec"].acceptance[0] != before
    assert live.fig.layout.shapes[0].y0 == pytest.approx(100 * live.result["spec"].acceptance[0])


def test_13_half_the_stages_more_memory_per_gpu():
    from course import planner
    from course.parallel import Layout
    from course.plots.planner import GIB

    live = _build("13", "planner_widget")
    before = live.result.per_gpu_bytes
    live.apply(pp=8, dp=256)
    s = planner.PRESETS["DeepSeek-V3"]
    layout = Layout(dp=256, tp=s.layout.tp, pp=8, ep=s.layout.ep, zero=s.layout.zero,
                    sp=s.layout.tp > 1)
    expected = planner.plan(s, layout=layout)
    assert live.result.per_gpu_bytes == expected.per_gpu_bytes > before
    assert live.fig.data[0].y[0] == pytest.approx(list(expected.memory.values())[0] / GIB)


def test_14_generation_greedy_drafts_and_unknown_words():
    from course import tiny_deepseek as td

    live = _build("14", "generation")
    assert live.error is None
    before = live.result
    live.controls["text"].value = "the green forest has"
    expected = td.continue_text(nb14_model(), "the green forest has", 12)
    assert live.error is None and live.result.prompt != before.prompt
    assert live.result == expected
    assert live.result.plain == live.result.speculative  # greedy: drafts change speed only
    live.controls["text"].value = "the green quidditch"
    assert "never saw" in live.error and live.result == expected  # the last good one stays


@pytest.mark.parametrize("notebook,name", [(nb, n) for nb, names in WIDGETS.items()
                                           for n in names if n in TRAINING_BACKED])
def test_training_backed_defaults_show_no_error(notebook, name):
    live = _build(notebook, name)
    assert live.error is None and live.message.value == "" and live.result is not None
    if live.fig is not None:
        assert _figure_has_data(live)
    else:
        assert any(isinstance(w, W.HTML) and w.value for w in live.widget.children)


# ------------------------------------------------ controls that cannot act are disabled


def _state(live):
    return live.error, live.summary.value, live.fig.to_json()


def _other_values(control):
    if isinstance(control, W.Dropdown):
        return [v for v in control.options if v != control.value][:3]
    if isinstance(control, W.Checkbox):
        return [not control.value]
    if isinstance(control, W.FloatLogSlider):
        up = control.value * 10 ** 0.5
        return [up if np.log10(up) <= control.max else control.value / 10 ** 0.5]
    return [v for v in (control.min, control.max) if v != control.value][:1]


CALCULATORS = [("03", "memory_widget", [{}, dict(model="custom")]),
               ("04", "parallel_widget", [{}, dict(model="llama-3.1-405b", ep=1, tp=8)]),
               ("06", "collectives_widget", [{}, dict(nodes=1), dict(nodes=4, gpus_per_node=1)]),
               ("07", "pipeline_gantt", [dict(schedule=s) for s in ("gpipe", "1f1b", "zb1p",
                                                                     "dualpipe")]
                + [dict(schedule="interleaved", microbatches=16)])]


@pytest.mark.parametrize("notebook,name,states", CALCULATORS)
def test_disabled_controls_change_nothing_and_enabled_ones_do(notebook, name, states):
    live = _build(notebook, name)
    for state in states:
        live.apply(**state)
        base = _state(live)
        assert base[0] is None, (state, base[0])
        for key, control in live.controls.items():
            if key in state:
                continue
            start, moved = control.value, False
            for value in _other_values(control):
                live.apply(**{key: value})
                moved |= _state(live) != base
                live.apply(**{key: start})
            assert moved != control.disabled, (state, key, control.disabled)
