"""Multi-token prediction (DeepSeek-V3 eq. 21-25) and speculative decoding with MTP drafts."""

import math

import pytest
import torch
import torch.nn.functional as F

from course import data, mtp
from course.attention import KVCache
from course.model import TinyConfig, TinyLM, generate
from course.speculative import (
    expected_tokens_per_step,
    speculative_generate,
    speedup_estimate,
    step_costs,
    truncate_cache,
)


def tiny(depth=1, vocab=20, **kw) -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(TinyConfig(vocab_size=vocab, d_model=32, n_layers=1, n_heads=2,
                             mtp_depth=depth, **kw)).eval()


def test_mtp_module_is_eq_21_22_and_cache_matches_full_pass():
    m = tiny(1).mtp[0]
    h, e = torch.randn(1, 7, 32), torch.randn(1, 7, 32)
    rms = lambda x: x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()  # noqa: E731
    x = torch.cat([rms(h), rms(e)], -1) @ m.proj.weight.T  # M_k [RMSNorm(h); RMSNorm(emb)]
    assert torch.allclose(m(h, e), m.block(x)[0], atol=1e-5)
    cache = m.new_cache()
    parts = torch.cat([m(h[:, :4], e[:, :4], cache), m(h[:, 4:], e[:, 4:], cache)], 1)
    assert torch.allclose(parts, m(h, e), atol=1e-5)


def test_depth_k_sees_tokens_up_to_i_plus_k_only():
    model = tiny(2)
    idx = torch.randint(0, 20, (1, 12), generator=torch.Generator().manual_seed(1))
    base = model.mtp_forward(model(idx).hidden, idx)
    i = 4
    for k in (1, 2):  # depth k at position i reads t_0..t_{i+k} and predicts t_{i+k+1}
        later, at = idx.clone(), idx.clone()
        later[0, i + k + 1:] = (later[0, i + k + 1:] + 1) % 20
        at[0, i + k] = (at[0, i + k] + 1) % 20
        assert torch.allclose(model.mtp_forward(model(later).hidden, later)[k - 1][0, i],
                              base[k - 1][0, i], atol=1e-6)
        assert not torch.allclose(model.mtp_forward(model(at).hidden, at)[k - 1][0, i],
                                  base[k - 1][0, i], atol=1e-6)


def test_mtp_loss_is_lambda_over_depth_times_summed_cross_entropy():
    model = tiny(2, mtp_lambda=0.3)
    g = torch.Generator().manual_seed(2)
    idx, tgt = (torch.randint(0, 20, (2, 10), generator=g) for _ in range(2))
    out = model(idx, tgt)
    ce = [F.cross_entropy(lg.reshape(-1, 20), tgt[:, k:].reshape(-1))
          for k, lg in enumerate(out.mtp_logits, start=1)]
    assert out.mtp_logits[0].shape == (2, 9, 20) and out.mtp_logits[1].shape == (2, 8, 20)
    assert torch.allclose(out.loss, out.lm_loss + 0.3 / 2 * (ce[0] + ce[1]), atol=1e-6)


@pytest.mark.parametrize("depth,attention", [(1, "mha"), (2, "mha"), (1, "mla")])
def test_greedy_speculation_is_identical_and_drafts_match_full_recompute(depth, attention):
    model = tiny(depth, attention=attention)
    for s in range(4):
        prompt = torch.randint(0, 20, (1, 1 + 2 * s), generator=torch.Generator().manual_seed(s))
        run = speculative_generate(model, prompt, 20)
        assert torch.equal(run.tokens, generate(model, prompt, 20))
        full = model.mtp_forward(model(run.tokens).hidden, run.tokens)
        for d in run.drafts:  # depth k drafted t_{pos} at position pos-k-1
            assert int(full[d.depth - 1][0, d.position - d.depth - 1].argmax()) == d.token
        assert 0 <= run.main_steps + sum(d.accepted for d in run.drafts) - 20 <= depth


def _boost(model: TinyLM) -> TinyLM:
    """Spread-out distributions that differ visibly between the draft q and the main p."""
    with torch.no_grad():
        model.head.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
        model.mtp[0].proj.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(5))
    return model


