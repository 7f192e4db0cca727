"""The tiny DeepSeek (course.tiny_deepseek): every switch combination trains a step, MLA
cached decoding equals uncached, FP8 agrees with FP32 at initialisation, the counts match
course.memory / course.kvcache, the ablation repeats exactly for a seed, save/load."""

import itertools
import math

import pytest
import torch

from course import kvcache, memory
from course import tiny_deepseek as td
from course.model import TinyConfig, TinyLM, generate, load, save

V = 20


def _tiny(**kw) -> TinyConfig:
    base = dict(vocab_size=V, d_model=32, n_layers=2, n_heads=4, seq_len=8, attention="mla",
                kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                n_routed_experts=4, experts_per_token=2, moe_inter_dim=16, n_groups=2,
                topk_groups=1)
    return TinyConfig(**{**base, **kw})


def _combos():
    for att, ffn, prec, mtp in itertools.product(("mha", "mla"), ("dense", "moe"),
                                                 ("fp32", "bf16", "fp8"), (0, 1, 2)):
        for bal in (("none", "aux", "bias") if ffn == "moe" else ("none",)):
            yield dict(attention=att, ffn=ffn, precision=prec, mtp_depth=mtp, balance=bal)


@pytest.mark.parametrize("sw", list(_combos()), ids=lambda s: "-".join(map(str, s.values())))
def test_every_switch_combination_runs_forward_and_backward(sw):
    torch.manual_seed(0)
    model = TinyLM(_tiny(**sw))
    idx = torch.randint(0, V, (2, 8))
    out = model(idx, targets=torch.roll(idx, -1, 1))
    assert out.logits.shape == (2, 8, V)
    assert abs(out.lm_loss.item() - math.log(V)) < 0.5  # untrained: near uniform
    assert (out.aux_loss is not None) == (sw["balance"] == "aux")
    assert len(out.mtp_logits) == sw["mtp_depth"]
    out.loss.backward()
    for name, p in model.named_parameters():
        if "experts" not in name:  # an expert no token chose has no gradient
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("precision", ["fp32", "fp8"])
def test_mla_cached_generation_equals_uncached(precision):
    torch.manual_seed(1)
    model = TinyLM(td.full_config("toy", precision=precision))
    prompt = torch.randint(0, model.cfg.vocab_size, (2, 5))
    fast = generate(model, prompt, 10, use_cache=True)
    assert torch.equal(fast, generate(model, prompt, 10, use_cache=False))
    # and the logits themselves agree, not just the argmax
    cache = model.new_cache()
    step = torch.cat([model(prompt[:, :4], cache=cache).logits,
                      model(prompt[:, 4:], cache=cache).logits], dim=1)
    assert torch.allclose(step, model(prompt).logits, atol=1e-5)


def test_fp8_and_fp32_agree_at_initialisation():
    """Same weights: FP8 (E4M3, 1x128 / 128x128 scales) rounds each operand to ~3
    mantissa bits (relative error <= 2^-4), so the logits differ by a few percent of their
    spread and the loss by less than 0.01 (both near ln V)."""
    cfg = td.full_config("toy")
    torch.manual_seed(0)
    fp8 = TinyLM(cfg)
    fp32 = TinyLM(td.variant_config("fp32", cfg))
    fp32.load_state_dict(fp8.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (4, cfg.seq_len), generator=torch.Generator()
                        .manual_seed(0))
    a, b = fp8(idx, torch.roll(idx, -1, 1)), fp32(idx, torch.roll(idx, -1, 1))
    rel = ((a.logits - b.logits).norm() / (b.logits - b.logits.mean()).norm()).item()
    assert 0 < rel < 0.1
    assert abs(a.loss.item() - b.loss.item()) < 0.01


def test_counts_match_the_course_calculators():
    cfg = td.full_config("toy")
    model = TinyLM(cfg)
    total, active = td.count_params(model)
    ref = memory.param_count(td.hf_config(cfg))
    assert (total, active) == (ref.total, ref.active)
    # independent: active = total - the routed experts a token does not use
    expert = 3 * cfg.d_model * cfg.moe_inter_dim
    unused = cfg.n_layers * (cfg.n_routed_experts - cfg.experts_per_token) * expert
    assert active == total - unused
    # the dense variant's FFN matches the MoE's active FFN (router aside)
    dense = TinyLM(td.variant_config("dense", cfg))
    d_total, d_active = td.count_params(dense)
    assert d_total == d_active
    router = cfg.n_layers * cfg.n_routed_experts * (cfg.d_model + 1)
    assert d_active == active - router


