"""Notebook 13: the planner combines memory, layout, compute and communication."""

import pytest

from course import compute, kvcache, pipeline, planner
from course.kvcache import kv_bytes_per_token
from course.memory import param_count
from course.parallel import Layout, per_gpu_memory

V3 = compute.DEEPSEEK_V3


@pytest.fixture(scope="module")
def v3():
    return planner.plan(planner.PRESETS["DeepSeek-V3"])


def test_v3_mfu_is_the_isca_measurement_not_fitted_to_the_bill(v3):
    # ISCA '25 Table 4: 38.94% of the dense BF16 peak; the planner uses the FP8 peak
    assert v3.setup.mfu == pytest.approx(0.3894 * 989.4 / 1978.9, rel=1e-9)
    assert v3.setup.mfu != pytest.approx(
        compute.implied_mfu(v3.flops_per_token * 14.8e12, V3["pretrain_gpu_hours"], 1978.9),
        rel=1e-6)  # not the MFU the bill itself implies


def test_v3_preset_fits_and_agrees_with_the_published_bill(v3):
    # The MFU and the bill describe the same run: this checks the planner's FLOPs count and
    # arithmetic (250 GFLOPs/token x 14.8T at 38.94% of 989.4 TFLOP/s), not a forecast.
    assert v3.fits and v3.setup.layout.world == 2048
    assert v3.gpu_hours() == pytest.approx(V3["pretrain_gpu_hours"], rel=0.02)
    assert v3.days() == pytest.approx(2.664e6 / 2048 / 24, rel=0.02)


def test_step_time_is_flops_over_throughput(v3):
    flops = compute.training_flops_per_token("deepseek-v3").total * v3.setup.batch_tokens
    assert v3.compute_s == pytest.approx(flops / (2048 * 989.4e12 * 0.3894))
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


def test_llama_preset_is_flops_over_40_percent_of_bf16(v3):
    llama = planner.plan(planner.PRESETS["Llama 3.1 405B"])
    assert llama.fits and llama.setup.layout.world == 16384
    flops = compute.training_flops_per_token("llama-3.1-405b", seq_len=8192).total
    compute_s = flops * 2048 * 8192 / (16384 * 989.4e12 * 0.4)
    assert llama.compute_s == pytest.approx(compute_s)
    assert llama.gpu_hours() == pytest.approx(
        15.6e12 / (2048 * 8192) * max(compute_s, llama.comm_s) * 16384 / 3600)
    # the card counts all training time: the estimate is below its 30.84M hours, within 15%
    assert 0.85 * 30.84e6 < llama.gpu_hours() < 30.84e6


def test_bubble_is_the_dualpipe_simulation_at_v3s_pp(v3):
    assert v3.microbatches == 15360 // 128
    plain = pipeline.simulate("dualpipe", 16, 120, f=1.0, b=2.0, w=1.0)
    # Table 2 bubble (PP/2 - 1)(F&B + B - 3W) = 7 x (3 + 2 - 3) = 14 per device
    assert plain.bubble == pytest.approx(pipeline.published_bubble("dualpipe", 16, 1, 2, 1)) == 14
    sim = pipeline.simulate("dualpipe", 16, 120, f=1.0, b=2.0, w=1.0, fb=2.5)  # as in 07
    assert sim.bubble < plain.bubble  # overlapping F&B shortens the step's idle time
    assert v3.bubble_fraction() == pytest.approx(sim.bubble / sim.makespan)
    assert v3.step_s(bubble=True) == pytest.approx(v3.step_s() / (1 - sim.bubble_fraction))
    assert v3.gpu_hours(bubble=True) > v3.gpu_hours()
    assert planner.plan(layout=Layout(dp=2048, pp=1, ep=64, zero=1)).bubble_fraction() == 0


def test_training_gains_closed_forms():
    g = planner.training_gains("deepseek-v3")
    base = compute.training_flops_per_token("deepseek-v3").total
    # MoE off: 58 MoE layers x 248 more experts x 3 matrices 7168 x 2048, 6 FLOPs each
    assert g["MoE"] == pytest.approx(1 + 6 * 58 * 248 * 3 * 7168 * 2048 / base)
    assert g["FP8"] == pytest.approx(1978.9 / 989.4)
    # MLA off: 4 x 7168 x 128 x 128 attention weights per layer instead of MLA's, and
    # scores/mixing over 128 + 128 instead of 192 + 128 per head
    mla_params = 187_105_280
    attn = compute.attention_flops_per_token("deepseek-v3", 4096)
    mha = base + 6 * 61 * (4 * 7168 * 128 * 128 - mla_params) + attn * (256 / 320 - 1)
    assert g["MLA"] == pytest.approx(mha / base)
    with pytest.raises(ValueError, match="MLA"):
        planner.training_gains("llama-3.1-405b")


def test_decode_gains_on_the_memory_roofline():
    g1 = planner.decode_gains("deepseek-v3", context=4096, batch=1)
    assert g1["bound"] == "memory"
    cache = 4096 * kv_bytes_per_token("deepseek-v3")
    active = kvcache.weights_touched("deepseek-v3", 1)
    full = active + 58 * 248 * 3 * 7168 * 2048
    # memory-bound: time = bytes / bandwidth, so each ratio is a ratio of bytes
    assert g1["MoE"] == pytest.approx((full + cache) / (active + cache), rel=1e-6)
    assert g1["FP8"] == pytest.approx((2 * active + cache) / (active + cache), rel=1e-6)
    mha = 4096 * kvcache.mha_bytes_per_token("deepseek-v3")
    assert g1["MLA"] == pytest.approx((active + mha) / (active + cache), rel=1e-6)
    # a big batch touches every expert: MoE no longer saves bytes
    assert planner.decode_gains(batch=256)["MoE"] == pytest.approx(1.0, abs=0.01)


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


def test_an_expert_group_inside_one_node_is_charged_at_nvlink_speed():
    """EP within a node sends over NVLink: the same bytes cost ib/nvlink times less."""
    s = planner.PRESETS["DeepSeek-V3"]
    nbytes = 1e12
    ib = planner._comm_seconds(s, {"EP all-to-all (IB)": nbytes})
    nv = planner._comm_seconds(s, {"EP all-to-all (NVLink)": nbytes})
    assert ib == pytest.approx(nbytes / (s.ib_gb_s * 1e9))
    assert nv == pytest.approx(nbytes / (s.nvlink_gb_s * 1e9))
