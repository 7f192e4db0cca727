"""The assembled course model (course.model.TinyLM) with MHA attention: every switch
combination available now runs forward and backward; cached decoding equals uncached;
training repeats exactly for a seed."""

import importlib
import itertools

import pytest
import torch

from course.model import TinyConfig, TinyLM, generate
from course.train import train_lm

V = 20


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def _combos():
    ffns = ["dense"] + (["moe"] if _available("course.moe") else [])
    precisions = ["fp32", "bf16"] + (["fp8"] if _available("course.fp8") else [])
    for ffn, precision, mtp in itertools.product(ffns, precisions, [0, 1]):
        balances = ["none", "aux", "bias"] if ffn == "moe" else ["none"]
        for balance in balances:
            yield dict(ffn=ffn, precision=precision, mtp_depth=mtp, balance=balance)


def _cfg(**kw) -> TinyConfig:
    base = dict(vocab_size=V, d_model=32, n_layers=2, n_heads=4, seq_len=8,
                n_routed_experts=4, experts_per_token=2, moe_inter_dim=16)
    return TinyConfig(**{**base, **kw})


@pytest.mark.parametrize("switches", list(_combos()), ids=lambda s: "-".join(map(str, s.values())))
def test_forward_backward_every_mha_combination(switches):
    torch.manual_seed(0)
    model = TinyLM(_cfg(attention="mha", **switches))
    idx = torch.randint(0, V, (2, 8))
    out = model(idx, targets=torch.roll(idx, -1, 1))
    assert out.logits.shape == (2, 8, V)
    assert torch.isfinite(out.loss)
    # an untrained model predicts roughly uniformly: loss near ln(V)
    assert abs(out.lm_loss.item() - torch.log(torch.tensor(float(V))).item()) < 0.5
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:3])
    assert model.embed.weight.grad.abs().sum() > 0
    assert len(out.updates) == 2


def test_updates_add_up_to_the_residual_stream():
    torch.manual_seed(0)
    model = TinyLM(_cfg()).eval()
    idx = torch.randint(0, V, (1, 6))
    out = model(idx)
    x = model.embed(idx) + sum(a + m for a, m in out.updates)
    torch.testing.assert_close(out.hidden, x, rtol=1e-5, atol=1e-6)


def test_knockout_zeroes_the_named_part_only():
    torch.manual_seed(0)
    model = TinyLM(_cfg()).eval()
    idx = torch.randint(0, V, (1, 6))
    out = model(idx, knockout={("attn", 1)})
    assert out.updates[1][0].abs().max() == 0
    assert out.updates[0][0].abs().max() > 0 and out.updates[1][1].abs().max() > 0
    assert not torch.allclose(out.logits, model(idx).logits)


def test_cached_generation_equals_uncached():
    torch.manual_seed(0)
    model = TinyLM(_cfg(seq_len=32))
    idx = torch.randint(0, V, (2, 5))
    with_cache = generate(model, idx, 12, use_cache=True)
    without = generate(model, idx, 12, use_cache=False)
    assert with_cache.shape == (2, 17)
    assert torch.equal(with_cache, without)
    # and the cached logits match a full forward pass over the generated text
    cache = model.new_cache()
    steps = [model(with_cache[:, :5], cache=cache).logits]
    steps += [model(with_cache[:, t:t + 1], cache=cache).logits for t in range(5, 16)]
    torch.testing.assert_close(torch.cat(steps, 1), model(with_cache[:, :16]).logits,
                               rtol=1e-4, atol=1e-5)


def test_training_is_reproducible_for_a_seed_and_learns():
    cfg = dict(d_model=32, n_layers=1, n_heads=2, seq_len=16)
    from course.train import tiny_config

    a = train_lm(tiny_config(**cfg), steps=25, batch_size=8, seed=3)
    b = train_lm(tiny_config(**cfg), steps=25, batch_size=8, seed=3)
    c = train_lm(tiny_config(**cfg), steps=25, batch_size=8, seed=4)
    assert (a.loss == b.loss).all() and a.val_loss == b.val_loss
    assert not (a.loss == c.loss).all()
    assert a.loss[-5:].mean() < a.loss[:5].mean() - 0.5
