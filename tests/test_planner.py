"""Notebook 13: the planner combines memory, layout, compute and communication."""

import pytest

from course import compute, planner
from course.kvcache import kv_bytes_per_token
from course.memory import param_count
from course.parallel import Layout, per_gpu_memory

V3 = compute.DEEPSEEK_V3


@pytest.fixture(scope="module")
def v3():
    return planner.plan(planner.PRESETS["DeepSeek-V3"])


def test_v3_preset_fits_and_lands_near_the_published_bill(v3):
    assert v3.fits and v3.setup.layout.world == 2048
    # compute-bound with overlap: FLOPs / (2048 x 1978.9 x 0.2), within 5% of 2.664M hours
    assert v3.gpu_hours() == pytest.approx(V3["pretrain_gpu_hours"], rel=0.05)
    assert v3.days() == pytest.approx(54.2, rel=0.05)


def test_step_time_is_flops_over_throughput(v3):
    flops = compute.training_flops_per_token("deepseek-v3").total * v3.setup.batch_tokens
    assert v3.compute_s == pytest.approx(flops / (2048 * 1978.9e12 * 0.2))
    assert v3.steps == pytest.approx(14.8e12 / (15360 * 4096))


def test_overlap_takes_the_max_and_no_overlap_the_sum(v3):
    assert v3.step_s(True) == max(v3.compute_s, v3.comm_s)
    assert v3.step_s(False) == pytest.approx(v3.compute_s + v3.comm_s)
    assert v3.days(False) > v3.days(True)
    assert v3.dollars() == pytest.approx(v3.gpu_hours() * 2.0)


def test_memory_is_course_parallel_per_gpu_memory(v3):
    mb = 15360 // 128
    expected = per_gpu_memory("deepseek-v3", v3.setup.layout, "deepseek-fp8",
                              recompute="selective", microbatches=mb)
    assert v3.memory == expected


def test_serving_memory_per_million_tokens(v3):
    kv = v3.serving_bytes["KV cache, 1M tokens (BF16)"]
    assert kv == kv_bytes_per_token("deepseek-v3") * 1e6 == 70_272e6
    assert v3.serving_bytes["weights (FP8)"] == param_count("deepseek-v3").total


def test_llama_preset_is_about_ten_times_the_bill(v3):
    llama = planner.plan(planner.PRESETS["Llama 3.1 405B"])
    assert llama.fits and llama.setup.layout.world == 16384
    assert 7 < llama.gpu_hours() / v3.gpu_hours() < 14


def test_too_small_a_cluster_does_not_fit():
    p = planner.plan(layout=Layout(dp=64, pp=1, ep=64, zero=1))
    assert not p.fits


@pytest.mark.parametrize("changes, msg", [
    (dict(model="llama-3-8b"), "EP needs"),
    (dict(gpu_name="A100", precision="fp8"), "fp8"),
    (dict(mfu=0.0), "MFU"),
    (dict(tokens=0), "tokens"),
    (dict(batch_tokens=4096), "micro-batch"),
])
def test_bad_setups_raise_value_error(changes, msg):
    with pytest.raises(ValueError, match=msg):
        planner.plan(**changes)


def test_serving_tokens_per_dollar_closed_form():
    got = planner.serving_tokens_per_dollar("deepseek-v3", "H800", "fp8", 0.4, 2.0)
    n = compute.matmul_params_per_token("deepseek-v3")
    assert got == pytest.approx(1978.9e12 * 0.4 / (2 * n) * 3600 / 2.0)
    dense = planner.serving_tokens_per_dollar("llama-3.1-405b", "H100 SXM", "fp8", 0.4, 2.0)
    assert got / dense == pytest.approx(
        compute.matmul_params_per_token("llama-3.1-405b") / n)


def test_widget_updates_and_shows_errors():
    from course.widgets.planner import planner_widget

    live = planner_widget()
    before = live.result.per_gpu_bytes
    live.apply(pp=8, dp=256)
    assert live.result.per_gpu_bytes > before
    live.apply(model="llama-3-8b")
    assert live.error and "EP" in live.error


def test_unknown_settings_and_wrong_types_get_a_sentence():
    for changes, words in ((dict(foo=1), "Unknown setting 'foo'"),
                           (dict(seq_len="4096"), "seq_len must be a whole number"),
                           (dict(price_per_hour=float("nan")), "price_per_hour"),
                           (dict(recompute="some"), "Unknown recompute")):
        with pytest.raises(ValueError, match=words):
            planner.plan(**changes)
