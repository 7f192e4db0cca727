"""course.cost: the analytic FLOP counts against torch's FLOP counter; timings run and
have the right shape (their values depend on the machine)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course import cost
from course.attention import Block, CausalSelfAttention, SwiGLU
from course.configs import load_config
from course.presets import preset


def _count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_swiglu_forward_and_backward_flops_match_torch():
    mlp, x = SwiGLU(16, 40), torch.randn(12, 16, requires_grad=True)
    assert _count(lambda: mlp(x)) == cost.swiglu_flops(12, 16, 40)
    y = mlp(x)
    assert _count(lambda: y.sum().backward()) == 2 * cost.swiglu_flops(12, 16, 40)


def test_block_flops_match_torch():
    block = Block(32, CausalSelfAttention(32, 4), SwiGLU(32, 48))
    with torch.no_grad():
        assert _count(lambda: block(torch.randn(2, 10, 32))) == cost.block_flops(2, 10, 32, 48)


def test_mlp_timing_runs_and_backward_costs_more():
    # Fastest of 9 runs each: load only ever adds time, so the least-disturbed runs keep
    # the ratio near its FLOP count of 2. Measured 1.78-2.36 over 30 tries on the shared
    # 2-core machine, and 1.86 at worst with two extra busy processes; 1.3 leaves margin.
    t = cost.mlp_timing(64, 256, 256, repeats=9, device=torch.device("cpu"))
    assert t.forward_tflops == pytest.approx(cost.swiglu_flops(256, 64, 256) / t.forward_s / 1e12)
    assert t.ratio == pytest.approx(t.backward_s / t.forward_s)
    assert t.fastest_backward_s / t.fastest_forward_s > 1.3
    assert t.fastest_forward_s <= t.forward_s and t.fastest_backward_s <= t.backward_s
    assert t.forward_flops == cost.swiglu_flops(256, 64, 256)
    assert t.where == "cpu float32"


def test_block_timing_toy():
    t = cost.block_timing(32, 4, 48, 16, 2, repeats=1, device=torch.device("cpu"))
    assert t.backward_s is None
    assert t.forward_flops == cost.block_flops(2, 16, 32, 48)
    assert t.forward_tflops == pytest.approx(t.forward_flops / t.forward_s / 1e12)


def test_realistic_presets_are_deepseek_v3_widths():
    v3 = load_config("deepseek-v3")
    block, mlp = preset("block", "realistic"), preset("mlp", "realistic")
    assert (block["d_model"], block["n_heads"], block["d_ff"]) == (
        v3.hidden_size, v3.num_heads, v3.intermediate_size)
    assert (mlp["d_model"], mlp["d_ff"]) == (v3.hidden_size, v3.intermediate_size)
    assert block["seq_len"] == 4096


def test_bf16_path_used_on_cuda_runs_on_cpu():
    # the realistic (CUDA) path computes in BF16; the same code must run in BF16 anywhere
    cpu, bf16 = torch.device("cpu"), torch.bfloat16
    t = cost.block_timing(32, 4, 48, 16, 1, repeats=1, device=cpu, dtype=bf16)
    assert t.where == "cpu bfloat16"
    m = cost.mlp_timing(32, 64, 16, repeats=1, device=cpu, dtype=bf16)
    assert m.where == "cpu bfloat16" and m.backward_s is not None
    assert m.backward_tflops == pytest.approx(2 * m.forward_flops / m.backward_s / 1e12)
    assert cost._default_dtype(torch.device("cuda")) == bf16
