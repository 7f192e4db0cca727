"""Property tests for course.kvcache: the calculators obey their definitions for any model
and format, and bad input raises ValueError with a sentence (as tests/test_properties.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import configs, kvcache
from course.params import param_count

FAST = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
ODD = [0, -1, -0.5, float("nan"), float("inf"), True, None, "2", [], 1e30]
models = st.sampled_from(configs.SHIPPED)
formats = st.sampled_from([0.75, 1, 2, 4])


def raises_sentence(fn, *args, **kw) -> None:
    with pytest.raises(ValueError) as err:
        fn(*args, **kw)
    assert len(str(err.value).split()) >= 3, err.value


@FAST
@given(model=models, weight_bytes=formats, kv_bytes=formats, mha=st.booleans())
def test_tokens_to_outweigh_is_the_first_token_count_past_the_weights(model, weight_bytes,
                                                                       kv_bytes, mha):
    n = kvcache.tokens_to_outweigh(model, weight_bytes, kv_bytes, mha=mha)
    per = (kvcache.mha_bytes_per_token(model, kv_bytes) if mha
           else kvcache.kv_bytes_per_token(model, kv_bytes))
    weights = param_count(model).total * weight_bytes
    assert n * per > weights >= (n - 1) * per


@FAST
@given(value=st.sampled_from(ODD))
def test_tokens_to_outweigh_rejects_odd_formats(value):
    if value == 1e30:  # absurd but a number: allowed, and the answer stays finite
        assert math.isfinite(kvcache.tokens_to_outweigh("llama-3-8b", value))
        return
    raises_sentence(kvcache.tokens_to_outweigh, "llama-3-8b", value)


@FAST
@given(model=models, gpus=st.integers(8, 64), mha=st.booleans())
def test_more_gpus_and_a_smaller_cache_format_fit_more_tokens(model, gpus, mha):
    kw = dict(gpu_gb=141, weight_bytes=1, mha=mha)
    few = kvcache.tokens_that_fit(model, n_gpus=gpus, **kw)
    assert kvcache.tokens_that_fit(model, n_gpus=gpus + 8, **kw) > few
    fp8 = kvcache.tokens_that_fit(model, n_gpus=gpus, kv_dtype_bytes=1, **kw)
    assert fp8 in (2 * few, 2 * few + 1)  # one byte per number instead of two


@FAST
@given(model=models, context=st.integers(1, 10**6), path=st.sampled_from(kvcache.DECODE_PATHS))
def test_attention_flops_grow_linearly_with_the_context(model, context, path):
    one = kvcache.attention_flops_per_token(model, context, path)
    assert kvcache.attention_flops_per_token(model, 3 * context, path) == pytest.approx(3 * one)
    assert kvcache.attention_flops_per_token(model, 0, path) == 0


@FAST
@given(rows=st.integers(1, 12), cols=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_rank_error_falls_from_one_to_zero(rows, cols, seed):
    m = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    err = kvcache.rank_error(m, np.arange(cols + 2))
    assert err[0] == pytest.approx(1.0) and err[min(rows, cols)] < 1e-6
    assert np.all(np.diff(err) <= 1e-12)


@FAST
@given(value=st.sampled_from([-1, -0.5, 2.5, float("nan"), float("inf"), True, None, "2", 1e30]))
def test_rank_error_and_cache_gb_reject_odd_input(value):
    raises_sentence(kvcache.rank_error, torch.ones(3, 2), [value])
    if value != 1e30 and value != 2.5:  # a huge or fractional context is still a length
        raises_sentence(kvcache.cache_gb, "deepseek-v3", [value])
