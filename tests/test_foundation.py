"""Unit tests of the foundation: device and size presets, configs, units, checks."""

import numpy as np
import pytest
import torch

from course import checks, configs, device, presets, units


def test_size_follows_course_size(monkeypatch):
    monkeypatch.setenv("COURSE_SIZE", "realistic")
    assert device.size() == "realistic"
    assert presets.preset("block")["d_model"] == 7168
    monkeypatch.setenv("COURSE_SIZE", "toy")
    assert device.size() == "toy" and presets.preset("block")["d_model"] < 7168
    assert device.describe() == f"{device.gpu_name() or 'CPU'}, toy sizes"


def test_size_default_depends_on_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_SIZE", raising=False)
    assert device.size() == ("realistic" if torch.cuda.is_available() else "toy")


def test_bad_course_size_is_a_sentence(monkeypatch):
    monkeypatch.setenv("COURSE_SIZE", "huge")
    with pytest.raises(ValueError, match="COURSE_SIZE must be one of toy, realistic"):
        device.size()


def test_seed_everything_repeats():
    device.seed_everything(3)
    a = (torch.rand(3), np.random.rand(2))
    device.seed_everything(3)
    b = (torch.rand(3), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_presets_have_both_sizes():
    for name, sizes in presets.PRESETS.items():
        assert set(sizes) == {"toy", "realistic"}, name
    with pytest.raises(ValueError, match="No preset"):
        presets.preset("nope")


def test_deepseek_v3_config_matches_facts():
    c = configs.load_config("deepseek-v3")
    assert (c.hidden_size, c.num_layers, c.num_heads, c.vocab_size) == (7168, 61, 128, 129280)
    assert (c.kv_lora_rank, c.q_lora_rank, c.qk_rope_head_dim, c.qk_nope_head_dim,
            c.v_head_dim) == (512, 1536, 64, 128, 128)
    assert (c.n_routed_experts, c.n_shared_experts, c.experts_per_token) == (256, 1, 8)
    assert (c.moe_intermediate_size, c.intermediate_size, c.first_k_dense_replace) == (
        2048, 18432, 3)
    assert (c.n_group, c.topk_group, c.routed_scaling_factor, c.scoring_func) == (
        8, 4, 2.5, "sigmoid")
    assert c.attention_kind == "mla" and c.n_moe_layers == 58 and c.mtp_depth == 1


@pytest.mark.parametrize("name,kind,kv,layers", [
    ("mixtral-8x7b", "gqa", 8, 32), ("llama-3-8b", "gqa", 8, 32),
    ("llama-3-70b", "gqa", 8, 80), ("llama-3.1-405b", "gqa", 8, 126)])
def test_other_shipped_configs(name, kind, kv, layers):
    c = configs.load_config(name)
    assert (c.attention_kind, c.num_kv_heads, c.num_layers, c.head_dim) == (kind, kv, layers, 128)


def test_mixtral_is_all_moe():
    c = configs.load_config("mixtral-8x7b")
    assert (c.n_routed_experts, c.experts_per_token, c.n_moe_layers) == (8, 2, 32)
    assert c.moe_intermediate_size == 14336 and c.n_shared_experts == 0


def test_llama_mha_mqa_from_dict():
    base = dict(model_type="llama", hidden_size=512, num_hidden_layers=2,
                num_attention_heads=8, intermediate_size=1024, vocab_size=100, foo="ignored")
    assert configs.load_config(base).attention_kind == "mha"
    assert configs.load_config({**base, "num_key_value_heads": 1}).attention_kind == "mqa"
    assert configs.load_config(base).extra["foo"] == "ignored"


def test_deepseek_without_q_lora_and_dense():
    raw = dict(model_type="deepseek_v2", hidden_size=2048, num_hidden_layers=27,
               num_attention_heads=16, intermediate_size=10944, vocab_size=102400,
               q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
               v_head_dim=128)
    c = configs.load_config(raw)
    assert c.q_lora_rank is None and c.attention_kind == "mla" and not c.is_moe


def test_missing_key_names_the_key():
    with pytest.raises(ValueError, match="'vocab_size'"):
        configs.load_config(dict(model_type="llama", hidden_size=64, num_hidden_layers=1,
                                 num_attention_heads=4, intermediate_size=128))
    with pytest.raises(ValueError, match="No config"):
        configs.load_config("gpt-5")


def test_gpu_table_dense_vs_sparse():
    h100, h800 = configs.gpu("H100 SXM"), configs.gpu("H800")
    assert h100.bf16_dense_tflops == pytest.approx(989.4)
    assert h100.bf16_sparse_tflops == pytest.approx(1978.8, abs=0.2)  # the product-page figure
    assert h800.bf16_dense_tflops == h100.bf16_dense_tflops  # same tensor cores
    assert h800.nvlink_gb_s < h100.nvlink_gb_s
    with pytest.raises(ValueError, match="no dense fp8"):
        configs.gpu("A100").peak_tflops("fp8")


def test_units():
    assert units.fmt_bytes(70272) == "68.6 KiB"
    assert units.fmt_bytes(512) == "512 B"
    assert units.fmt_count(671_026_419_200, "params") == "671.0 B params"
    assert units.fmt_seconds(0.0123) == "12.3 ms"
    assert units.fmt_seconds(3.66 * 86400) == "3.7 days"
    assert units.gib(2**30) == 1.0


def test_check_close():
    checks.check_close("pi", 3.14159, np.pi, rtol=1e-5)
    with pytest.raises(AssertionError, match="pi"):
        checks.check_close("pi", 3.0, np.pi, rtol=1e-3)


def test_check_exercise_statuses(capsys):
    ref = lambda x: x * 2

    def stub(x):
        raise NotImplementedError

    assert checks.check_exercise("e1", stub, ref, [(1,)]) is ref
    assert checks.results["e1"] == "not attempted"
    assert checks.check_exercise("e2", lambda x: x + 2, ref, [(2,), (3,)], hint="times") is ref
    assert checks.results["e2"] == "failed" and "Hint: times" in capsys.readouterr().out
    good = lambda x: 2 * x
    assert checks.check_exercise("e3", good, ref, [(torch.ones(2),)]) is good
    assert checks.results["e3"] == "passed"
    assert checks.check_exercise("e4", lambda x: 1 / 0, ref, [(1,)]) is ref


def test_check_answer():
    assert checks.check_answer("a", 0.5001, 0.5) is True
    assert checks.check_answer("b", None, 0.5) is False and checks.results["b"] == "not attempted"
    assert checks.check_answer("c", "up", "down") is False and checks.results["c"] == "failed"


def test_course_plots_imports_fast_and_notebooks_still_validate():
    """course.plots keeps jsonschema from compiling rfc3987_syntax's parsers (1.8 s per
    kernel): in a fresh process it is marked missing, and nbformat still validates."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, time; t = time.perf_counter(); import course.plots; "
            "import nbformat; dt = time.perf_counter() - t; "
            "nb = nbformat.read('notebooks/00_welcome.ipynb', as_version=4); "
            "nbformat.validate(nb); print(sys.modules['rfc3987_syntax'] is None, dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.split()[0] == "True"
