"""Notebook 10: FP8 formats, fine-grained scaling, the FP8 linear and the accumulation
emulation, against torch's own float8 dtypes, FACTS.md §5 and exact arithmetic."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from course import fp8, fp8_accum, fp8_training, seeds
from course.fp8 import BLOCK, TILE, FP8Linear, dequantize, quantize

DT = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2, "bf16": torch.bfloat16}


# ------------------------------------------------------------------------------- formats

@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "bf16"])
def test_format_spec_matches_torch_finfo(fmt):
    spec, info = fp8.format_spec(fmt), torch.finfo(DT[fmt])
    assert spec.max == info.max
    assert spec.min_normal == info.smallest_normal
    assert spec.eps == info.eps
    assert spec.min_subnormal == 2.0 ** (math.log2(info.smallest_normal) - spec.mant_bits)


def test_format_table_of_facts():
    e4, e5 = fp8.format_spec("e4m3"), fp8.format_spec("e5m2")
    assert (e4.max, e4.min_normal, e4.min_subnormal, e4.eps, e4.has_inf) == (
        448, 2**-6, 2**-9, 0.125, False)
    assert (e5.max, e5.min_normal, e5.min_subnormal, e5.eps, e5.has_inf) == (
        57344, 2**-14, 2**-16, 0.25, True)


@pytest.mark.parametrize("fmt,count", [("e4m3", 253), ("e5m2", 247)])
def test_representable_values(fmt, count):
    # 256 codes; E4M3fn: 2 NaNs; E5M2: 2 infinities + 6 NaNs; +0 and -0 merge.
    v = fp8.representable_values(fmt)
    spec = fp8.format_spec(fmt)
    assert len(v) == count
    assert v.max() == spec.max and v.min() == -spec.max
    assert v[v > 0].min() == spec.min_subnormal
    assert (v[v >= spec.min_normal][:2] == torch.tensor([spec.min_normal,
                                                          spec.min_normal * (1 + spec.eps)])).all()


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_round_to_is_nearest_value(fmt):
    table = fp8.representable_values(fmt).double()
    x = torch.randn(2000, generator=torch.Generator().manual_seed(1)) * 30
    got = fp8.round_to(x, fmt).double()
    nearest = table[(x.double()[:, None] - table[None]).abs().argmin(1)]
    # ties are measure-zero for random inputs, so argmin's tie choice does not matter
    assert torch.equal(got, nearest.clamp(-fp8.format_spec(fmt).max, fp8.format_spec(fmt).max))
    assert fp8.round_to(torch.tensor([1e6]), fmt).item() == fp8.format_spec(fmt).max


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_to_float_matches_cast_on_every_code(fmt):
    q = torch.arange(256, dtype=torch.uint8).view(DT[fmt])
    assert torch.allclose(fp8.to_float(q), q.float(), rtol=0, atol=0, equal_nan=True)


# ---------------------------------------------------------------------------- quantize

def test_per_tensor_scale_is_amax_over_max():
    x = torch.randn(64, 300, generator=torch.Generator().manual_seed(0))
    q, s = quantize(x, "e4m3")
    assert q.dtype == torch.float8_e4m3fn and s.shape == ()
    assert s.item() == pytest.approx(x.abs().max().item() / 448, rel=1e-7)
    assert q.float().abs().max().item() == 448
    xh = dequantize(q, s)
    normal = x.abs() >= 2**-6 * s
    # E4M3 round to nearest: relative error at most half an ulp, 2^-4, for normal values
    assert ((xh - x).abs()[normal] <= 2**-4 * x.abs()[normal] * (1 + 1e-6)).all()


@pytest.mark.parametrize("block,grid", [(TILE, (130, 2)), (BLOCK, (2, 2)), ((32, 64), (5, 4))])
def test_tile_and_block_scales_of_ragged_shape(block, grid):
    x = torch.randn(130, 200, generator=torch.Generator().manual_seed(2)) * 5
    q, s = quantize(x, "e4m3", block)
    assert tuple(s.shape) == grid and q.shape == x.shape
    bm, bn = block
    for i in range(grid[0]):  # independent loop over blocks
        for j in range(grid[1]):
            part = x[i * bm:(i + 1) * bm, j * bn:(j + 1) * bn]
            assert s[i, j].item() == pytest.approx(part.abs().max().item() / 448, rel=1e-6)
            assert q[i * bm:(i + 1) * bm, j * bn:(j + 1) * bn].float().abs().max() == 448
    xh = dequantize(q, s, block)
    assert xh.shape == x.shape
    assert ((xh - x).norm() / x.norm()).item() < 0.04


def test_three_dimensional_activation_tiles():
    x = torch.randn(4, 8, 256)
    q, s = quantize(x, "e4m3", TILE)
    assert s.shape == (32, 2) and q.shape == x.shape
    assert torch.allclose(dequantize(q, s, TILE), x, rtol=0.07, atol=1e-3)


def test_fine_grained_scaling_wins_with_an_outlier():
    x = fp8.activations_with_outlier(256, 512, outlier=1e5)
    per_tensor = fp8.quantization_error(x, "e4m3", None)
    tiles = fp8.quantization_error(x, "e4m3", TILE)
    blocks = fp8.quantization_error(x, "e4m3", BLOCK)
    assert per_tensor["underflow"] > 0.1  # small values fall below 2^-9 * scale
    assert tiles["rel_error"] < 0.03 < blocks["rel_error"] < per_tensor["rel_error"]
    assert tiles["underflow"] < blocks["underflow"] < per_tensor["underflow"]
    # without an outlier, all three are E4M3's own rounding error (about 2%)
    plain = [fp8.quantization_error(torch.randn(256, 512), "e4m3", b)["rel_error"]
             for b in (None, TILE, BLOCK)]
    assert max(plain) - min(plain) < 0.002 and 0.015 < plain[0] < 0.03


def test_zero_tensor_and_bad_input():
    q, s = quantize(torch.zeros(3, 128), "e4m3", TILE)
    assert (s == 1).all() and (q.float() == 0).all()
    with pytest.raises(ValueError, match="fmt"):
        quantize(torch.ones(4), "e3m4")
    with pytest.raises(ValueError, match="2 dimensions"):
        quantize(torch.ones(4), "e4m3", TILE)
    with pytest.raises(ValueError, match="scale has shape"):
        dequantize(*quantize(torch.ones(4, 256), "e4m3", TILE)[:1], torch.ones(4, 1), TILE)
    with pytest.raises(ValueError):
        fp8.activations_with_outlier(outlier=0)
    for block in (128, (1.5, 2), (0, 128), ("1", 128), (1, 2, 3)):
        with pytest.raises(ValueError, match="block must be None"):
            quantize(torch.ones(4, 4), "e4m3", block)
    with pytest.raises(ValueError, match="nan or inf"):
        quantize(torch.tensor([[1.0, float("nan")]]), "e4m3", TILE)
    with pytest.raises(ValueError, match="must be a tensor"):
        quantize("abc")
    with pytest.raises(ValueError, match="last dimension is 8"):
        fp8.FP8Linear(8, 4)(torch.ones(3, 5))


def test_a_list_is_quantized_like_a_tensor():
    x = [[0.5, -3.0, 7.25], [1e-3, 0.0, 2.0]]
    q, s = quantize(x, "e4m3", (1, 2))
    q2, s2 = quantize(torch.tensor(x), "e4m3", (1, 2))
    assert torch.equal(q.float(), q2.float()) and torch.equal(s, s2)


# --------------------------------------------------------------------------- FP8 linear

def test_scaled_gemm_promotion_equals_dequantized_matmul():
    g = torch.Generator().manual_seed(3)
    a, w = torch.randn(70, 300, generator=g), torch.randn(150, 300, generator=g)
    qa, sa = quantize(a, "e4m3", TILE)
    qw, sw = quantize(w, "e4m3", BLOCK)
    exact = dequantize(qa, sa, TILE).double() @ dequantize(qw, sw, BLOCK).double().t()
    grouped = fp8_accum.scaled_gemm(qa, sa, qw, sw, TILE, BLOCK)
    fast = fp8.fp8_matmul(qa, sa, qw, sw, TILE, BLOCK)
    assert torch.allclose(grouped.double(), exact, rtol=1e-5, atol=1e-4)
    assert torch.allclose(fast.double(), exact, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError):
        fp8_accum.scaled_gemm(qa, sa, qw, sw[:, :1], TILE, BLOCK)


def test_fp8_linear_three_gemms_match_independent_computation():
    torch.manual_seed(0)
    layer = FP8Linear(200, 150)
    assert isinstance(layer, torch.nn.Linear) and layer.bias is None
    assert layer.weight.dtype == torch.float32
    x = torch.randn(3, 50, 200, requires_grad=True)
    y = layer(x)
    assert y.shape == (3, 50, 150)
    grad = torch.randn_like(y)
    y.backward(grad)

    def rt(t, block):  # quantize -> dequantize round trip
        return dequantize(*quantize(t, "e4m3", block), block)

    x2, g2 = x.detach().reshape(-1, 200), grad.reshape(-1, 150)
    w = layer.weight.detach()
    assert torch.allclose(y.detach().reshape(-1, 150), rt(x2, TILE) @ rt(w, BLOCK).t(), atol=1e-4)
    assert torch.allclose(x.grad.reshape(-1, 200), rt(g2, TILE) @ rt(w, BLOCK), atol=1e-4)
    wgrad = rt(g2.t(), TILE) @ rt(rt(x2, TILE).t(), TILE).t()
    assert torch.allclose(layer.weight.grad, wgrad, atol=1e-3)
    # and all three are within FP8 error of the exact FP32 layer
    for got, exact in [(y.detach().reshape(-1, 150), x2 @ w.t()),
                       (x.grad.reshape(-1, 200), g2 @ w), (layer.weight.grad, g2.t() @ x2)]:
        assert 0 < ((got - exact).norm() / exact.norm()).item() < 0.06


def test_fp8_switch_of_the_course_model():
    from course.model import TinyConfig, TinyLM

    torch.manual_seed(0)
    model = TinyLM(TinyConfig(vocab_size=20, d_model=32, n_layers=1, n_heads=2,
                              precision="fp8"))
    fp8_layers = [m for m in model.modules() if isinstance(m, FP8Linear)]
    assert len(fp8_layers) == 7  # q, k, v, o + SwiGLU's three
    assert abs(fp8_layers[0].weight.std().item() - 0.02) < 0.005  # the model's init
    idx = torch.randint(0, 20, (2, 16))
    out = model(idx, idx)
    out.loss.backward()
    assert all(m.weight.grad is not None for m in fp8_layers)
    with pytest.raises(ValueError):
        FP8Linear(4, 4, fmt="bf16")


# ------------------------------------------------------------------------ accumulation

def _reference_accumulate(row, mant_bits, group, n_c):
    """Scalar transcription of the emulation in exact rational arithmetic."""
    def cut(v, e):
        step = Fraction(2) ** (e - 1 - mant_bits)
        return step * int(v / step)  # int() truncates toward zero

    def exp_of(v):
        return math.frexp(float(v))[1] if v else 0

    total, acc = 0.0, Fraction(0)
    for start in range(0, len(row), group):
        chunk = [Fraction(v) for v in row[start:start + group]]
        e = exp_of(max([abs(v) for v in chunk] + [abs(acc)]))
        acc = acc + sum(cut(v, e) for v in chunk)
        acc = cut(acc, exp_of(acc))
        if n_c and (start + group) % n_c == 0:
            total = float(torch.tensor(total, dtype=torch.float32)
                          + torch.tensor(float(acc), dtype=torch.float32))
            acc = Fraction(0)
    return float(torch.tensor(total, dtype=torch.float32)
                 + torch.tensor(float(acc), dtype=torch.float32)) if n_c else float(acc)


@pytest.mark.parametrize("mant_bits,n_c", [(6, None), (10, None), (8, 64), (14, 128)])
def test_limited_accumulate_matches_exact_reference(mant_bits, n_c):
    a, b = fp8_accum.random_operands(3, 1, 256, "normal", seed=4)
    products = a * b  # (3, 256)
    got = fp8_accum.limited_accumulate(products, mant_bits, n_c)
    for i in range(3):
        assert got[i].item() == _reference_accumulate(products[i].tolist(), mant_bits, 32, n_c)


def test_wide_accumulator_is_exact_float64_sum():
    a, b = fp8_accum.random_operands(4, 4, 1024, "uniform")
    products = (a[:, None] * b[None]).reshape(16, 1024)
    got = fp8_accum.limited_accumulate(products, mant_bits=60)
    assert torch.allclose(got, products.sum(1), rtol=1e-15, atol=0)


def test_report_phenomenon_and_fix():
    # DeepSeek-V3 §3.3.2: K = 4096, ~14 bits -> max relative error "nearly 2%";
    # promotion every N_C = 128 fixes it.
    plain = fp8_accum.accumulation_error(4096, 14, None)["max"]
    promoted = fp8_accum.accumulation_error(4096, 14, 128)["max"]
    assert 0.01 < plain < 0.05
    assert promoted < 1e-3 and plain / promoted > 50
    errs = fp8_accum.error_vs_k([512, 1024, 2048, 4096], 14)
    assert (errs[1:] > errs[:-1]).all()  # grows with K
    assert fp8_accum.accumulation_error(4096, 16)["max"] < plain / 3  # and falls with bits
    assert fp8_accum.accumulation_error(4096, 23)["max"] < 1e-5


def test_accumulation_bad_input():
    with pytest.raises(ValueError):
        fp8_accum.accumulation_error(4096, 14, n_c=100)
    with pytest.raises(ValueError):
        fp8_accum.accumulation_error(8, 14)
    with pytest.raises(ValueError):
        fp8_accum.random_operands(2, 2, 64, "cauchy")


# ---------------------------------------------------------------- GPU GEMM and training

@pytest.mark.skipif(fp8_accum.fp8_gemm_supported(), reason="this GPU has FP8 tensor cores")
def test_gemm_benchmark_refuses_without_fp8_gpu():
    with pytest.raises(RuntimeError, match="CUDA GPU with FP8"):
        fp8_accum.gemm_benchmark(256)


def test_scaled_mm_operands_layout_and_scales():
    # torch._scaled_mm also runs on a CPU here: check the call against dequantized FP8
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(32, 64, generator=g) * 3, torch.randn(64, 48, generator=g) / 7
    try:
        got = fp8_accum.scaled_mm_fn(a, b)().float()
    except (RuntimeError, NotImplementedError) as err:
        pytest.skip(f"torch._scaled_mm unavailable on this device: {err}")
    expected = fp8.dequantize(*fp8.quantize(a)) @ fp8.dequantize(*fp8.quantize(b))
    assert torch.allclose(got, expected, rtol=1e-2, atol=1e-2)
    assert ((got - a @ b).norm() / (a @ b).norm()).item() < 0.06


@pytest.mark.skipif(not fp8_accum.fp8_gemm_supported(), reason="needs an FP8 GPU")
def test_gemm_benchmark_on_gpu():
    r = fp8_accum.gemm_benchmark(2048, repeats=5)
    assert r["fp8_tflops"] > 0 and r["bf16_error"] < r["fp8_error"] < 0.1


def test_compare_precisions_small():
    r = fp8_training.compare_precisions(steps=6, last=3)
    assert set(r["loss"]) == {"fp32", "bf16", "fp8"} and len(r["loss"]["fp8"]) == 6
    assert r["gap"]["bf16"] == 0
    assert all(abs(g) < 0.05 for g in r["gap"].values())
    # the same seed: FP8 changes the numbers, but only a little
    assert r["loss"]["fp8"][0] != r["loss"]["fp32"][0]
    with pytest.raises(ValueError):
        fp8_training.compare_precisions(steps=6, last=7)


def test_precisions_over_seeds_small_and_uncached(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "RUNS_DIR", tmp_path)
    r = fp8_training.precisions_over_seeds(seeds=(3, 4), steps=5, last=2, cache=False)
    one = fp8_training.compare_precisions(steps=5, seed=4, last=2)
    assert r["gap"]["fp8"].values[1] == pytest.approx(one["gap"]["fp8"])
    assert r["gap"]["bf16"].values == (0.0, 0.0) and r["seeds"] == (3, 4)
    assert len(r["loss"]["fp8"]) == 5
    fp8_training.save_precisions(seeds=(3, 4), steps=5, last=2)
    again = fp8_training.precisions_over_seeds(seeds=(3, 4), steps=5, last=2)
    assert again["val_loss"]["fp8"].values == r["val_loss"]["fp8"].values
    with pytest.raises(ValueError):
        fp8_training.precisions_over_seeds(seeds=(0,), steps=5, cache=False)


def test_shipped_precisions_match_a_fresh_run_of_seed_0():
    shipped = fp8_training.precisions_over_seeds()  # assets/runs/fp8_precisions.json
    assert shipped["seeds"] == (0, 1, 2)
    fresh = fp8_training.compare_precisions(steps=150, seed=0, last=20)
    for p in fp8_training.PRECISIONS:
        assert fresh["val_loss"][p] == pytest.approx(shipped["val_loss"][p].values[0], rel=1e-3)
        assert fresh["gap"][p] == pytest.approx(shipped["gap"][p].values[0], abs=2e-3)
        assert np.allclose(fresh["loss"][p], shipped["loss"][p], rtol=1e-3)


def test_training_bytes_per_param():
    assert sum(fp8.TRAINING_BYTES_PER_PARAM.values()) == 12


def test_bf16_values_and_linear_errors():
    v = fp8.representable_values("bf16")
    assert len(v) == 65279 and v.max() == torch.finfo(torch.bfloat16).max
    errs = fp8_accum.linear_gemm_errors(200, 300, 50)
    assert len(errs) == 3 and all(0.01 < e < 0.06 for e in errs.values())


def test_compare_scalings_and_curves():
    r = fp8.compare_scalings(1e5)
    assert list(r) == list(fp8.SCALINGS)
    c = fp8_accum.accumulation_curves(1024, 14, 128)
    assert c["ks"] == [128, 256, 512, 1024]
    assert (c["promoted"] <= c["none"] * 1.001).all() and c["promoted"][-1] < c["none"][-1] / 5
    with pytest.raises(ValueError):
        fp8_accum.accumulation_curves(64)


def test_widgets_update_in_place():
    from course.widgets.fp8 import accumulation_widget, scaling_widget

    live = scaling_widget()
    before = list(live.fig.data[0].y)
    live.apply(outlier=1e6)
    assert live.error is None and list(live.fig.data[0].y) != before
    assert live.result["per tensor"]["rel_error"] > live.result["1×128 tiles"]["rel_error"]
    acc = accumulation_widget()
    first = acc.result["none"][-1]
    acc.apply(mant_bits=18, log2_k=13)
    assert acc.result["ks"][-1] == 8192 and acc.result["none"][-1] < first
    assert len(acc.fig.data[0].x) == len(acc.result["ks"])
