"""KV-cache calculators against the published numbers (DeepSeek-V2 Table 1, the ISCA '25
paper's Table 1) and against independent computations."""

import numpy as np
import pytest
import torch

from course import kvcache as kv
from course.configs import load_config
from course.memory import param_count
from course.model import TinyLM
from course.train import tiny_config


def test_deepseek_v3_mla_cache_per_token():
    cfg = load_config("deepseek-v3")
    assert kv.kv_elements_per_token_per_layer(cfg) == 576  # 512 latent + ONE 64-dim RoPE key
    assert kv.kv_bytes_per_token(cfg) == 70_272  # ISCA'25 Table 1: 70.272 KB


@pytest.mark.parametrize("name, per_token", [("llama-3-8b", 131_072), ("llama-3-70b", 327_680),
                                             ("llama-3.1-405b", 516_096)])
def test_gqa_models_per_token_and_multipliers(name, per_token):
    assert kv.kv_bytes_per_token(name) == per_token
    cfg = load_config(name)
    assert per_token == 2 * cfg.num_kv_heads * cfg.head_dim * cfg.num_layers * 2


def test_405b_multiplier_is_7_34_not_7_28():
    assert kv.kv_bytes_per_token("llama-3.1-405b") / 70_272 == pytest.approx(7.344, abs=1e-3)


def test_mha_counterfactuals_and_reductions():
    assert kv.mha_bytes_per_token("deepseek-v3") == 3_997_696
    assert kv.mha_bytes_per_token("deepseek-v3", materialised=True) == 4_997_120
    assert kv.reduction("deepseek-v3") == pytest.approx(1 - 576 / 32768)  # 98.24 %
    assert round(100 * kv.reduction("deepseek-v3"), 1) == 98.2
    assert round(100 * kv.reduction("deepseek-v3", materialised=True), 2) == 98.59
    assert kv.reduction("llama-3-70b") == pytest.approx(1 - 8 / 64)  # GQA: 8 of 64 heads
    with pytest.raises(ValueError, match="MLA"):
        kv.mha_bytes_per_token("llama-3-8b", materialised=True)


def test_v2_vs_67b_needs_six_bit_cache():
    v2, old = kv.kv_bytes_per_token(kv.DEEPSEEK_V2, 1), kv.kv_bytes_per_token(kv.DEEPSEEK_67B, 1)
    assert (v2, old) == (34_560, 194_560)
    assert round(100 * (1 - v2 / old), 1) == 82.2  # architecture alone
    six_bit = 1 - kv.kv_bytes_per_token(kv.DEEPSEEK_V2, 6 / 8) / kv.kv_bytes_per_token(
        kv.DEEPSEEK_67B, 2)
    assert round(100 * six_bit, 1) == 93.3


def test_cache_is_linear_in_length_and_batch():
    one = kv.kv_cache_bytes("deepseek-v3", 1000)
    assert kv.kv_cache_bytes("deepseek-v3", 2000) == 2 * one
    assert kv.kv_cache_bytes("deepseek-v3", 1000, batch=3) == 3 * one
    with pytest.raises(ValueError):
        kv.kv_cache_bytes("deepseek-v3", 10, batch=0)


