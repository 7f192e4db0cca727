"""Keep the realistic (CUDA) path from rotting on a CPU-only machine: build every
realistic-size module on the `meta` device (shapes and parameter counts, no memory),
check what the preset will need against the GPU sizes in course.configs, and run the
realistic suite's code at toy size on the CPU."""

from types import SimpleNamespace

import pytest
import torch

from course import realistic
from course.attention import Block, CausalSelfAttention, SwiGLU
from course.configs import GPUS, load_config
from course.memory import attention_params, param_count
from course.presets import PRESETS, preset

V3 = load_config("deepseek-v3")
H200_BYTES = GPUS["H200"].memory_gb * 1e9


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_realistic_presets_use_deepseek_v3_widths():
    assert preset("block", "realistic")["d_model"] == V3.hidden_size
    assert preset("block", "realistic")["n_heads"] == V3.num_heads
    assert preset("mlp", "realistic")["d_ff"] == V3.intermediate_size
    moe = preset("moe_layer", "realistic")
    assert (moe["n_experts"], moe["top_k"], moe["n_groups"], moe["topk_groups"],
            moe["moe_inter_dim"]) == (256, 8, 8, 4, 2048)
    assert max(preset("mla_decode", "realistic")["contexts"]) >= 32768


def test_realistic_block_on_meta():
    p = preset("block", "realistic")
    d, dff = p["d_model"], p["d_ff"]
    with torch.device("meta"):
        block = Block(d, CausalSelfAttention(d, p["n_heads"]), SwiGLU(d, dff))
        y = block(torch.empty(p["batch"], p["seq_len"], d))[0]
    assert y.shape == (p["batch"], p["seq_len"], d)
    assert n_params(block) == 4 * d * d + 3 * d * dff + 2 * d
    # BF16 weights plus the (B, H, T, T) attention weights the readable block materialises
    scores = p["batch"] * p["n_heads"] * p["seq_len"] ** 2 * 2
    assert 2 * n_params(block) + scores < 0.2 * H200_BYTES


def test_realistic_mla_layer_on_meta_matches_deepseek_v3():
    from course.mla import MLAttention

    keys = ("d_model", "n_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
            "qk_rope_head_dim", "v_head_dim")
    p = preset("mla_decode", "realistic")
    with torch.device("meta"):
        layer = MLAttention(SimpleNamespace(**{k: p[k] for k in keys}))
    # FACTS.md 1.3: 187,107,328 parameters per MLA layer (norms included)
    assert n_params(layer) == attention_params(V3) == 187_107_328
    # the cache at the longest context: 576 BF16 numbers per token, tiny next to an H200
    cache = (p["kv_lora_rank"] + p["qk_rope_head_dim"]) * 2 * max(p["contexts"]) * p["batch"]
    assert cache == 576 * 2 * max(p["contexts"]) * p["batch"] and cache < 0.01 * H200_BYTES


def test_realistic_moe_layer_on_meta_matches_deepseek_v3():
    from course.moe import MoE

    p = preset("moe_layer", "realistic")
    cfg = SimpleNamespace(d_model=p["d_model"], n_routed_experts=p["n_experts"],
                          experts_per_token=p["top_k"], moe_inter_dim=p["moe_inter_dim"],
                          n_shared_experts=1, n_groups=p["n_groups"],
                          topk_groups=p["topk_groups"], score_func="sigmoid",
                          route_scale=2.5, extra={})
    with torch.device("meta"):
        layer = MoE(cfg)
    # FACTS.md 1.3: one MoE layer is 11,320,164,608 parameters (the 256 bias terms included)
    assert n_params(layer) + layer.bias.numel() == 11_320_164_608
    parts = param_count(V3).by_part  # the calculator, layer by layer, agrees
    moe_params = parts["routed_experts"] + parts["shared_experts"] + parts["router"]
    assert moe_params == V3.n_moe_layers * (n_params(layer) + layer.bias.numel())
    weights_bf16 = 2 * n_params(layer)
    assert weights_bf16 < 0.2 * H200_BYTES  # 22.6 GB: one layer fits on one GPU


def test_realistic_gemm_fits():
    n = preset("fp8_gemm", "realistic")["n"]
    # FP32 A, B, reference; BF16 copies; FP8 copies; one BF16 output
    need = n * n * (3 * 4 + 2 * 2 + 2 * 1 + 2)
    assert n % 16 == 0 and need < 0.05 * H200_BYTES


def test_every_preset_has_a_realistic_size_at_least_as_big():
    for name, sizes in PRESETS.items():
        for key, toy in sizes["toy"].items():
            real = sizes["realistic"].get(key)
            if isinstance(toy, (int, float)) and isinstance(real, (int, float)) and key in (
                    "d_model", "n_heads", "n_experts", "seq_len", "n", "tokens", "d_ff"):
                assert real >= toy, f"{name}.{key}"


def test_suite_runs_at_toy_size_on_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_SIZE", "toy")
    rows = realistic.run_suite([realistic._block, realistic._mlp_ratio, realistic._moe_layer,
                                realistic._fp8_gemm])
    by_nb = {r.notebook for r in rows}
    assert {"01", "02", "08", "10"} <= by_nb
    timed = [r for r in rows if r.notebook != "10"]
    assert all(r.seconds > 0 for r in timed)
    assert all(r.tflops > 0 for r in timed if r.tflops is not None)
    ratio = next(r for r in rows if r.what == "same MLP backward").note
    assert 1.0 < float(ratio.split("=")[1]) < 4.0  # backward costs about twice the forward
    fp8 = next(r for r in rows if r.notebook == "10")
    if not torch.cuda.is_available():
        assert fp8.note == "needs FP8 tensor cores"
    table = realistic.format_table(rows, "H200")
    assert table.count("\n") == len(rows) + 1


def test_peak_fraction_uses_dense_peaks():
    row = realistic.Row("10", "x", 1.0, tflops=989.4)
    assert realistic.peak_fraction(row, "H100 SXM") == pytest.approx(1.0)
    row.precision = "fp8"
    assert realistic.peak_fraction(row, "H800") == pytest.approx(0.5, rel=1e-3)
    assert realistic.peak_fraction(row, None) is None


def test_without_cuda_main_says_so(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from course import bench

    assert bench.main(["--realistic"]) == 1
    assert capsys.readouterr().out.strip() == (
        "No CUDA GPU here: the realistic-size benchmark needs one.")
