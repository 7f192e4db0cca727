"""Parameter counts and memory calculators against FACTS.md and against torch itself."""

import re

import pytest
import torch
from torch import nn

from course.activations import (
    activation_bytes,
    measure_training_step,
    toy_mlp,
    toy_mlp_params,
    toy_mlp_saved_bytes,
)
from course.configs import load_config
from course.kvcache import kv_cache_bytes
from course.memory import (
    ParamCount,
    gpus_needed,
    hf_checkpoint_params,
    inference_memory,
    param_count,
    state_bytes,
    training_memory,
)


def test_deepseek_v3_counts_match_facts():
    p = param_count("deepseek-v3")
    assert isinstance(p, ParamCount)
    assert p.total == 671_026_419_200
    assert p.active == 37_552_297_472
    assert p.active_without_embedding == 36_625_618_432
    assert p.by_part["attention"] == 61 * 187_107_328
    assert p.by_part["dense_mlp"] == 3 * 396_361_728
    assert p.by_part["router"] == 58 * 1_835_264
    assert sum(p.by_part.values()) == p.total


def test_deepseek_v3_mtp_and_hf_checkpoint():
    assert param_count("deepseek-v3", include_mtp=True).by_part["mtp"] == 11_610_068_224
    hf = hf_checkpoint_params("deepseek-v3")
    assert hf["scales"] == 40_838_232 + 702_264
    assert hf["total"] == 684_531_386_000


def test_mixtral_counts_match_facts():
    p = param_count("mixtral-8x7b")
    assert (p.total, p.active) == (46_702_792_704, 12_879_925_248)


def _llama(d, layers, heads, kv, inter, vocab=128256):
    """Derived by hand: q and o are d x d, k and v are d x (kv * d/heads), SwiGLU 3 x d x
    inter, two norms per layer, a final norm, untied embedding and head."""
    attn = 2 * d * d + 2 * d * kv * (d // heads)
    return layers * (attn + 3 * d * inter + 2 * d) + d + 2 * vocab * d


@pytest.mark.parametrize("name, expected, published", [
    ("llama-3-8b", _llama(4096, 32, 32, 8, 14336), 8.03e9),
    ("llama-3-70b", _llama(8192, 80, 64, 8, 28672), 70.55e9),
    ("llama-3.1-405b", _llama(16384, 126, 128, 8, 53248), 405.85e9),
])
def test_llama_totals(name, expected, published):
    p = param_count(name)
    assert p.total == p.active == expected
    assert p.total == pytest.approx(published, rel=1e-3)


def test_llama_8b_exact_integer():
    assert param_count("llama-3-8b").total == 8_030_261_248


class _MLA(nn.Module):
    """DeepSeek-V3 `inference/model.py` MLA shapes, built in torch at a small size."""

    def __init__(self, d, h, qr, kvr, nope, rope, v):
        super().__init__()
        self.wq_a, self.q_norm = nn.Linear(d, qr, bias=False), nn.RMSNorm(qr)
        self.wq_b = nn.Linear(qr, h * (nope + rope), bias=False)
        self.wkv_a, self.kv_norm = nn.Linear(d, kvr + rope, bias=False), nn.RMSNorm(kvr)
        self.wkv_b = nn.Linear(kvr, h * (nope + v), bias=False)
        self.wo = nn.Linear(h * v, d, bias=False)


def _ffn(d, inter):
    return nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in ((d, inter), (inter, d),
                                                                   (d, inter)))


def test_unseen_deepseek_config_matches_torch_modules():
    raw = dict(model_type="deepseek_v3", hidden_size=48, num_hidden_layers=4,
               num_attention_heads=4, num_key_value_heads=4, intermediate_size=96,
               vocab_size=101, q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8,
               qk_rope_head_dim=4, v_head_dim=6, n_routed_experts=6, n_shared_experts=2,
               num_experts_per_tok=2, moe_intermediate_size=20, first_k_dense_replace=1,
               scoring_func="sigmoid")
    cfg = load_config(raw)
    d = 48
    mods = nn.ModuleList([nn.Embedding(101, d), nn.Linear(d, 101, bias=False), nn.RMSNorm(d)])
    for i in range(4):
        mods += [_MLA(d, 4, 24, 16, 8, 4, 6), nn.RMSNorm(d), nn.RMSNorm(d)]
        if i < 1:
            mods.append(_ffn(d, 96))
        else:
            mods += [_ffn(d, 20) for _ in range(6 + 2)]
            mods.append(nn.Linear(d, 6, bias=True))  # gate weight + balancing bias
    torch_total = sum(p.numel() for p in mods.parameters())
    p = param_count(cfg)
    assert p.total == torch_total
    per_expert = 3 * d * 20
    assert p.total - p.active == 3 * (6 - 2) * per_expert