def test_tokens_that_fit_beside_the_weights():
    free = 8 * 141e9 - param_count("deepseek-v3").total * 1  # FP8 weights on 8 x H200
    assert kv.tokens_that_fit("deepseek-v3", 141, 8, weight_bytes=1) == int(free // 70_272)
    with pytest.raises(ValueError, match="do not fit"):
        kv.tokens_that_fit("deepseek-v3", 80, 1)
    mha = kv.tokens_that_fit("deepseek-v3", 141, 8, weight_bytes=1, mha=True)
    assert mha == int(free // (2 * 128 * 128 * 61 * 2))  # 2 x heads x d_h x layers x BF16
    fp8 = kv.tokens_that_fit("deepseek-v3", 141, 8, weight_bytes=1, kv_dtype_bytes=1)
    assert fp8 == int(free // (576 * 61))  # an FP8 cache: one byte per number


@pytest.mark.parametrize("name, mha", [("deepseek-v3", False), ("deepseek-v3", True),
                                       ("llama-3.1-405b", False)])
@pytest.mark.parametrize("weight_bytes, kv_bytes", [(2, 2), (1, 2), (1, 1)])
def test_tokens_to_outweigh_is_where_the_cache_passes_the_weights(name, mha, weight_bytes,
                                                                  kv_bytes):
    n = kv.tokens_to_outweigh(name, weight_bytes, kv_bytes, mha=mha)
    weights = param_count(name).total * weight_bytes
    per = (kv.mha_bytes_per_token(name, kv_bytes) if mha
           else kv.kv_bytes_per_token(name, kv_bytes))
    assert n * per > weights >= (n - 1) * per  # the first token count past the weights
    if not mha:
        assert kv.kv_cache_bytes(name, n, dtype_bytes=kv_bytes) > weights
        assert kv.kv_cache_bytes(name, n - 1, dtype_bytes=kv_bytes) <= weights


def test_tokens_to_outweigh_gqa_vs_mla():
    # same format for weights and cache: the crossing does not depend on the format
    bf16 = kv.tokens_to_outweigh("deepseek-v3", 2, 2)
    assert kv.tokens_to_outweigh("deepseek-v3", 1, 1) in range(bf16 - 1, bf16 + 2)
    assert kv.tokens_to_outweigh("deepseek-v3", 1, 2) in range(bf16 // 2 - 1, bf16 // 2 + 2)
    v3, llama = kv.tokens_to_outweigh("deepseek-v3"), kv.tokens_to_outweigh("llama-3.1-405b")
    ratio = (param_count("deepseek-v3").total / 70_272) / (
        param_count("llama-3.1-405b").total / 516_096)
    assert v3 / llama == pytest.approx(ratio, rel=1e-5)
    with pytest.raises(ValueError, match="weight_bytes"):
        kv.tokens_to_outweigh("deepseek-v3", weight_bytes=0)


@pytest.mark.parametrize("attention", ["mha", "mla"])
def test_attention_rows_new_row_from_the_cache_old_rows_unchanged(attention):
    torch.manual_seed(0)
    model = TinyLM(tiny_config(attention=attention)).eval()
    idx = torch.tensor([[3, 14, 15, 92, 65, 35]])
    r = kv.attention_rows(model, idx, layer=1, head=2)
    assert r.before.shape == (5, 5) and r.step.shape == (6,) and r.full.shape == (6, 6)
    assert r.old_rows_change < 1e-6 and r.step_error < 1e-6
    torch.testing.assert_close(r.full[:5, :5], r.before)
    torch.testing.assert_close(r.full[5], r.step)
    # the nearest old row, recomputed: renormalise the new row over the old tokens
    w = r.step[:5] / r.step[:5].sum()
    assert r.nearest_old_row == pytest.approx(
        min(float((w - r.before[i]).abs().max()) for i in range(5)), abs=1e-7)
    assert r.nearest_old_row > 1e-3  # the new query weighs the old tokens differently
    assert torch.triu(r.before, 1).abs().max() == 0  # causal: no row sees the future
    assert not model.blocks[1].attn.store_weights  # left as it was
    with pytest.raises(ValueError, match="head must be"):
        kv.attention_rows(model, idx, head=9)
    with pytest.raises(ValueError, match="idx must be"):
        kv.attention_rows(model, idx[:, :1])


def test_decode_cost_batch_one_is_memory_bound_and_batching_raises_intensity():
    c1 = kv.decode_step_cost("llama-3-8b", 1024, batch=1)
    c64 = kv.decode_step_cost("llama-3-8b", 1024, batch=64)
    n = param_count("llama-3-8b").active_without_embedding
    assert c1.weight_flops == 2 * n and c1.weight_bytes == 2 * n
    assert c1.cache_bytes == 1024 * 131_072
    assert c1.attention_flops == 32 * 4 * 1024 * 32 * 128
    assert c1.intensity == pytest.approx(c1.flops / c1.bytes)
    assert c1.intensity < 2 < c64.intensity
    assert kv.roofline_seconds(c1)["bound"] == "memory"
    assert kv.ridge_intensity("H200") == pytest.approx(989.4 / 4.8)


def test_mla_paths_cost_ordering():
    costs = {p: kv.decode_step_cost("deepseek-v3", 32768, path=p) for p in kv.DECODE_PATHS}
    assert costs["absorbed"].cache_bytes == 32768 * 70_272
    assert costs["mha"].cache_bytes == 32768 * 4_997_120
    assert costs["naive"].cache_bytes == costs["absorbed"].cache_bytes
    assert costs["naive"].attention_flops > costs["absorbed"].attention_flops
    with pytest.raises(ValueError, match="path"):
        kv.decode_step_cost("deepseek-v3", 8, path="fast")


def test_moe_weights_touched_grows_with_batch_up_to_all_experts():
    one, many = kv.weights_touched(load_config("deepseek-v3"), 1), kv.weights_touched(
        load_config("deepseek-v3"), 100_000)
    assert one == param_count("deepseek-v3").active_without_embedding
    assert many == pytest.approx(param_count("deepseek-v3").total
                                 - param_count("deepseek-v3").by_part["embedding"])


def test_kv_activations_match_the_layer_and_rank_error_matches_svd():
    torch.manual_seed(0)
    model = TinyLM(tiny_config(d_model=32, n_heads=4))
    idx = torch.randint(0, model.cfg.vocab_size, (2, 8))
    (k0, v0), _ = kv.kv_activations(model, idx)
    block = model.blocks[0]
    h = block.attn_norm(model.embed(idx))
    torch.testing.assert_close(k0, block.attn.wk(h).flatten(0, 1))
    torch.testing.assert_close(v0, block.attn.wv(h).flatten(0, 1))
    m = k0.double()
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    for r in (0, 3, 10, 32):
        approx = u[:, :r] @ torch.diag(s[:r]) @ vh[:r]
        expected = ((m - approx).norm() / m.norm()).item()
        assert kv.rank_error(k0, [r])[0] == pytest.approx(expected, abs=1e-9)
    assert np.all(np.diff(kv.rank_error(k0, range(33))) <= 1e-12)


def test_kv_activations_refuses_mla_models():
    with pytest.raises(ValueError, match="MHA"):
        kv.kv_activations(TinyLM(tiny_config(attention="mla")), torch.zeros(1, 4, dtype=torch.long))


def test_cache_widget_updates_and_reports_bad_input():
    from course.widgets.kvcache import kv_cache_calculator

    live = kv_cache_calculator()
    assert live.result["at"] == 32768 * 70_272
    live.apply(model="llama-3-70b", batch=8)
    assert live.result["at"] == 8 * 32768 * 327_680
    assert list(live.fig.data[2].y) == [live.result["at"] / 1e9]
    assert live.fig.data[1].y[-1] > live.fig.data[0].y[-1] > 0  # MHA above GQA


def test_latent_rank_widget_uses_the_formula():
    from course.widgets.kvcache import latent_rank

    live = latent_rank()
    live.apply(rank=8)
    assert live.result["mla"] == (8 + 8) * 2 * 4  # (d_c + d_h^R) x layers x FP32
    assert live.result["mha"] == 2 * 64 * 2 * 4  # 2 x d_model x layers x FP32
    assert live.fig.layout.shapes[0].x0 == 8
    with pytest.raises(ValueError, match="between 1"):
        live.compute(rank=0)  # the slider itself clamps at 1
