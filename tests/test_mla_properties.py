"""Property tests for course.mla: absorption equals forming the keys for any shapes, the
cache holds exactly d_c + d_h^R numbers per token, and bad input raises ValueError with a
sentence."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import mla

FAST = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(t=st.integers(1, 6), s=st.integers(1, 9), d_h=st.integers(1, 8), d_c=st.integers(1, 8),
       seed=st.integers(0, 10**6))
def test_absorbed_scores_equal_scores_against_formed_keys(t, s, d_h, d_c, seed):
    g = torch.Generator().manual_seed(seed)
    q, w, c = (torch.randn(*shape, generator=g, dtype=torch.float64)
               for shape in ((t, d_h), (d_h, d_c), (s, d_c)))
    torch.testing.assert_close(mla.content_scores(q, w, c), mla.content_scores(q, w, c, False))


@FAST
@given(context=st.integers(1, 40), batch=st.integers(1, 3), d_c=st.integers(1, 6),
       half_rope=st.integers(1, 3))
def test_filled_cache_holds_latent_and_rope_key_per_token(context, batch, d_c, half_rope):
    cfg = SimpleNamespace(d_model=8, n_heads=2, q_lora_rank=0, kv_lora_rank=d_c,
                          qk_nope_head_dim=4, qk_rope_head_dim=2 * half_rope, v_head_dim=3)
    torch.manual_seed(0)
    cache = mla.filled_cache(mla.MLAttention(cfg), context, batch)
    assert len(cache) == context
    assert cache.nbytes == batch * context * (d_c + 2 * half_rope) * 4  # FP32


@FAST
@given(bad=st.sampled_from([0, -2, 1.5, float("nan"), None, "4", True]))
def test_bad_sizes_raise_sentences(bad):
    for call in (lambda: mla.MLACache(bad, 4), lambda: mla.ExpandedKVCache(2, bad, 4),
                 lambda: mla.filled_cache(mla.MLAttention(SimpleNamespace(
                     d_model=8, n_heads=2, q_lora_rank=0, kv_lora_rank=4, qk_nope_head_dim=4,
                     qk_rope_head_dim=2, v_head_dim=3)), bad),
                 lambda: mla.measure_decode(dict(d_model=8, n_heads=2, q_lora_rank=0,
                                                 kv_lora_rank=4, qk_nope_head_dim=4,
                                                 qk_rope_head_dim=2, v_head_dim=3,
                                                 contexts=(bad,)))):
        with pytest.raises(ValueError) as err:
            call()
        assert len(str(err.value).split()) >= 3