def test_sampled_speculation_keeps_the_main_models_distribution():
    model, V, n = _boost(tiny(1, vocab=4)), 4, 2000
    prompt = torch.tensor([[1, 2]])
    with torch.no_grad():
        p1 = model(prompt).logits[0, -1].softmax(-1)
        exact = torch.stack([p1[a] * model(torch.tensor([[1, 2, a]])).logits[0, -1].softmax(-1)
                             for a in range(V)])  # (V, V): p(t1) p(t2 | t1)
    counts, accepted, drafted = torch.zeros(V, V), 0, 0
    gen = torch.Generator().manual_seed(0)
    for _ in range(n):
        run = speculative_generate(model, prompt, 2, temperature=1.0, draft_temperature=1.5,
                                   generator=gen)
        counts[run.tokens[0, 2], run.tokens[0, 3]] += 1
        accepted += sum(d.accepted for d in run.drafts)
        drafted += len(run.drafts)
    assert 0.2 < accepted / drafted < 0.8  # both the accept and the reject branch ran
    assert (counts / n - exact).abs().max() < 0.04


def test_expected_tokens_and_speedup_closed_forms():
    assert expected_tokens_per_step([0.85]) == pytest.approx(1.85)
    assert expected_tokens_per_step([0.9]) == pytest.approx(1.9)
    assert expected_tokens_per_step([0.8, 0.5]) == pytest.approx(1 + 0.8 + 0.4)
    assert expected_tokens_per_step([]) == 1.0
    # verify as cheap as a plain step and free drafts: the speed-up is the 1 + p ceiling
    assert speedup_estimate(1.85, 1.0, 1.0, 0.0) == pytest.approx(1.85)
    assert speedup_estimate(1.85, 1.0, 1.0, 0.028) == pytest.approx(1.8, abs=0.001)
    with pytest.raises(ValueError, match="between 0 and 1"):
        expected_tokens_per_step([1.2])
    with pytest.raises(ValueError, match="positive"):
        speedup_estimate(1.5, 0.0, 1.0, 0.0)


def test_truncate_cache_rolls_back_both_cache_kinds():
    c = KVCache()
    c.append(torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4))
    truncate_cache([c], 3)
    assert len(c) == 3 and c.v.shape[-2] == 3
    model = tiny(1, attention="mla")
    cache = model.new_cache()
    model(torch.tensor([[1, 2, 3, 4]]), cache=cache)
    truncate_cache(cache, 2)
    assert [len(x) for x in cache] == [2]
    with pytest.raises(ValueError, match="roll back"):
        truncate_cache(object(), 1)


def test_bad_input_is_a_sentence():
    with pytest.raises(ValueError, match="MTP module"):
        speculative_generate(tiny(0), torch.tensor([[1]]), 3)
    with pytest.raises(ValueError, match="one prompt"):
        speculative_generate(tiny(1), torch.tensor([[1], [2]]), 3)
    with pytest.raises(ValueError, match="depth"):
        mtp.train(depth=3)


def test_step_costs_are_positive_times():
    c = step_costs(tiny(2), context=8, repeats=3)
    assert min(c.plain_s, c.verify_s, c.draft_s) > 0 and math.isfinite(c.verify_s)


def test_token_types_positions_and_prompts():
    assert mtp.token_type("green") == "colour" and mtp.token_type("ruth") == "athlete"
    assert mtp.token_type(".") == "end of sentence" and mtp.token_type("the") == "function word"
    assert mtp.sentence_position([0, 5, 6, 7, 0, 8], 3) == 3
    assert mtp.sentence_position([0, 5, 6, 7, 0, 8], 5) == 1
    ps = mtp.prompts(5, 4)
    assert len(ps) == 5 and all(p.shape == (1, 4) and p[0, 0] == 0 for p in ps)


def test_trained_mtp_head_is_accepted_most_of_the_time():
    """A short training run: the depth-1 draft beats chance by far and greedy is exact."""
    run = mtp.train(depth=1, lam=0.3, steps=120)
    acc = mtp.depth_accuracy(run.model, data.split()[1], 32)
    assert acc.agrees_with_main[0] > 0.5
    spec = mtp.speculate(run.model, mtp.prompts(6, 6), new_tokens=20)
    assert spec.identical and spec.acceptance[0] > 0.5
    assert spec.tokens_per_step > 1.4
    assert sum(n for _, n in spec.by_type.values()) == sum(n for _, n in
                                                          spec.by_position.values())


