"""course.attention against torch's own attention and by-hand formulas."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course.attention import (
    Block,
    CausalSelfAttention,
    KVCache,
    RMSNorm,
    SwiGLU,
    apply_rope,
    attend,
    causal_mask,
    rope_cos_sin,
)

torch.set_default_dtype(torch.float32)


def _attn(dim=32, heads=4, rope=False, seed=0):
    torch.manual_seed(seed)
    return CausalSelfAttention(dim, heads, rope=rope).eval()


def test_attend_matches_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    out, w = attend(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert w.shape == (2, 3, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7))


def test_attention_module_matches_sdpa_pipeline():
    m, x = _attn(), torch.randn(2, 9, 32, generator=torch.Generator().manual_seed(1))
    B, T, D, H = 2, 9, 32, 4
    split = lambda t: t.view(B, T, H, D // H).transpose(1, 2)
    ref = F.scaled_dot_product_attention(split(m.wq(x)), split(m.wk(x)), split(m.wv(x)),
                                         is_causal=True)
    ref = m.wo(ref.transpose(1, 2).reshape(B, T, D))
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


def test_attention_module_matches_nn_multihead_attention_with_copied_weights():
    m, x = _attn(dim=48, heads=6), torch.randn(3, 11, 48,
                                               generator=torch.Generator().manual_seed(2))
    ref = nn.MultiheadAttention(48, 6, bias=False, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([m.wq.weight, m.wk.weight, m.wv.weight]))
        ref.out_proj.weight.copy_(m.wo.weight)
    mask = ~causal_mask(11)  # nn.MultiheadAttention: True means "may NOT attend"
    expected, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


def test_causal_mask_shape_and_values():
    mask = causal_mask(3, offset=2)
    assert mask.shape == (3, 5)
    assert mask.tolist() == [[True, True, True, False, False],
                             [True, True, True, True, False],
                             [True, True, True, True, True]]


@pytest.mark.parametrize("rope", [False, True])
def test_changing_a_later_token_leaves_earlier_outputs_unchanged(rope):
    m = _attn(rope=rope)
    x = torch.randn(1, 10, 32, generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[0, 6:] += torch.randn(4, 32)
    a, b = m(x), m(y)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3  # the change does reach later tokens


def test_weights_put_zero_on_the_future():
    m = _attn()
    m.store_weights = True
    m(torch.randn(1, 6, 32))
    w = m.last_weights[0]  # (H, T, T)
    future = ~causal_mask(6)
    assert torch.all(w[:, future] == 0)
    assert torch.all(w[:, ~future] > 0)


def test_rmsnorm_by_hand():
    norm = RMSNorm(4, eps=0.0)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    x = torch.tensor([[3.0, -4.0, 0.0, 0.0]])
    rms = math.sqrt((9 + 16) / 4)
    expected = torch.tensor([[3 / rms, -8 / rms, 0.0, 0.0]])
    torch.testing.assert_close(norm(x), expected)
    if hasattr(F, "rms_norm"):
        torch.testing.assert_close(norm(x), F.rms_norm(x, (4,), norm.weight, eps=0.0))


def test_swiglu_by_hand():
    torch.manual_seed(0)
    mlp = SwiGLU(3, 5)
    x = torch.randn(2, 3)
    w1, w2, w3 = mlp.w1.weight, mlp.w2.weight, mlp.w3.weight
    gate = x @ w1.T
    expected = ((gate * torch.sigmoid(gate)) * (x @ w3.T)) @ w2.T
    torch.testing.assert_close(mlp(x), expected)


def test_rope_preserves_norm_and_relative_position():
    cos, sin = rope_cos_sin(torch.arange(12), 8)
    q, k = torch.randn(8), torch.randn(8)
    rq, rk = apply_rope(q.expand(12, 8), cos, sin), apply_rope(k.expand(12, 8), cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(12))
    # the score depends on the distance only: (2, 5) and (6, 9) are both 3 apart
    torch.testing.assert_close(rq[5] @ rk[2], rq[9] @ rk[6], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rope", [False, True])
def test_kv_cache_decoding_matches_full_pass(rope):
    m = _attn(rope=rope)
    x = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(4))
    cache = KVCache()
    steps = [m(x[:, :5], cache)] + [m(x[:, t:t + 1], cache) for t in range(5, 8)]
    torch.testing.assert_close(torch.cat(steps, dim=1), m(x), rtol=1e-5, atol=1e-5)
    assert cache.nbytes == 2 * 8 * 32 * 4


def test_block_is_pre_norm_residual_and_skips():
    torch.manual_seed(0)
    block = Block(16, CausalSelfAttention(16, 2), SwiGLU(16, 24)).eval()
    x = torch.randn(2, 5, 16)
    y, a, m = block(x)
    torch.testing.assert_close(a, block.attn(block.attn_norm(x)))
    torch.testing.assert_close(m, block.ffn(block.ffn_norm(x + a)))
    torch.testing.assert_close(y, x + a + m)
    y0, a0, m0 = block(x, skip_attn=True, skip_ffn=True)
    torch.testing.assert_close(y0, x)
    assert a0.abs().max() == 0 and m0.abs().max() == 0


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="not divisible"):
        CausalSelfAttention(30, 4)