def test_unseen_llama_mha_tied_matches_torch():
    cfg = load_config(dict(model_type="llama", hidden_size=32, num_hidden_layers=3,
                           num_attention_heads=4, intermediate_size=80, vocab_size=50,
                           tie_word_embeddings=True))
    assert cfg.attention_kind == "mha"
    mods = nn.ModuleList([nn.Embedding(50, 32), nn.RMSNorm(32)])
    for _ in range(3):
        mods += [nn.Linear(32, 32, bias=False) for _ in range(4)]
        mods += [_ffn(32, 80), nn.RMSNorm(32), nn.RMSNorm(32)]
    assert param_count(cfg).total == sum(p.numel() for p in mods.parameters())


def test_recipes_bytes_per_param():
    per = {r: sum(state_bytes(1, r).values()) for r in
           ("fp32", "bf16-mixed", "deepseek-fp8", "bf16-pure")}
    assert per == {"fp32": 16, "bf16-mixed": 16, "deepseek-fp8": 13, "bf16-pure": 8}
    assert state_bytes(10, "fp32", "sgd")["optimizer"] == 0
    with pytest.raises(ValueError, match="recipe"):
        state_bytes(10, "fp4")


def test_gradients_cover_all_parameters_not_active_ones():
    m = training_memory("deepseek-v3", "bf16-mixed")
    assert m["gradients"] == 2 * param_count("deepseek-v3").total


def test_essay_5120_gb_needs_about_8_bytes_per_param():
    total = param_count("deepseek-v3").total
    assert total * 8 / 2**30 < 64 * 80  # BF16 everything fits in 64 x 80 GiB...
    assert gpus_needed(sum(state_bytes(total, "bf16-mixed").values())) == 135  # ...16 B do not


def test_toy_measurement_matches_prediction():
    d, hidden, blocks, batch = 24, 56, 3, 10
    torch.manual_seed(0)
    m = toy_mlp(d, hidden, blocks, seed=1)
    got = measure_training_step(m, torch.randn(batch, d), torch.randn(batch, d))
    n = toy_mlp_params(d, hidden, blocks)
    assert n == sum(p.numel() for p in m.parameters())
    assert {k: got[k] for k in ("weights", "gradients", "optimizer")} == state_bytes(n, "fp32")
    assert got["activations"] == toy_mlp_saved_bytes(d, hidden, blocks, batch)
    assert got["optimizer_step_counters"] == 4 * 2 * blocks * 2  # one fp32 scalar per tensor


def test_activation_scaling_and_recompute():
    a1 = activation_bytes("deepseek-v3", 1024, 1)
    assert activation_bytes("deepseek-v3", 2048, 1) == 2 * a1  # flash: linear in T
    assert activation_bytes("deepseek-v3", 1024, 3) == 3 * a1
    no_flash = [activation_bytes("llama-3-8b", t, 1, flash=False) for t in (512, 1024, 2048)]
    assert no_flash[2] - 2 * no_flash[1] > 0  # the score matrix grows as T^2
    full, sel, none = (activation_bytes("deepseek-v3", 4096, 1, r)
                       for r in ("full", "selective", "none"))
    assert full < sel < none
    tp8 = activation_bytes("llama-3-70b", 4096, 1, tp=8, sp=True)
    assert tp8 * 8 == pytest.approx(activation_bytes("llama-3-70b", 4096, 1), rel=1e-6)
    with pytest.raises(ValueError, match="recompute"):
        activation_bytes("llama-3-8b", 128, 1, "sometimes")


def test_inference_memory_uses_kv_cache():
    m = inference_memory("deepseek-v3", weight_bytes=1, seq_len=1000, batch=2)
    assert m["weights"] == 671_026_419_200
    assert m["kv_cache"] == 70_272 * 1000 * 2


@pytest.mark.parametrize("d, e, k, m, s, t", [(32, 8, 2, 16, 1, 64), (48, 6, 3, 20, 2, 50),
                                              (16, 4, 4, 8, 0, 7)])
