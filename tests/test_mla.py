"""MLA: every decode path equals a full forward; the cache holds only latent + RoPE key."""

from types import SimpleNamespace

import pytest
import torch

from course.configs import load_config
from course.mla import PATHS, MLACache, MLAttention, filled_cache, time_decode_step
from course.model import TinyLM, generate
from course.train import tiny_config


def small_cfg(**kw):
    base = dict(d_model=32, n_heads=4, q_lora_rank=0, kv_lora_rank=8, qk_nope_head_dim=8,
                qk_rope_head_dim=4, v_head_dim=6)
    base.update(kw)
    return SimpleNamespace(**base)


def decode_all(layer, x, prefill=3):
    """Prefill `prefill` tokens, then feed the rest one at a time through a cache."""
    cache = layer.new_cache()
    outs = [layer(x[:, :prefill], cache)]
    outs += [layer(x[:, t:t + 1], cache) for t in range(prefill, x.shape[1])]
    return torch.cat(outs, dim=1), cache


@pytest.mark.parametrize("q_lora_rank", [0, 12])
@pytest.mark.parametrize("path", PATHS)
def test_decode_paths_equal_full_forward(path, q_lora_rank):
    torch.manual_seed(0)
    layer = MLAttention(small_cfg(q_lora_rank=q_lora_rank)).double()
    x = torch.randn(2, 11, 32, dtype=torch.float64)
    full = layer(x)  # path "naive", no cache: plain causal attention over expanded K, V
    layer.path = path
    got, _ = decode_all(layer, x)
    torch.testing.assert_close(got, full, rtol=0, atol=1e-5)
    torch.testing.assert_close(layer(x), full, rtol=0, atol=1e-5)  # full forward per path


def test_absorbed_path_in_float32_too():
    torch.manual_seed(1)
    layer = MLAttention(small_cfg(), path="absorbed")
    x = torch.randn(1, 9, 32)
    got, _ = decode_all(layer, x)
    layer.path = "naive"
    torch.testing.assert_close(got, layer(x), rtol=0, atol=1e-5)


def test_cache_holds_only_latent_and_one_rope_key():
    layer = MLAttention(small_cfg()).double()
    _, cache = decode_all(layer, torch.randn(3, 10, 32, dtype=torch.float64))
    assert isinstance(cache, MLACache) and len(cache) == 10
    assert set(cache.buffers) == {"latent", "k_rope"}
    # (d_c + d_h^R) elements per token, whatever the number of heads: 3 * 10 * (8 + 4) * 8 B
    assert cache.nbytes == 3 * 10 * (8 + 4) * 8
    layer.path = "mha"
    _, kv = decode_all(layer, torch.randn(3, 10, 32, dtype=torch.float64))
    assert kv.nbytes == 3 * 10 * 4 * ((8 + 4) + 6) * 8  # n_h (d_h + d_h^R + d_v) per token


def test_rope_key_is_shared_across_heads():
    """W^KR makes one d_h^R key per token (not n_h of them) and every head reads it."""
    layer = MLAttention(small_cfg()).double()
    assert layer.wkv_a.weight.shape == (8 + 4, 32)
    x = torch.randn(1, 5, 32, dtype=torch.float64)
    _, _, latent, k_rope = layer._project(x, 0)
    k, _ = layer._expand(latent, k_rope)  # (B, H, S, d_nope + d_rope)
    for h in range(1, 4):
        assert torch.equal(k[:, h, :, 8:], k[:, 0, :, 8:])


def test_cache_grows_linearly_and_keeps_capacity_spare():
    layer = MLAttention(small_cfg())
    sizes = [filled_cache(layer, n).nbytes for n in (10, 20, 40)]
    assert sizes == [10 * 12 * 4, 20 * 12 * 4, 40 * 12 * 4]


def test_bad_inputs_raise_sentences():
    with pytest.raises(ValueError, match="even"):
        MLAttention(small_cfg(qk_rope_head_dim=3))
    layer = MLAttention(small_cfg())
    layer.path = "sideways"
    with pytest.raises(ValueError, match="path must be"):
        layer(torch.randn(1, 2, 32))
    layer.path = "mha"
    with pytest.raises(ValueError, match="another decode path"):
        layer(torch.randn(1, 2, 32), MLACache(8, 4))
    with pytest.raises(ValueError, match="context must be a whole number from 1"):
        time_decode_step(layer, "naive", context=0)
    with pytest.raises(ValueError, match="repeats must be"):
        time_decode_step(layer, "naive", context=4, repeats=0)


