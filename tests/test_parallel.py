"""The layout calculator: validation, DeepSeek-V3's real layout, memory and bytes."""

import pytest

from course.memory import param_count, state_bytes
from course.parallel import (
    DEEPSEEK_V3_LAYOUT,
    Layout,
    comm_per_step,
    dp_step_bytes,
    ep_all_to_all_bytes,
    per_gpu_memory,
    replicas,
    ring_bytes,
    validate,
)


@pytest.mark.parametrize("layout, world, reason", [
    (Layout(dp=4, pp=2), 16, "not the 16 GPUs"),
    (Layout(pp=62), None, "more stages than the 61 layers"),
    (Layout(dp=4, ep=3), None, "does not divide the 256 experts"),
    (Layout(tp=3), None, "does not divide the 128 heads"),
    (Layout(dp=2, ep=4), None, "must divide DP"),
])
def test_invalid_layouts_say_why(layout, world, reason):
    with pytest.raises(ValueError, match=reason):
        validate("deepseek-v3", layout, world)


@pytest.mark.parametrize("kw, reason", [
    (dict(zero=4), "zero \\(the ZeRO stage\\) must be a whole number from 0 to 3, not 4"),
    (dict(dp=2.5), "dp must be a whole number ≥ 1, not 2.5"),
    (dict(dp="2"), "dp must be a whole number ≥ 1, not '2'"),
    (dict(tp=0), "tp must be a whole number ≥ 1, not 0"),
    (dict(pp=True), "pp must be a whole number"),
    (dict(ep=float("nan")), "ep must be a whole number"),
    (dict(sp="yes"), "sp \\(sequence parallelism\\) must be True or False"),
])
def test_a_layout_checks_its_numbers_when_it_is_made(kw, reason):
    with pytest.raises(ValueError, match=reason):
        Layout(**kw)
    assert Layout(dp=8.0, zero=1.0) == Layout(dp=8, zero=1)  # whole floats are whole numbers
    assert isinstance(Layout(dp=8.0).dp, int)


@pytest.mark.parametrize("call, reason", [
    (lambda: validate("deepseek-v3", Layout(), 0), "world_size must be a whole number ≥ 1"),
    (lambda: validate("deepseek-v3", "dp=2"), "layout must be a parallel.Layout"),
    (lambda: comm_per_step("deepseek-v3", Layout(), seq_len=-5), "seq_len must be"),
    (lambda: per_gpu_memory("deepseek-v3", Layout(), micro_batch=0), "micro_batch must be"),
    (lambda: per_gpu_memory("deepseek-v3", Layout(), microbatches=1.5), "microbatches must"),
    (lambda: per_gpu_memory("deepseek-v3", Layout(), optimizer="lion"), "Unknown optimizer"),
    (lambda: per_gpu_memory("deepseek-v3", Layout(), optimizer=[]), "Unknown optimizer"),
    (lambda: dp_step_bytes(10, 0, "dp"), "world must be a whole number ≥ 1"),
    (lambda: dp_step_bytes(-1, 4, "dp"), "n_params must be a number ≥ 0"),
    (lambda: dp_step_bytes(10, 4, "fsdp"), "Unknown strategy 'fsdp'"),
    (lambda: dp_step_bytes(10, 4, "dp", grad_bytes=-2), "grad_bytes must be"),
    (lambda: ep_all_to_all_bytes([[0], [1]], 0, 10), "experts_per_rank must be"),
    (lambda: ep_all_to_all_bytes([[0], [1]], 1, -10), "row_bytes must be"),
    (lambda: ep_all_to_all_bytes([[0], [-1]], 1, 10), "an expert index must be"),
    (lambda: ep_all_to_all_bytes("01", 1, 10), "experts must be a list"),
    (lambda: ep_all_to_all_bytes([[0], [5]], 1, 10), "beyond the last rank"),
])
def test_bad_arguments_get_a_sentence(call, reason):
    with pytest.raises(ValueError, match=reason):
        call()


def test_one_ring_factor():
    from course import parallel, ring

    assert parallel.ring_bytes is ring.ring_bytes
    assert ep_all_to_all_bytes(((0, 3, 2), (1, 2)), 2, 10) == ep_all_to_all_bytes(
        [[0, 3, 2], [1, 2]], 2, 10)


def test_ep_on_dense_model_is_rejected():
    with pytest.raises(ValueError, match="dense"):
        validate("llama-3-8b", Layout(dp=2, ep=2))


def test_deepseek_v3_real_layout():
    validate("deepseek-v3", DEEPSEEK_V3_LAYOUT, 2048)
    r = replicas("deepseek-v3", DEEPSEEK_V3_LAYOUT)
    assert r == {"gpus": 2048, "layers_per_stage": 61 / 16, "dense_copies": 128,
                 "expert_copies": 2, "experts_per_gpu": 4, "ep_groups": 32}


def test_single_gpu_memory_equals_replica_memory():
    one = per_gpu_memory("mixtral-8x7b", Layout(), "bf16-mixed", seq_len=512)
    assert {k: one[k] for k in ("weights", "gradients", "optimizer")} == state_bytes(
        param_count("mixtral-8x7b").total, "bf16-mixed")