def test_moe_layer_measurement_matches_prediction(d, e, k, m, s, t):
    from course.moe_memory import measure_step, predicted_saved_bytes

    got = measure_step(d, e, k, m, s, tokens=t)
    n = e * 3 * d * m + s * 3 * d * m + d * e
    assert got["weights"] == got["gradients"] == 4 * n
    assert got["optimizer"] == 8 * n
    assert got["activations"] == predicted_saved_bytes(d, e, k, m, s, t)


def test_moe_layer_prediction_is_the_calculators_moe_part():
    """The measured layer's saved floats = the calculator's MoE elements + its input (d)
    + one gate weight per routed copy; ints are extra bookkeeping."""
    from course.activations import layer_elements
    from course.moe_memory import predicted_saved_bytes

    cfg = load_config(dict(model_type="deepseek_v3", hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=128, vocab_size=10,
                           kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
                           v_head_dim=8, n_routed_experts=8, n_shared_experts=1,
                           num_experts_per_tok=2, moe_intermediate_size=32))
    moe = layer_elements(cfg, True, 16)["split"] - layer_elements(cfg, False, 16)["split"]
    moe += 4 * 128  # put back the dense FFN that the subtraction removed
    floats = predicted_saved_bytes(64, 8, 2, 32, 1, 1, 1) - 2 * 4 * 8
    assert floats == moe + 64 + 2


def test_memory_widget_updates_and_reports_bad_custom_model():
    from course.widgets.memory import memory_widget

    live = memory_widget()
    before = live.result["train_gpus"]
    live.apply(model="llama-3-8b")
    assert live.result["train_gpus"] < before
    live.apply(model="custom", experts=4, hidden=2048)
    assert live.result["params"].total > live.result["params"].active
    live.controls["experts"].value = 1  # top-2 of 1 expert
    assert "top-k" in live.error


# ------------------------------------------------------------------ configs: bad input

_BASE = dict(model_type="llama", hidden_size=512, num_hidden_layers=2, num_attention_heads=8,
             intermediate_size=1024, vocab_size=100)
_MOE = dict(_BASE, model_type="deepseek_v3", kv_lora_rank=64, qk_nope_head_dim=32,
            qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=8, num_experts_per_tok=2,
            moe_intermediate_size=64, n_group=4, topk_group=2, first_k_dense_replace=1)


@pytest.mark.parametrize("raw, words", [
    (dict(_BASE, num_attention_heads=0), "'num_attention_heads' must be a whole number"),
    (dict(_BASE, hidden_size="abc"), "'hidden_size' must be a whole number"),
    (dict(_BASE, hidden_size=True), "'hidden_size' must be a whole number"),
    (dict(_BASE, num_hidden_layers=-3), "'num_hidden_layers'"),
    (dict(_BASE, vocab_size=float("nan")), "'vocab_size'"),
    (dict(_BASE, hidden_size=500), "not divisible by num_attention_heads"),
    (dict(_BASE, num_key_value_heads=3), "num_key_value_heads 3 must divide"),
    (dict(_BASE, model_type="mixtral", num_local_experts=4, num_experts_per_tok=5),
     "num_experts_per_tok 5 is more than the 4 routed experts"),
    (dict(_MOE, n_group=3), "n_group 3 must divide the 8 routed experts"),
    (dict(_MOE, topk_group=5), "topk_group 5 is more than the 4 groups"),
    (dict(_MOE, first_k_dense_replace=3), "first_k_dense_replace 3 is more than the 2 layers"),
    (dict(_MOE, scoring_func="relu"), "Unknown scoring_func 'relu'"),
])
def test_impossible_configs_name_the_key(raw, words):
    load_config(_MOE)  # the base configs themselves are fine
    with pytest.raises(ValueError, match=re.escape(words)):
        load_config(raw)


def test_config_sources_that_are_not_configs(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{not json")
    for source, words in ((None, "A model config is"), (3, "A model config is"),
                          (tmp_path, "is not a file"),
                          (tmp_path / "list.json", "holds a JSON list"),
                          (tmp_path / "broken.json", "Cannot read broken.json as JSON")):
        with pytest.raises(ValueError, match=words):
            load_config(source)


def test_calculators_reject_bad_sizes():
    with pytest.raises(ValueError, match="seq_len must be a whole number"):
        kv_cache_bytes("deepseek-v3", "100", 1)
    with pytest.raises(ValueError, match="Unknown precision recipe"):
        state_bytes(10, "fp4")
    with pytest.raises(ValueError, match="n_params must be a number"):
        state_bytes(float("inf"))