def test_widget_recomputes_when_the_draft_temperature_changes(monkeypatch):
    from course import presets

    monkeypatch.setitem(presets.PRESETS["mtp"], "toy", dict(steps=30, prompts=3, prompt_len=4,
                                                            new_tokens=10, widget_prompts=3))
    monkeypatch.setenv("COURSE_SIZE", "toy")
    from course.widgets.mtp import mtp_speculation

    live = mtp_speculation()
    assert live.error is None and live.result["spec"].identical
    before = live.result["spec"].acceptance[0]
    live.controls["draft_temperature"].value = 2.0
    assert live.result["spec"].acceptance[0] != before
    assert list(live.fig.data[0].x) == list(live.result["spec"].by_type)


def test_widget_moves_from_the_browser_train_in_the_background_with_progress(monkeypatch):
    from course import presets

    monkeypatch.setitem(presets.PRESETS["mtp"], "toy", dict(steps=20, prompts=3, prompt_len=4,
                                                            new_tokens=8, widget_prompts=2))
    monkeypatch.setenv("COURSE_SIZE", "toy")
    from course.widgets import mtp as widget

    live = widget.mtp_speculation()
    seen = []
    live.progress_text.observe(lambda c: seen.append(c["new"]), names="value")
    live.controls["lam"].set_state({"value": 0.6})  # as the browser sends it
    assert live.busy  # the kernel is free while it trains
    result = live.wait()
    sizes = (20, 2, 4, 8)
    assert live.error is None and result["spec"] is widget.SPECS.get((1, 0.6, 0.0, sizes),
                                                                       None)[1]
    assert "training with MTP depth 1, λ = 0.6: step 0/20" in seen
    assert "training with MTP depth 1, λ = 0.6: step 20/20" in seen
    assert any(t.startswith("decoding 2 prompts") for t in seen)
    assert live.progress_box.layout.display == "none"
    assert (1, 0.6, 20, 0) in mtp.RUNS
    seen.clear()
    live.apply(lam=0.3)  # back to a setting seen before: cached, no progress shown
    assert seen == [] and live.result["spec"] is widget.SPECS.get((1, 0.3, 0.0, sizes), None)[1]


# ------------------------------------------------- parallel heads (Gloeckle et al. 2024)


def test_parallel_heads_read_only_the_trunk_up_to_i():
    model = tiny(2, extra={"mtp_heads": "parallel"})
    idx = torch.randint(0, 20, (1, 12), generator=torch.Generator().manual_seed(1))
    out = model(idx)
    base = model.mtp_forward(out.hidden, idx)
    i = 4
    for k in (1, 2):  # head k at position i reads t_0..t_i only, predicts t_{i+k+1}
        at = idx.clone()
        at[0, i + 1] = (at[0, i + 1] + 1) % 20  # a token the sequential module would see
        torch.testing.assert_close(model.mtp_forward(model(at).hidden, at)[k - 1][0, i],
                                   base[k - 1][0, i])
        # head k = its own block on M_k RMSNorm(h_i): no previous depth, no embedding
        m = model.mtp[k - 1]
        rms = out.hidden / out.hidden.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
        h = m.block(rms[:, : 12 - k] @ m.proj.weight.T)[0]
        torch.testing.assert_close(model.head(model.norm(h)), base[k - 1])
    seq = tiny(2)
    d = 32  # same blocks; the parallel M_k lacks the embedding half (d x d) and its norm
    assert (sum(p.numel() for p in seq.mtp.parameters())
            - sum(p.numel() for p in model.mtp.parameters())) == 2 * (d * d + d)


def test_compare_heads_measures_both_kinds_at_the_same_depth(monkeypatch):
    run = mtp.compare_heads(depth=2, steps=20)
    assert set(run.accuracy) == {"sequential", "parallel"}
    assert (2, 0.3, 20, 0) in mtp.RUNS and (2, 0.3, 20, 0, "parallel") in mtp.RUNS
    par = mtp.RUNS.get((2, 0.3, 20, 0, "parallel"), None).model
    assert all(m.parallel for m in par.mtp)
    acc = mtp.depth_accuracy(par, data.split()[1], par.cfg.seq_len)
    assert acc.agrees_with_main == run.accuracy["parallel"].agrees_with_main
    with pytest.raises(ValueError, match="parallel heads"):
        mtp.speculate(par, mtp.prompts(1, 4), new_tokens=2)
    with pytest.raises(ValueError, match="choose one of sequential, parallel"):
        mtp.train(1, heads="tree")
