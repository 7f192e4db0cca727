"""Tests of course.moe against independent references: a line-by-line transcription of
DeepSeek-V3's published Gate.forward semantics (FACTS.md 1.2), a dense softmax MoE, closed
forms for MaxVio and the balance loss, and the training runs' determinism."""

from types import SimpleNamespace

import ipywidgets as W
import numpy as np
import pytest
import torch

from course import moe
from course.configs import load_config
from course.presets import preset


def v3_gate(x, weight, bias, topk, n_groups, topk_groups, route_scale):
    """DeepSeek-V3 inference/model.py Gate.forward (sigmoid, with bias), as published."""
    scores = torch.sigmoid(x @ weight.T)  # 1
    original_scores = scores
    scores = scores + bias  # 2
    if n_groups > 1:  # 3-4
        scores = scores.view(x.size(0), n_groups, -1)
        group_scores = scores.topk(2, dim=-1)[0].sum(dim=-1)
        indices = group_scores.topk(topk_groups, dim=-1)[1]
        mask = scores.new_ones(x.size(0), n_groups, dtype=bool).scatter_(1, indices, False)
        scores = scores.masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1)
    indices = torch.topk(scores, topk, dim=-1)[1]  # 5
    weights = original_scores.gather(1, indices)  # 6
    weights /= weights.sum(dim=-1, keepdim=True)
    weights *= route_scale
    return weights, indices


def moe_cfg(**kw):
    base = dict(d_model=16, n_routed_experts=8, experts_per_token=2, moe_inter_dim=8,
                n_shared_experts=0, n_groups=1, topk_groups=1, score_func="softmax",
                route_scale=1.0, extra={})
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("E,k,groups,keep", [(16, 4, 4, 2), (32, 8, 8, 4), (8, 2, 1, 1)])
def test_deepseek_gate_matches_published_semantics(E, k, groups, keep):
    g = torch.Generator().manual_seed(E + k)
    x, w = torch.randn(64, 24, generator=g), torch.randn(E, 24, generator=g) * 0.3
    bias = torch.randn(E, generator=g) * 0.1
    ref_w, ref_i = v3_gate(x, w, bias, k, groups, keep, 2.5)
    got_w, got_i, _ = moe.route(x @ w.T, k, "sigmoid", bias, groups, keep, 2.5)
    assert torch.equal(got_i, ref_i)
    torch.testing.assert_close(got_w, ref_w)
    torch.testing.assert_close(got_w.sum(-1), torch.full((64,), 2.5))