def test_time_decode_step_times_one_decode_step_with_the_course_timer(monkeypatch):
    """The timed function is one decode step of the chosen path through a filled cache,
    handed to course.timing (the package's one timing helper)."""
    from course import timing

    seen = []

    def fake_best(fn, repeats, **kw):
        seen.append((repeats, kw, fn(), fn()))
        return 0.25

    monkeypatch.setattr(timing, "best_seconds", fake_best)
    torch.manual_seed(0)
    layer = MLAttention(small_cfg()).double()
    for path in PATHS:
        assert time_decode_step(layer, path, context=9, batch=2, repeats=3,
                                dtype=torch.float64) == 0.25
        assert layer.path == "naive"  # restored
    for repeats, kw, first, second in seen:
        assert repeats == 3 and kw["device"].type == "cpu"
        assert first.shape == (2, 1, 32) and not torch.equal(first, second)  # cache grew
    # the same seed makes the same cache and token, and every path computes the same step
    for _, _, first, _ in seen[1:]:
        torch.testing.assert_close(first, seen[0][2], rtol=0, atol=1e-10)


@pytest.mark.parametrize("path", ["naive", "absorbed"])
def test_model_with_mla_generates_same_tokens_with_and_without_cache(path):
    torch.manual_seed(0)
    cfg = tiny_config(attention="mla", d_model=32, n_layers=2, n_heads=4)
    model = TinyLM(cfg).double()
    for block in model.blocks:
        block.attn.path = path
    idx = torch.tensor([[0, 5, 9, 17]])
    with_cache = generate(model, idx, 12, use_cache=True)
    without = generate(model, idx, 12, use_cache=False)
    assert torch.equal(with_cache, without)
    cache = model.new_cache()
    model(idx, cache=cache)
    assert all(isinstance(c, MLACache) and len(c) == 4 for c in cache)


def test_mla_switch_builds_the_paper_projections():
    model = TinyLM(tiny_config(attention="mla", q_lora_rank=16))
    attn = model.blocks[0].attn
    cfg = model.cfg
    assert isinstance(attn, MLAttention)
    assert attn.wkv_b.weight.shape == (
        cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank)
    assert attn.wq_b.weight.shape == (
        cfg.n_heads * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim), 16)


def test_realistic_preset_layer_has_deepseek_v3_attention_params():
    """The CUDA path builds V3's MLA layer; on the meta device it costs no memory here."""
    from course.mla import decode_layer
    from course.presets import preset

    layer = decode_layer(preset("mla_decode", "realistic"), device="meta")
    v3 = load_config("deepseek-v3")  # the shapes of DeepSeek-V3's config.json
    H, d, qk = v3.num_heads, v3.hidden_size, v3.qk_nope_head_dim + v3.qk_rope_head_dim
    expected = (d * v3.q_lora_rank + v3.q_lora_rank + v3.q_lora_rank * H * qk  # wq_a, norm, wq_b
                + d * (v3.kv_lora_rank + v3.qk_rope_head_dim) + v3.kv_lora_rank  # wkv_a, norm
                + v3.kv_lora_rank * H * (v3.qk_nope_head_dim + v3.v_head_dim)  # wkv_b
                + H * v3.v_head_dim * d)  # wo
    assert sum(p.numel() for p in layer.parameters()) == expected == 187_107_328
    assert layer.new_cache().widths == {"latent": 512, "k_rope": 64}


def test_measure_decode_small_shapes():
    from course.mla import measure_decode

    sizes = dict(d_model=32, n_heads=2, q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=8,
                 qk_rope_head_dim=4, v_head_dim=8, contexts=(8, 16), batch=2, repeats=1)
    r = measure_decode(sizes)
    assert r["contexts"] == (8, 16) and r["batch"] == 2
    assert set(r["seconds"]) == set(PATHS)
    assert all(len(v) == 2 and min(v) > 0 for v in r["seconds"].values())