@pytest.mark.parametrize("variant", ["full", "mha"])
def test_kv_cache_measured_equals_formula(variant):
    cfg = td.variant_config(variant, td.full_config("toy"))
    model = TinyLM(cfg)
    got = td.kv_bytes_per_token(model, torch.tensor([[1, 2, 3]]), 6)
    assert got == td.kv_formula(cfg)
    per_layer = (cfg.kv_lora_rank + cfg.qk_rope_head_dim if variant == "full"
                 else 2 * cfg.d_model)
    assert got == per_layer * cfg.n_layers * 4
    assert kvcache.kv_bytes_per_token(td.hf_config(cfg), 4) == got


def test_variant_configs_change_one_thing():
    cfg = td.full_config("toy")
    for name in td.VARIANTS:
        diff = {k for k, v in td.variant_config(name, cfg).to_dict().items()
                if cfg.to_dict()[k] != v}
        expected = {"full": set(), "mha": {"attention"}, "aux": {"balance"},
                    "dense": {"ffn", "balance", "d_ff"}, "fp32": {"precision"},
                    "no_mtp": {"mtp_depth"}}[name]
        assert diff == expected, name
    with pytest.raises(ValueError, match="No variant"):
        td.variant_config("gqa", cfg)


def test_ablation_is_deterministic_for_a_seed(monkeypatch):
    from course import presets

    small = dict(presets.PRESETS["tiny_deepseek"]["toy"], d_model=32, seq_len=8, steps=4,
                 batch=2, prompts=2, new_tokens=4)
    monkeypatch.setitem(presets.PRESETS["tiny_deepseek"], "toy", small)
    runs = [td.measure("full", "toy", seed=3, cache=False).as_dict() for _ in range(2)]
    other = td.measure("full", "toy", seed=4, cache=False).as_dict()
    for r in runs + [other]:
        r.pop("tokens_per_s")  # wall-clock throughput: the one measured, noisy column
    assert runs[0] == runs[1]
    assert other["val_loss"] != runs[0]["val_loss"]
    assert runs[0]["tokens_per_step"] >= 1 and runs[0]["max_vio"] >= 0
    cfg = td.full_config("toy")
    assert math.isnan(td.held_out_max_vio(TinyLM(td.variant_config("dense", cfg))))
    no_mtp = TinyLM(td.variant_config("no_mtp", cfg))
    assert td.decode_tokens_per_step(no_mtp, 2, 4) == 1.0


def test_save_load_round_trip(tmp_path):
    cfg = td.full_config("toy")
    torch.manual_seed(0)
    model = TinyLM(cfg)
    save(model, tmp_path / "ck")
    back = load(tmp_path / "ck", cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 6))
    assert torch.equal(back(idx).logits, model(idx).logits)
    assert torch.equal(back.blocks[0].ffn.bias, model.blocks[0].ffn.bias)
    with pytest.raises(ValueError, match="different config"):
        load(tmp_path / "ck", td.variant_config("mha", cfg))


def test_continuation_highlights_drafts_and_refuses_unknown_words():
    torch.manual_seed(0)
    model = TinyLM(td.full_config("toy"))
    c = td.continue_text(model, "babe ruth played", 6)
    assert c.prompt == ["babe", "ruth", "played"]
    assert c.speculative == c.plain and len(c.accepted) == 6  # greedy: same words
    assert 1 <= c.main_steps <= 6 <= c.main_steps + sum(c.accepted)
    with pytest.raises(ValueError, match="never saw"):
        td.continue_text(model, "babe ruth played cricket", 4)


def test_generation_widget_updates_and_shows_errors():
    from course.widgets.tiny_deepseek import ACCEPTED, generation, render

    torch.manual_seed(0)
    live = generation(TinyLM(td.full_config("toy")), "the cat says", 5)
    assert live.error is None and live.result.prompt == ["the", "cat", "says"]
    live.controls["new_tokens"].value = 9
    assert len(live.result.plain) == 9
    live.controls["text"].value = "the cat barks loudly"
    assert "never saw" in live.error and len(live.result.plain) == 9  # last good kept
    c = td.Continuation(["a"], ["b", "c"], ["b", "c"], [False, True], 1, 2)
    assert render(c).count(ACCEPTED) == 2  # the accepted word and the legend