def test_group_limited_routing_stays_inside_kept_groups():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 32, generator=g)
    _, idx, _ = moe.route(logits, 8, "sigmoid", None, n_groups=8, topk_groups=4)
    groups_used = torch.tensor([len(set((row // 4).tolist())) for row in idx])
    assert groups_used.max() <= 4
    # without the limit some tokens would spread over more groups
    _, free, _ = moe.route(logits, 8, "sigmoid")
    assert max(len(set((row // 4).tolist())) for row in free) > 4


def test_bias_changes_selection_not_weights():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(50, 8, generator=g)
    bias = torch.zeros(8)
    bias[3] = 10.0  # forces expert 3 into every token's top-2
    w, idx, scores = moe.route(logits, 2, "sigmoid", bias)
    assert (idx == 3).any(-1).all()
    chosen = scores.gather(1, idx)  # unbiased scores of the chosen experts
    torch.testing.assert_close(w, chosen / chosen.sum(-1, keepdim=True))
    # a bias equal for every expert changes nothing at all
    w0, i0, _ = moe.route(logits, 2, "sigmoid")
    w1, i1, _ = moe.route(logits, 2, "sigmoid", torch.full((8,), 0.7))
    assert torch.equal(i0, i1) and torch.equal(w0, w1)


def test_softmax_moe_matches_dense_reference():
    torch.manual_seed(0)
    layer = moe.MoE(moe_cfg(extra=dict(router_std=0.5)))
    x = torch.randn(3, 10, 16)
    flat = x.reshape(-1, 16)
    probs = (flat @ layer.weight.T).softmax(-1)  # (N, E)
    top = probs.topk(2, dim=-1)
    gates = torch.zeros_like(probs).scatter(1, top.indices, top.values)  # dense (N, E)
    every = torch.stack([e(flat) for e in layer.experts], 1)  # (N, E, d): all experts
    expected = (gates[..., None] * every).sum(1).view_as(x)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert int(layer.last_load.sum()) == 30 * 2
    torch.testing.assert_close(layer.last_load, torch.bincount(top.indices.flatten(), minlength=8))


def test_shared_expert_is_added_unweighted():
    torch.manual_seed(0)
    layer = moe.MoE(moe_cfg(n_shared_experts=1, score_func="sigmoid", route_scale=2.5))
    x = torch.randn(2, 5, 16)
    full, shared = layer(x), layer.shared
    layer.shared = None
    torch.testing.assert_close(full, layer(x) + shared(x))


def test_max_vio_closed_form():
    assert moe.max_vio([3, 1, 1, 1]) == pytest.approx(1.0)  # mean 1.5, max 3
    assert moe.max_vio([5, 5, 5, 5]) == 0.0
    assert moe.max_vio([8, 0, 0, 0]) == pytest.approx(3.0)  # all on one of 4: N - 1
    rows = moe.max_vio(np.array([[1, 1], [3, 1]]))
    np.testing.assert_allclose(rows, [0.0, 0.5])
    with pytest.raises(ValueError):
        moe.max_vio([0, 0])


def test_balance_loss_closed_form():
    E, k = 4, 1
    uniform = torch.full((8, E), 1 / E)
    idx = torch.arange(8).remainder(E)[:, None]
    assert moe.balance_loss(uniform, idx, "softmax").item() == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0, 0, 0]]).repeat(8, 1)
    zeros = torch.zeros(8, k, dtype=torch.long)
    assert moe.balance_loss(collapsed, zeros, "softmax").item() == pytest.approx(E)


def test_update_bias_sign_rule():
    layer = moe.MoE(moe_cfg(score_func="sigmoid"))
    layer.last_load = torch.tensor([10, 0, 2, 4, 4, 4, 4, 4])  # mean 4
    torch.testing.assert_close(moe.bias_update(torch.zeros(8), layer.last_load, 0.01),
                               0.01 * torch.tensor([-1.0, 1, 1, 0, 0, 0, 0, 0]))
    layer.update_bias(0.01)
    expected = 0.01 * torch.tensor([-1.0, 1, 1, 0, 0, 0, 0, 0])
    torch.testing.assert_close(layer.bias, expected)


def test_ep_ranks():
    view = moe.ep_ranks([4, 0, 1, 1, 1, 1, 1, 1], 4)  # ranks hold experts (0,1) (2,3) ...
    np.testing.assert_allclose(view.tokens_per_rank, [4, 2, 2, 2])
    assert view.utilisation == pytest.approx(2.5 / 4)
    assert view.slowdown == pytest.approx(4 / 2.5)
    with pytest.raises(ValueError):
        moe.ep_ranks(np.ones(8), 3)


def test_moe_in_the_course_model():
    from course.model import TinyLM
    from course.train import tiny_config

    torch.manual_seed(0)
    cfg = tiny_config(ffn="moe", balance="aux", n_routed_experts=4, experts_per_token=2)
    model = TinyLM(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, 8))
    out = model(x, x)
    assert len(model.moe_layers()) == cfg.n_layers
    assert all(int(m.last_load.sum()) == 2 * 8 * 2 for m in model.moe_layers())
    assert out.aux_loss is not None and out.aux_loss.item() > 0
    out.loss.backward()
    assert model.moe_layers()[0].weight.grad is not None  # the router learns


def test_training_is_deterministic_for_a_seed():
    kw = dict(steps=6, batch=4, n_experts=4, top_k=1, gamma=0.01)
    moe.RUNS.clear()
    a = moe.train("bias", seed=3, **kw)
    moe.RUNS.clear()
    b = moe.train("bias", seed=3, **kw)
    assert a is not b
    np.testing.assert_array_equal(a.load, b.load)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.load.shape == (6, 4) and a.loss.shape == (6,)
    np.testing.assert_allclose(a.load.sum(-1), 1.0)
    assert a.bias is not None and np.abs(a.bias[-1]).sum() > 0
    assert moe.train("bias", seed=3, **kw) is b  # cached by arguments


def test_realistic_preset_is_deepseek_v3():
    cfg, p = load_config("deepseek-v3"), preset("moe_layer", "realistic")
    assert (p["d_model"], p["n_experts"], p["top_k"]) == (cfg.hidden_size, cfg.n_routed_experts,
                                                         cfg.experts_per_token)
    assert (p["n_groups"], p["topk_groups"], p["moe_inter_dim"]) == (
        cfg.n_group, cfg.topk_group, cfg.moe_intermediate_size)


def test_time_layer_at_toy_size():
    t = moe.time_layer("toy", repeats=1)
    p = preset("moe_layer", "toy")
    assert t.tokens == p["tokens"] and t.load.shape == (p["n_experts"],)
    assert t.load.sum() == p["tokens"] * p["top_k"]
    assert t.layer_seconds > 0 and t.router_seconds > 0


def test_balancing_reduces_max_vio_on_the_toy():
    router = dict(score_func="sigmoid", top_k=2)  # the setting of notebook 09
    none = moe.train("none", **router)
    aux = moe.train("aux", alpha=0.1, **router)
    bias = moe.train("bias", gamma=0.003, **router)
    assert aux.val_max_vio < none.val_max_vio
    assert bias.val_max_vio < none.val_max_vio
    assert bias.max_vio[-50:].mean() < none.max_vio[-50:].mean()


def test_word_router_floor():
    assert moe.word_router_floor([1, 1, 1, 1], 4, 1) == 0.0
    assert moe.word_router_floor([2, 1, 1], 16, 1) == pytest.approx(16 * 0.5 - 1)
    assert moe.word_router_floor([2, 1, 1], 4, 2) == 0.0


def test_time_layer_falls_back_to_toy_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the realistic layer would really run")
    t = moe.time_layer("realistic", repeats=1)
    assert t.device == "cpu" and t.tokens == preset("moe_layer", "toy")["tokens"]


def test_moe_layer_in_bf16_like_the_gpu_path():
    """time_layer's CUDA path builds the layer in BF16; the same code at small shapes."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        layer = moe.MoE(moe_cfg(score_func="sigmoid", n_groups=4, topk_groups=2,
                                experts_per_token=4, n_shared_experts=1, route_scale=2.5))
    finally:
        torch.set_default_dtype(default)
    y = layer(torch.randn(3, 7, 16, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and y.shape == (3, 7, 16)
    assert layer.bias.dtype == torch.float32  # V3 keeps the routing bias in FP32
    assert int(layer.last_load.sum()) == 21 * 4


def test_training_sizes_are_the_same_under_both_presets():
    # train_lm is CPU-only, and notebooks 08-09 describe the toy's behaviour
    assert preset("moe", "toy") == preset("moe", "realistic")


def test_training_reports_progress_once_per_step_and_not_when_cached():
    kw = dict(steps=5, batch=4, n_experts=4, top_k=1, gamma=0.01)
    moe.RUNS.clear()
    calls = []
    moe.train("bias", seed=1, progress=lambda *a: calls.append(a), **kw)
    assert calls == [(i, 5, "training the MoE with bias γ = 0.01") for i in range(6)]
    calls.clear()
    moe.train("bias", seed=1, progress=lambda *a: calls.append(a), **kw)
    assert calls == []  # cached: nothing to report


@pytest.fixture
def short_moe(monkeypatch):
    """The MoE preset with 30-step runs, so widget tests train in about a second."""
    from course import presets

    toy = dict(presets.PRESETS["moe"]["toy"], steps=30)
    monkeypatch.setitem(presets.PRESETS["moe"], "toy", toy)
    monkeypatch.setenv("COURSE_SIZE", "toy")


def test_balancing_widget_disables_the_knob_that_cannot_act(short_moe):
    from course.widgets.moe import balancing_explorer

    live = balancing_explorer()
    c = live.controls
    assert live.values()["method"] == "bias" and live.error is None
    hint = lambda: " ".join(w.value for w in live.widget.children if isinstance(w, W.HTML))
    assert c["alpha"].disabled and not c["gamma"].disabled and "pick aux" in hint()
    assert [t.name for t in live.fig.data] == ["none", "bias"] and live.fig.data[1].visible
    live.apply(method="aux")
    assert not c["alpha"].disabled and c["gamma"].disabled and "pick bias" in hint()
    run = live.result["run"]
    live.apply(gamma=0.1)  # γ cannot act with aux: the same (cached) run
    assert live.result["run"] is run
    live.apply(method="sequence aux")  # the same α, V3's sequence-wise loss: another run
    assert not c["alpha"].disabled and live.result["run"] is not run
    assert live.result["run"].settings["aux_scope"] == "sequence"
    assert "aux_scope" not in run.settings  # the batch-wise default
    live.apply(method="none")
    assert c["alpha"].disabled and c["gamma"].disabled
    assert live.fig.data[1].visible is False  # not the same curve twice, labelled "none"
    assert "no balancing" in live.summary.value and " vs " not in live.summary.value


def test_collapse_widget_trains_in_the_background_when_the_browser_moves(short_moe):
    from course.widgets.moe import collapse_explorer

    live = collapse_explorer()
    seen = []
    live.progress_text.observe(lambda ch: seen.append(ch["new"]), names="value")
    live.controls["top_k"].set_state({"value": 2})  # as the browser sends a release
    assert live.busy
    live.wait()
    assert live.error is None and live.result["run"].settings["top_k"] == 2
    assert "training the MoE with no balancing: step 30/30" in seen
    assert live.fig.data[0].z.shape == (16, 30) and live.progress_box.layout.display == "none"


def test_a_shorter_run_is_cut_exactly_from_a_longer_one():
    kw = dict(batch=4, n_experts=4, top_k=1, gamma=0.01)
    moe.RUNS.clear()
    long = moe.train("bias", steps=2 * moe.CHECKPOINT_EVERY, seed=2, **kw)
    cut = moe.train("bias", steps=moe.CHECKPOINT_EVERY, seed=2, **kw)  # no training
    assert cut.model is None and len(cut.loss) == moe.CHECKPOINT_EVERY
    moe.RUNS.clear()
    short = moe.train("bias", steps=moe.CHECKPOINT_EVERY, seed=2, **kw)  # trained
    assert short.model is not None and long.model is not None
    for name in ("load", "loss", "lm_loss", "layer_load", "bias", "val_load", "max_vio"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(short, name), err_msg=name)
    assert cut.val_loss == short.val_loss and cut.val_max_vio == short.val_max_vio
    with pytest.raises(ValueError, match="no checkpoint at step 7"):
        long.truncated(7)


# ------------------------------------------------------------------ capacity and dropping


def test_expert_capacity_is_the_gshard_switch_formula():
    assert moe.expert_capacity(512, 16, 1, 1.25) == 40  # 1.25 * 512 / 16, no rounding up
    assert moe.expert_capacity(512, 16, 2, 1.0) == 64  # k slots per token
    assert moe.expert_capacity(100, 16, 1, 1.0) == 7  # 6.25 rounded up
    assert moe.expert_capacity(100, 16, 1, 0.0) == 0
    with pytest.raises(ValueError, match="capacity factor"):
        moe.expert_capacity(100, 16, 1, -1.0)


def test_capacity_mask_on_a_hand_built_routing():
    # 5 tokens, top-2 over 3 experts. First choices go first: expert 0 receives tokens
    # 0, 1, 2 (first choices) and then token 3's second choice; capacity 2 keeps 0 and 1.
    idx = torch.tensor([[0, 1], [0, 2], [0, 1], [1, 0], [2, 1]])
    keep = moe.capacity_mask(idx, 3, capacity=2)
    expected = torch.tensor([[True, True], [True, True], [False, False], [True, False],
                             [True, False]])
    # expert 1: first choices of token 3 -> kept; second choices of 0, 2, 4 -> 0 kept, 2, 4 not
    assert torch.equal(keep, expected)
    assert int((~keep).sum()) == int((moe.expert_counts(idx, 3) - 2).clamp(min=0).sum())


def test_moe_layer_drops_exactly_the_overflow_and_keeps_the_rest():
    torch.manual_seed(0)
    layer = moe.MoE(moe_cfg(n_routed_experts=4, experts_per_token=1,
                            extra=dict(router_std=1.0)))
    x = torch.randn(64, 16)
    full = layer(x)
    _, idx, _ = layer.gate(x)
    counts = moe.expert_counts(idx, 4)
    layer.capacity_factor = 1.0  # capacity 16 each
    capped = layer(x)
    keep = moe.capacity_mask(idx, 4, 16)[:, 0]
    assert layer.last_dropped == int((counts - 16).clamp(min=0).sum()) > 0
    torch.testing.assert_close(capped[keep], full[keep])  # kept tokens: unchanged
    assert torch.all(capped[~keep] == 0)  # dropped: no routed output, residual only
    layer.capacity_factor = float(counts.max()) / 16  # exactly 1 + MaxVio
    torch.testing.assert_close(layer(x), full)
    assert layer.last_dropped == 0


def test_capacity_sweep_drops_nothing_at_a_large_factor_and_everything_at_zero():
    run = moe.train("none", steps=30)
    s = moe.capacity_sweep(run, [0.0, 1.0, s_big := 100.0])
    assert s.dropped[0] == 1.0 and s.dropped[2] == 0.0
    assert s.val_loss[2] == pytest.approx(s.val_loss_no_drop, abs=1e-6)
    assert s.val_loss[0] == pytest.approx(s.val_loss_all_dropped, abs=1e-6)
    assert s.no_drop_factor > 1.0 and s_big > s.no_drop_factor
    # just below the no-drop factor some batch overflows; at it nothing does
    at = moe.capacity_sweep(run, [s.no_drop_factor, s.no_drop_factor * 0.98])
    assert at.dropped[0] == 0.0 and at.dropped[1] > 0.0
    assert run.model.moe_layers()[0].capacity_factor is None  # restored


def test_capacity_sweep_needs_a_model():
    run = moe.train("none", steps=60)
    with pytest.raises(ValueError, match="kept no model"):
        moe.capacity_sweep(run.truncated(30), [1.0])


# ----------------------------------------------------- sequence-wise loss, specialisation


def test_sequence_balance_loss_is_the_per_sequence_loss_averaged():
    g = torch.Generator().manual_seed(3)
    B, T, E, k = 3, 10, 8, 2
    scores = torch.rand(B * T, E, generator=g)
    idx = scores.topk(k, -1).indices
    got = moe.sequence_balance_loss(scores, idx, "sigmoid", T)
    # V3 eq. 17-20 written out per sequence: f_i = N/(K T) * count, P_i = mean s'_i
    per_seq = []
    for b in range(B):
        s, i = scores[b * T:(b + 1) * T], idx[b * T:(b + 1) * T]
        f = torch.tensor([(i == e).sum().item() * E / (k * T) for e in range(E)])
        p = (s / s.sum(-1, keepdim=True)).mean(0)
        per_seq.append((f * p).sum())
    torch.testing.assert_close(got, torch.stack(per_seq).mean())
    # one sequence: the batch-wise loss
    torch.testing.assert_close(moe.sequence_balance_loss(scores, idx, "sigmoid", B * T),
                               moe.balance_loss(scores, idx, "sigmoid"))


def test_batch_balanced_can_be_sequence_collapsed():
    # two sequences, each entirely on its own expert (a "domain" each): even over the batch
    scores = torch.eye(2)[[0] * 4 + [1] * 4]
    idx = scores.argmax(-1, keepdim=True)
    assert moe.balance_loss(scores, idx, "softmax").item() == pytest.approx(1.0)
    assert moe.sequence_balance_loss(scores, idx, "softmax", 4).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="sequences of 3"):
        moe.sequence_balance_loss(scores, idx, "softmax", 3)


def test_moe_layer_uses_the_sequence_wise_loss_when_asked():
    torch.manual_seed(0)
    layer = moe.MoE(moe_cfg(score_func="sigmoid", extra=dict(aux_scope="sequence")))
    x = torch.randn(4, 6, 16)
    layer(x)
    _, idx, scores = layer.gate(x.reshape(-1, 16))
    torch.testing.assert_close(layer.aux_loss,
                               moe.sequence_balance_loss(scores, idx, "sigmoid", 6))
    with pytest.raises(ValueError, match="aux_scope"):
        moe.MoE(moe_cfg(extra=dict(aux_scope="token")))


def test_mutual_information_closed_forms():
    assert moe.mutual_information(np.ones((4, 8))) == pytest.approx(0.0, abs=1e-12)
    assert moe.mutual_information(np.eye(4) * 7) == pytest.approx(2.0)  # log2 4
    # kind determines one of 2 experts; experts shared by 2 kinds each: I = H(expert) = 1
    assert moe.mutual_information(np.array([[5, 0], [5, 0], [0, 5], [0, 5]])) == \
        pytest.approx(1.0)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 20, size=(5, 6)).astype(float)
    p = t / t.sum()
    h = lambda q: -(q[q > 0] * np.log2(q[q > 0])).sum()  # noqa: E731
    assert moe.mutual_information(t) == pytest.approx(h(p.sum(1)) + h(p.sum(0)) - h(p))
    with pytest.raises(ValueError):
        moe.mutual_information(np.zeros((2, 2)))


def test_kind_counts_match_the_held_out_tokens():
    from course import data

    run = moe.train("none", steps=30, score_func="sigmoid", top_k=2)
    counts = run.val_kinds[0]
    val, seq = data.split()[1], preset("tiny_lm")["seq_len"]
    n = min(64, len(val) // seq)
    kinds = moe._kind_of_token()[val[: n * seq]]
    per_kind = np.bincount(kinds.numpy(), minlength=len(moe.kinds())) * 2  # k = 2 slots
    np.testing.assert_array_equal(counts.sum(1), per_kind)
    np.testing.assert_allclose(counts.sum(0) / counts.sum(), run.val_load[0])
    assert moe.kinds()[-2:] == ("end of sentence", "function word")