def test_sharding_divides_by_hand():
    pc = param_count("deepseek-v3")
    dense, expert = pc.total - pc.expert_params, pc.expert_params
    m = per_gpu_memory("deepseek-v3", DEEPSEEK_V3_LAYOUT, "deepseek-fp8")
    assert m["weights"] == pytest.approx(1 * (dense / 16 + expert / (16 * 64)))
    assert m["gradients"] == pytest.approx(4 * (dense / 16 + expert / (16 * 64)))
    # ZeRO-1: master (4) + two BF16 moments (2 + 2) over 128 dense / 2 expert copies.
    assert m["optimizer"] == pytest.approx(8 * (dense / 16 / 128 + expert / (16 * 64) / 2))
    z3 = per_gpu_memory("deepseek-v3", Layout(dp=128, pp=16, ep=64, zero=3), "deepseek-fp8")
    assert z3["weights"] < m["weights"] / 2 and z3["gradients"] < m["gradients"] / 2


def test_ring_bytes_and_dp_step():
    assert ring_bytes("all_reduce", 1000, 4) == 1500
    assert ring_bytes("all_gather", 1000, 4) == 750
    dp, z1 = dp_step_bytes(10, 4, "dp"), dp_step_bytes(10, 4, "zero1")
    assert dp == {"all_reduce": 2 * 3 / 4 * 40}
    assert z1 == {"reduce_scatter": 3 / 4 * 48, "all_gather": 3 / 4 * 48}  # padded to 12


def test_comm_per_step_collectives():
    c = comm_per_step("deepseek-v3", DEEPSEEK_V3_LAYOUT, "deepseek-fp8", seq_len=4096,
                      micro_batch=1, microbatches=8)
    assert not any(k.startswith("TP") for k in c)  # no tensor parallelism
    assert "DP reduce-scatter (dense grads)" in c and "EP all-to-all (IB)" in c
    tokens_bytes = 4096 * 7168 * 1
    assert c["PP send/recv"] == 2 * 8 * tokens_bytes
    # EP bytes: tests/test_expert_traffic.py counts them from a real routing
    tp = comm_per_step("llama-3-70b", Layout(tp=8), seq_len=1024)
    assert tp["TP all-reduce"] == pytest.approx(4 * 80 * 2 * 7 / 8 * 1024 * 8192 * 2)
    from course.parallel import tp_all_reduces_per_layer

    assert tp_all_reduces_per_layer() == {"forward": 2, "backward": 2}


def test_ep_bytes_from_routing():
    # Two experts per rank. Rank 0's tokens go to experts 0, 3, 2 (two leave for rank 1);
    # rank 1's to 1, 2 (one leaves for rank 0). Each rank sends back what it received.
    got = ep_all_to_all_bytes([[0, 3, 2], [1, 2]], 2, 10)
    assert got == [{"dispatch": 20, "combine": 10}, {"dispatch": 10, "combine": 20}]


def test_widget_shows_bad_layout_and_keeps_figure():
    from course.widgets.parallel import parallel_widget

    live = parallel_widget(with_button=False)
    good = [t.y for t in live.fig.data[:4]]
    live.apply(pp=64)
    assert "more stages than the 61 layers" in live.error
    assert [t.y for t in live.fig.data[:4]] == good
    live.apply(pp=16, ep=8)
    assert live.error is None and live.result["replicas"]["experts_per_gpu"] == 32


# ------------------------------------------------------------- the global batch (issue 18)


def test_global_batch_is_micro_batch_times_accumulation_times_dp():
    from course import parallel

    assert parallel.global_batch(1, 120, 128) == 15_360
    assert parallel.accumulation_steps(15_360, 1, 128) == 120
    assert parallel.accumulation_steps(15_360, 2, 128) == 60
    with pytest.raises(ValueError, match="does not split"):
        parallel.accumulation_steps(15_360, 7, 128)
    for bad in (0, -1, 2.5, "8", None):
        with pytest.raises(ValueError, match="must be a whole number ≥ 1"):
            parallel.global_batch(bad, 120, 128)
        with pytest.raises(ValueError, match="must be a whole number ≥ 1"):
            parallel.accumulation_steps(15_360, bad, 128)


def test_v3_batch_schedule_and_micro_batches_per_pipeline():
    from course import parallel
    from course.pipeline import simulate

    # report 4.2: 3,072 -> 15,360 sequences over the first 469B tokens
    assert parallel.v3_batch(0) == 3072 and parallel.v3_batch(469e9) == 15360
    assert parallel.v3_batch(14e12) == 15360
    with pytest.raises(ValueError, match="tokens_seen must be a number ≥ 0"):
        parallel.v3_batch(-1)
    with pytest.raises(ValueError, match="layout must be a parallel.Layout"):
        parallel.v3_microbatches(layout=128)
    assert parallel.v3_microbatches() == 120 and parallel.v3_microbatches(3072) == 24
    # at the ramp's start a pipeline has fewer micro-batches than DualPipe's 2 x PP
    with pytest.raises(ValueError, match="at least 2 x stages"):
        simulate("dualpipe", 16, parallel.v3_microbatches(3072), f=1, b=2, w=1, fb=2.5)


def test_v3_step_count_closed_form_matches_a_numerical_sum():
    import numpy as np

    from course import parallel

    b = parallel.V3_BATCH
    edges = np.linspace(0, b["ramp_tokens"], 200_001)
    mid = (edges[1:] + edges[:-1]) / 2
    numeric = np.sum(np.diff(edges) / (np.vectorize(parallel.v3_batch)(mid) * b["seq_len"]))
    steps = parallel.v3_steps()
    assert steps["ramp"] == pytest.approx(numeric, rel=1e-6)
    assert steps["after"] == pytest.approx((14.8e12 - 469e9) / (15360 * 4096))
