"""course.expert_grads: gradients counted on real .grad tensors (notebook 03)."""

import pytest

from course.expert_grads import experts_with_gradient


def test_one_token_gives_gradients_to_its_top_k_experts_only():
    r = experts_with_gradient(1, n_experts=64, top_k=4)
    assert r["experts_with_grad"] == r["experts_routed"] == 4


def test_a_batch_reaches_every_expert():
    r = experts_with_gradient(256, n_experts=64, top_k=4)
    # uniform routing would leave 64 (1 - 4/64)^256 ~ 4e-6 experts idle
    assert r["experts_with_grad"] == r["experts_routed"] == 64


@pytest.mark.parametrize("tokens", [1, 4, 256])
def test_the_gradient_buffer_is_full_size_whatever_the_tokens(tokens):
    r = experts_with_gradient(tokens, d=32, n_experts=64, top_k=4, inter=16, n_shared=1)
    params = 32 * 64 + 3 * 64 * 32 * 16 + 3 * 32 * 16  # router, routed, shared (FP32)
    assert r["grad_bytes"] == r["param_bytes"] == 4 * params


def test_bad_input_gets_a_sentence():
    with pytest.raises(ValueError, match="top_k"):
        experts_with_gradient(4, n_experts=4, top_k=8)
    with pytest.raises(ValueError, match="tokens"):
        experts_with_gradient(0)
