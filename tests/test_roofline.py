"""Tests of course.roofline: FLOPs against torch's own FlopCounterMode, bytes against the
sizes of the tensors an ideal kernel reads and writes, ridge points against the published
datasheet figures, and the measured machine against a second, independent measurement."""

import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course import kvcache, roofline
from course.configs import load_config

META = dict(device="meta", dtype=torch.bfloat16)

#: a tiny GQA model (4 query heads share 2 KV heads), and its MHA twin
TINY_GQA = dict(name="tiny-gqa", hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, intermediate_size=128, vocab_size=100)
TINY_MHA = dict(TINY_GQA, name="tiny-mha", num_key_value_heads=4)


def counted(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("m,k,n", [(1, 7168, 2048), (4096, 7168, 18432), (3, 5, 7)])
def test_matmul_flops_and_bytes_match_torch(m, k, n):
    a, b = torch.empty(m, k, **META), torch.empty(k, n, **META)
    op = roofline.matmul(m, k, n, dtype_bytes=2)
    c = a @ b
    assert op.flops == counted(lambda: a @ b) == 2 * m * k * n
    assert op.bytes == nbytes(a, b, c)
    assert op.intensity == pytest.approx(op.flops / op.bytes)


def test_matmul_intensity_grows_with_tokens_then_saturates():
    # (T, d) @ (d, d): intensity -> 2 T d^2 / (2 d^2 * 2) = T/2 for T << d, -> d/3 for T >> d
    d = 4096
    small = roofline.matmul(1, d, d).intensity
    mid = roofline.matmul(64, d, d).intensity
    big = roofline.matmul(10**6, d, d).intensity
    assert small == pytest.approx(1.0, rel=1e-3)  # matrix-vector in BF16: 1 FLOP/B
    assert mid == pytest.approx(64 * d / (d + 128), rel=1e-9)
    assert big == pytest.approx(d / 2, rel=0.01)  # 2 T d^2 / (2 T d * 2 bytes)


@pytest.mark.parametrize("gpu_name,expected", [("H800", 295.3), ("H100 SXM", 295.3),
                                               ("H200", 206.1), ("A100", 153.0)])
def test_published_ridge_points(gpu_name, expected):
    # datasheet dense BF16 peaks over HBM bandwidth: 989.4/3.35, 989.4/4.8, 312/2.039
    assert roofline.ridge(gpu_name) == pytest.approx(expected, rel=2e-3)


def test_fp8_ridge_is_twice_bf16():
    assert roofline.ridge("H800", "fp8") == pytest.approx(2 * roofline.ridge("H800"), 1e-3)
    with pytest.raises(ValueError, match="no dense fp8"):
        roofline.ridge("A100", "fp8")


def test_attainable_is_min_of_the_two_roofs():
    r = roofline.ridge("H800")
    below = roofline.Op("x", flops=r / 4 * 1e9, bytes=1e9)
    above = roofline.Op("y", flops=r * 4 * 1e9, bytes=1e9)
    assert roofline.attainable_tflops(below, "H800") == pytest.approx(989.4 / 4)
    assert roofline.attainable_tflops(above, "H800") == pytest.approx(989.4)
    assert roofline.bound(below, "H800") == "memory"
    assert roofline.bound(above, "H800") == "compute"
    # time lower bound: bytes / bandwidth below the ridge, FLOPs / peak above
    assert roofline.seconds(below, "H800") == pytest.approx(1e9 / 3.35e12)
    assert roofline.seconds(above, "H800") == pytest.approx(above.flops / 989.4e12)


def test_moe_expert_matches_torch_swiglu():
    cfg = load_config("deepseek-v3")
    t, d, inter = 5, cfg.hidden_size, cfg.moe_intermediate_size
    x = torch.empty(t, d, **META)
    w1, w3, w2 = (torch.empty(d, inter, **META), torch.empty(d, inter, **META),
                  torch.empty(inter, d, **META))
    g, u = x @ w1, x @ w3
    y = (g * u) @ w2
    op = roofline.moe_expert(cfg, t)
    assert op.flops == counted(lambda: ((x @ w1) * (x @ w3)) @ w2)
    # x read twice (gate, up), each weight once, g, u written, h read, y written
    assert op.bytes == nbytes(x, w1, g) + nbytes(x, w3, u) + nbytes(g, w2, y)


def test_tokens_per_expert_and_expert_parallel_gathering():
    # uniform routing: 4096 tokens x 8 of 256 experts = 128 per expert; EP64 gathers 64x
    assert roofline.tokens_per_expert(4096, "deepseek-v3") == 128
    assert roofline.tokens_per_expert(4096, "deepseek-v3", ep=64) == 8192
    few = roofline.moe_expert("deepseek-v3", 128)
    many = roofline.moe_expert("deepseek-v3", 8192)
    assert roofline.bound(few, "H800") == "memory" and roofline.bound(many, "H800") == "compute"
    with pytest.raises(ValueError, match="dense"):
        roofline.tokens_per_expert(10, "llama-3-8b")


@pytest.mark.parametrize("cfg", [TINY_GQA, TINY_MHA])
def test_attention_prefill_matches_torch(cfg):
    c = load_config(cfg)
    b, t, h, kvh, d = 2, 16, c.num_heads, c.num_kv_heads, c.head_dim
    q, o = torch.empty(b, h, t, d, **META), torch.empty(b, h, t, d, **META)
    k, v = torch.empty(b, kvh, t, d, **META), torch.empty(b, kvh, t, d, **META)

    def full():  # the full (T x T) product; a causal kernel does half of it
        kk, vv = k.repeat_interleave(h // kvh, 1), v.repeat_interleave(h // kvh, 1)
        return (q @ kk.transpose(-1, -2)) @ vv

    op = roofline.attention_prefill(c, t, batch=b)
    assert op.flops == counted(full) / 2 * c.num_layers
    assert op.bytes == nbytes(q, k, v, o) * c.num_layers


def test_attention_prefill_mla_expands_keys_per_head():
    c = load_config("deepseek-v3")
    op = roofline.attention_prefill(c, 4096)
    per_layer = 4096 * 128 * (192 + 192 + 128 + 128) * 2  # q, k, v, o per head, BF16
    assert op.bytes == per_layer * 61
    assert op.intensity == pytest.approx(2 * 128 * 320 * 2048 / (128 * 640 * 2), rel=1e-9)
    assert roofline.bound(op, "H800") == "compute"


@pytest.mark.parametrize("cfg", [TINY_GQA, TINY_MHA])
def test_attention_decode_matches_torch_and_cache_size(cfg):
    c = load_config(cfg)
    b, s, h, kvh, d = 3, 40, c.num_heads, c.num_kv_heads, c.head_dim
    q = torch.empty(b, h, 1, d, **META)
    k, v = torch.empty(b, kvh, s, d, **META), torch.empty(b, kvh, s, d, **META)
    kk, vv = k.repeat_interleave(h // kvh, 1), v.repeat_interleave(h // kvh, 1)
    op = roofline.attention_decode(c, s, batch=b)
    assert op.flops == counted(lambda: (q @ kk.transpose(-1, -2)) @ vv) * c.num_layers
    assert op.bytes == nbytes(k, v) * c.num_layers == kvcache.kv_cache_bytes(c, s, b)
    # GQA: intensity = query heads per KV head (h/kvh FLOP per byte in BF16)
    assert op.intensity == pytest.approx(h / kvh)


def test_absorbed_mla_decode_intensity_closed_form():
    # per cached token and layer: 2 h (d_c + d_h^R) + 2 h d_c FLOPs over (d_c + d_h^R) x 2 B
    op = roofline.attention_decode("deepseek-v3", 32_768, path="absorbed")
    closed = (2 * 128 * (512 + 64) + 2 * 128 * 512) / (576 * 2)
    assert op.intensity == pytest.approx(closed) == pytest.approx(241.8, abs=0.1)
    # above the H200's ridge, below the H800's: same chip, different memory
    assert roofline.bound(op, "H200") == "compute" and roofline.bound(op, "H800") == "memory"
    mha = roofline.attention_decode("deepseek-v3", 32_768, path="mha")
    assert mha.intensity == pytest.approx(1.0, rel=0.01)


def test_decode_and_prefill_steps():
    dec = roofline.decode_step("deepseek-v3", 4096, batch=1)
    ref = kvcache.decode_step_cost("deepseek-v3", 4096, 1)
    assert (dec.flops, dec.bytes) == (ref.flops, ref.bytes)
    assert roofline.bound(dec, "H800") == "memory"
    # a dense model's prefill is compute-bound from one sequence on; an MoE's needs enough
    # tokens per expert: one 4K sequence gives each of 256 experts only 128 tokens
    assert roofline.bound(roofline.prefill_step("llama-3-8b", 4096), "H800") == "compute"
    assert roofline.bound(roofline.prefill_step("deepseek-v3", 4096), "H800") == "memory"
    assert roofline.bound(roofline.prefill_step("deepseek-v3", 4096, 4), "H800") == "compute"
    # batching raises decode's intensity: the same weights serve more tokens
    # (dense: ~B-fold; MoE: less, a bigger batch also touches more distinct experts)
    big = roofline.decode_step("deepseek-v3", 4096, batch=256)
    assert 10 * dec.intensity < big.intensity < 256 * dec.intensity
    dense = [roofline.decode_step("llama-3-70b", 4096, b).intensity for b in (1, 256)]
    assert dense[1] > 50 * dense[0] and dense[1] / dense[0] > big.intensity / dec.intensity


@pytest.mark.parametrize("call", [lambda: roofline.matmul(0, 2, 2),
                                  lambda: roofline.matmul(2, 2, 2, dtype_bytes=0),
                                  lambda: roofline.attention_decode("deepseek-v3", 0),
                                  lambda: roofline.attention_prefill("deepseek-v3", 0),
                                  lambda: roofline.machine("B200")])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------- the measured machine


@pytest.fixture(scope="module")
def measured():
    start = time.perf_counter()
    m = roofline.measure_machine(device="cpu", refresh=True)
    return m, time.perf_counter() - start


def test_measure_machine_is_fast_and_cached(measured):
    m, secs = measured
    assert secs < 15  # < 5 s on an idle laptop; generous on a shared CI machine
    start = time.perf_counter()
    assert roofline.measure_machine(device="cpu") is m
    assert time.perf_counter() - start < 0.05


def _numpy_copy_tb_s(mib: int = 64, repeats: int = 3) -> float:
    src = np.ones(mib * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * src.nbytes / best / 1e12


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_measured_figures_agree_with_an_independent_measurement(measured):
    m, _ = measured
    # peak: torch.utils.benchmark's own timer on a matmul; bandwidth: a numpy copy
    from torch.utils import benchmark

    a = torch.randn(768, 768)
    t = benchmark.Timer("a @ a", globals=dict(a=a)).blocked_autorange(min_run_time=0.3)
    other_tflops = 2 * 768**3 / min(t.times) / 1e12  # best block: other jobs share the CPU
    other_tb_s = _numpy_copy_tb_s()
    # a shared machine is noisy: agree within a factor of 4, and be physically plausible
    assert 0.25 < m.tflops / other_tflops < 4
    assert 0.25 < m.tb_s / other_tb_s < 4
    assert 1e-4 < m.tflops < 50 and 1e-4 < m.tb_s < 2
    assert 0.5 < m.ridge < 1e4


def test_measured_points_follow_their_roofline(measured):
    m, _ = measured
    ops = [op for op, _ in m.points]
    assert [op.intensity for op in ops] == sorted(op.intensity for op in ops)
    for point in m.points:
        # nothing runs much faster than the roofline allows (noise: 1.5x)
        assert roofline.measured_tflops(point) < 1.5 * roofline.attainable_tflops(point[0], m)
    # the matrix-vector point is memory-bound: 0.5 FLOP/B in FP32
    assert ops[0].intensity == pytest.approx(0.5, rel=0.01)
    assert roofline.bound(ops[0], m) == "memory"


# ------------------------------------------------------------------- figure and widget


def test_widget_moves_operations_across_the_ridge():
    from course.widgets.roofline import YOURS, roofline_explorer

    live = roofline_explorer()
    assert live.error is None and len(live.result["points"]) == 4
    ffn = lambda: live.result["points"][0]  # noqa: E731
    live.apply(tokens=1)
    assert ffn()["bound"] == "memory" and live.fig.data[2].marker.symbol == "circle"
    live.apply(tokens=4096)
    assert ffn()["bound"] == "compute" and live.fig.data[2].marker.symbol == "diamond"
    assert "compute-bound" in live.fig.data[2].name  # said in words, not by colour alone
    expert = lambda: live.result["points"][1]  # noqa: E731
    live.apply(tokens_per_expert=128)
    assert expert()["bound"] == "memory"
    live.apply(tokens_per_expert=8192)
    assert expert()["bound"] == "compute"
    live.apply(gpu_name="H200", seq_len=32768)
    decode = live.result["points"][3]
    assert decode["bound"] == "compute" and live.fig.data[1].x[0] == pytest.approx(206.1, 1e-3)
    live.apply(gpu_name="H800")
    assert live.result["points"][3]["bound"] == "memory"
    assert YOURS not in live.controls["gpu_name"].options  # not measured: not offered


def test_widget_with_the_measured_machine(measured):
    from course.widgets.roofline import YOURS, explore, roofline_explorer

    m, _ = measured
    live = roofline_explorer(m)
    live.apply(gpu_name=YOURS)
    assert live.error is None
    crosses = live.fig.data[-1]
    assert crosses.visible and len(crosses.x) == len(m.points)
    assert live.fig.data[0].y[-1] == pytest.approx(m.tflops)
    with pytest.raises(ValueError, match="measure_machine"):
        explore(YOURS, 1, 128, 1, mine=None)


def test_widget_is_fast():
    from course.widgets.roofline import roofline_explorer

    live = roofline_explorer()
    start = time.perf_counter()
    for t in (1, 10, 100, 1000, 10000):
        live.apply(tokens=t, seq_len=100 * t + 128)
    assert (time.perf_counter() - start) / 5 < 0.3  # < 100 ms on an idle laptop


def test_moe_layer_ops_count_the_layers_matmul_weights():
    from course import compute
    from course.memory import ffn_params

    cfg = load_config("deepseek-v3")
    t = 4096
    ops = roofline.moe_layer_ops(cfg, t, 4096, ep=64)
    matmuls = [op for op in ops if "RMSNorm" not in op.name and "adds" not in op.name
               and "SwiGLU" not in op.name and "attention" not in op.name]
    experts = cfg.experts_per_token + cfg.n_shared_experts
    params = (compute.attention_matmul_params(cfg) + experts * ffn_params(7168, 2048)
              + 7168 * cfg.n_routed_experts)
    assert sum(op.flops for op in matmuls) == pytest.approx(2 * params * t)
    # the elementwise work does almost no FLOPs but takes real time at the roofline
    shares = roofline.time_shares(ops, "H800")
    small = [s for s in shares if s["bound"] == "memory"]
    assert sum(s["flops_share"] for s in small) < 0.01 < sum(s["time_share"] for s in small)
    assert sum(s["time_share"] for s in shares) == pytest.approx(1.0)


def test_expert_parallelism_is_what_makes_experts_compute_bound():
    # EP64 gathers 64 GPUs' tokens for each expert: 8,192 instead of 128 tokens
    with_ep = roofline.roofline_mfu(roofline.moe_layer_ops("deepseek-v3", ep=64), "H800")
    without = roofline.roofline_mfu(roofline.moe_layer_ops("deepseek-v3", ep=1), "H800")
    assert with_ep > 0.9 and without < 0.6
    with pytest.raises(ValueError, match="whole number"):
        roofline.moe_layer_ops("deepseek-v3", tokens=1000, seq_len=4096)


@pytest.mark.parametrize("path", ["absorbed", "mha"])
def test_decode_intensity_approaches_its_large_batch_limit(path):
    limit = roofline.decode_intensity_limit("deepseek-v3", 32_768, path)
    huge = roofline.decode_step("deepseek-v3", 32_768, 10**7, path).intensity
    assert huge == pytest.approx(limit, rel=1e-3)
    # V3 at 32k: the absorbed ceiling lies between the H200's and the H800's ridges
    if path == "absorbed":
        assert roofline.ridge("H200") < limit < roofline.ridge("H800")
    else:
        assert limit < 2
