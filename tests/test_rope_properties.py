"""Property tests for course.rope: scores depend on the offset only, for any positions and
vectors; bad input raises ValueError with a sentence."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import rope

FAST = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(m=st.integers(0, 2000), n=st.integers(0, 2000), shift=st.integers(0, 2000),
       half=st.integers(1, 16), seed=st.integers(0, 10**6))
def test_score_depends_on_the_offset_only(m, n, shift, half, seed):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2 * half, generator=g), torch.randn(2 * half, generator=g)
    assert rope.score(q, k, m + shift, n + shift) == pytest.approx(rope.score(q, k, m, n),
                                                                    abs=2e-3)
    # without RoPE, the positions do not matter at all
    assert rope.score(q, k, m, n, rope=False) == rope.score(q, k, 0, 0, rope=False)


@FAST
@given(bad=st.sampled_from([-1.5, float("nan"), None, "3", True, 2.5]))
def test_bad_positions_raise_sentences(bad):
    q = torch.ones(4)
    for call in (lambda: rope.score(q, q, bad, 0), lambda: rope.score(q, q, 0, bad),
                 lambda: rope.score_table(q, q, bad)):
        with pytest.raises(ValueError) as err:
            call()
        assert len(str(err.value).split()) >= 3


@pytest.mark.parametrize("q, k", [(torch.ones(3), torch.ones(3)), (torch.ones(4), torch.ones(6)),
                                  (torch.ones(2, 4), torch.ones(2, 4)), ("q", torch.ones(4))])
def test_bad_vectors_raise_sentences(q, k):
    with pytest.raises(ValueError, match="even width|same width"):
        rope.score(q, k, 1, 0)
    with pytest.raises(ValueError, match="square"):
        rope.by_offset(torch.ones(2, 3))