def _rotation(p: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """RoPE's rotation written out in float64: pair (i, i + d/2) turned by p * base^(-2i/d)."""
    h = d // 2
    angle = p * base ** (-torch.arange(h, dtype=torch.float64) * 2 / d)
    r = torch.zeros(d, d, dtype=torch.float64)
    idx = torch.arange(h)
    r[idx, idx] = r[idx + h, idx + h] = angle.cos()
    r[idx, idx + h], r[idx + h, idx] = -angle.sin(), angle.sin()
    return r


def test_coupled_rope_needs_a_different_fold_for_every_position_pair():
    from course.rope import rope_absorption

    torch.manual_seed(0)
    layer = MLAttention(small_cfg()).double()
    x = torch.randn(1, 7, 32, dtype=torch.float64)
    r = rope_absorption(layer, x, head=2)
    w_uk = layer.wkv_b.weight.view(4, 8 + 6, 8)[2, :8]  # the head's W_UK, (d_nope, d_c)
    for m, n in [(0, 0), (3, 1), (6, 6), (6, 0), (2, 5)]:
        # R(m)^T R(n) W_UK = R(n - m) W_UK: relative, but a new matrix for every offset
        expected = _rotation(m, 8).T @ _rotation(n, 8) @ w_uk
        torch.testing.assert_close(r.fold[m, n], expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(r.fold[m, n], _rotation(n - m, 8) @ w_uk, rtol=0, atol=1e-6)
    assert r.coupled_fold_error < 1e-12  # the fold is right...
    last = r.fold[6, :7].flatten(1)  # ...and the newest query needs 7 distinct matrices
    assert all((last[i] - last[j]).abs().max() > 1e-3 for i in range(7) for j in range(i))
    assert r.fold_distance[3, 3] < 1e-6 and r.fold_distance[3, 0] > 0.1
    assert r.by_offset_spread < 1e-6 and r.coupled_fixed_error > 0.1  # one W_UK is wrong


def test_decoupled_rope_key_lets_absorption_match_the_full_scores():
    from course.rope import rope_absorption

    torch.manual_seed(1)
    for q_lora_rank in (0, 12):
        layer = MLAttention(small_cfg(q_lora_rank=q_lora_rank)).double()
        x = torch.randn(2, 9, 32, dtype=torch.float64)
        r = rope_absorption(layer, x, head=0)
        assert r.decoupled_error < 1e-12 * max(1.0, r.score_scale) and r.score_scale > 0.1


def test_rope_absorption_rejects_bad_input():
    from course.rope import rope_absorption

    layer = MLAttention(small_cfg())
    with pytest.raises(ValueError, match="head must be a whole number from 0 to 3"):
        rope_absorption(layer, torch.randn(1, 4, 32), head=4)
    with pytest.raises(ValueError, match="x must be"):
        rope_absorption(layer, torch.randn(4, 32))
    with pytest.raises(ValueError, match="even qk_nope_head_dim"):
        rope_absorption(MLAttention(small_cfg(qk_nope_head_dim=7)), torch.randn(1, 4, 32))


def test_content_scores_absorbed_equals_forming_the_keys():
    from course.exercises import get
    from course.mla import content_scores

    g = torch.Generator().manual_seed(3)
    q, w, c = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((5, 8), (8, 6),
                                                                           (7, 6)))
    keys = torch.stack([w @ c_s for c_s in c])  # k_s = W_UK c_s, one key per cached token
    expected = torch.tensor([[float(q_t @ k_s) for k_s in keys] for q_t in q],
                            dtype=torch.float64)
    for absorbed in (True, False):
        torch.testing.assert_close(content_scores(q, w, c, absorbed), expected)
    ex = get("11.absorbed_scores")
    assert ex.oracle is not None
    for args in ex.cases():
        assert not torch.allclose(ex.wrong(*args), ex.oracle(*args))
    with pytest.raises(ValueError, match="do not chain"):
        content_scores(q, w.T, c)
    with pytest.raises(ValueError, match="2-D tensor"):
        content_scores(q[0], w, c)


def test_every_function_exercise_of_notebook_11_has_an_oracle():
    from course.exercises import all_exercises

    missing = [n for n, ex in all_exercises().items()
               if ex.notebook == "11" and ex.reference is not None and ex.oracle is None]
    assert not missing, missing


def test_latent_ranks_bound_before_rope_and_grow_after():
    from course.rope import latent_ranks

    torch.manual_seed(4)
    layer = MLAttention(small_cfg())  # d_c 8, 4 heads of d_nope 8 and d_v 6, d_rope 4
    r = latent_ranks(layer, torch.randn(2, 30, 32))
    assert (r.tokens, r.width, r.d_c, r.d_rope) == (60, 4 * (8 + 6), 8, 4)
    assert r.before_rope == 8  # = d_c: every head's K and V live in the latent's span
    assert r.with_rope_key == 8 + 4  # + the one shared RoPE key: what the cache holds
    # rotated content keys fill all 4 x 8 key dimensions; V still adds its d_c
    assert r.content_rotated == 4 * 8 + 8
    assert layer.wkv_b.weight.dtype == torch.float32  # the layer itself is left as it was
    short = latent_ranks(layer, torch.randn(1, 5, 32))
    assert short.before_rope == short.content_rotated == 5  # 5 tokens: rank <= 5 anyway
    with pytest.raises(ValueError, match="x must be"):
        latent_ranks(layer, torch.randn(1, 0, 32))
    with pytest.raises(ValueError, match="MLA layer"):
        latent_ranks(torch.nn.Linear(2, 2), torch.randn(1, 3, 2))
