"""Property-based tests of the MoE code (course.moe, moe_stats, moe_train, moe_timing): for
arbitrary inputs (zero, negatives, nan, inf, huge values, wrong types and shapes, unknown
names) every public function returns a finite, sane result (fractions in [0, 1], loads and
times ≥ 0, weights that add up as the router promises) or raises ValueError with a
sentence. Never another exception. Examples are few (`FAST`): the file runs in seconds,
and the training property trains at most 3 steps of a tiny model.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import moe

FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

ODD = [0, -1, -0.5, 1.5, float("nan"), float("inf"), -float("inf"), 1e30, 10**18, True,
       None, "2", "abc", [], (1, 2), {"a": 1}]
anything = st.one_of(st.sampled_from(ODD), st.integers(-5, 40),
                     st.floats(-1e30, 1e30, allow_nan=False))
small_int = st.one_of(st.integers(1, 8), st.sampled_from(ODD))
name = st.one_of(st.sampled_from(moe.SCORE_FUNCS), st.sampled_from(ODD), st.text(max_size=6))
#: loads per expert: counts, shares, odd values and odd shapes
loads = st.one_of(
    st.lists(st.floats(0, 1e6), min_size=1, max_size=16),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 9)),
             max_size=12),
    st.sampled_from(ODD),
    st.just(np.zeros((2, 4))), st.just(np.ones((3, 8))), st.just([[1.0, -1.0]]),
)


def call(fn, *args, **kw):
    """fn(*args, **kw), or None when it raised ValueError (with a sentence)."""
    try:
        return fn(*args, **kw)
    except ValueError as err:
        assert len(str(err).split()) >= 3, f"ValueError without a sentence: {err!r}"
        return None


def sane(x, low: float = 0.0, high: float = math.inf) -> None:
    if x is None:
        return
    arr = np.asarray(x.detach() if torch.is_tensor(x) else x, dtype=float)
    assert np.isfinite(arr).all(), x
    assert (arr >= low).all() and (arr <= high).all(), x


def logits_of(shape, scale, special):
    """A (T, E) float tensor with a few odd values mixed in."""
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g) * scale
    if special is not None and x.numel():
        x.view(-1)[0] = special
    return x


@st.composite
def routings(draw):
    """Consistent arguments of `route`, then (sometimes) one of them replaced by an odd
    value: the valid path runs often and every argument meets bad values."""
    E = draw(st.integers(1, 12))
    groups = draw(st.sampled_from([g for g in range(1, E + 1) if E % g == 0]))
    keep = draw(st.integers(1, groups))
    args = dict(logits=logits_of((draw(st.integers(1, 6)), E),
                                 draw(st.sampled_from([1e-3, 1.0, 30.0, 1e4, 1e30])),
                                 draw(st.sampled_from([None, -1e4, 1e38]))),
                k=draw(st.integers(1, E // groups * keep)),
                score_func=draw(st.sampled_from(moe.SCORE_FUNCS)),
                bias=draw(st.sampled_from([None, torch.linspace(-0.1, 0.1, E)])),
                n_groups=groups, topk_groups=keep, route_scale=draw(st.floats(0.1, 3.0)))
    odd = draw(st.sampled_from([None, None, None, *args]))
    if odd is not None:
        args[odd] = draw(st.one_of(anything, name, st.sampled_from(
            [torch.full((2, E), float("nan")), torch.zeros(3), torch.zeros(2, 0),
             torch.ones(2, E, dtype=torch.long)])))
    return args


@FAST
@given(args=routings())
def test_route(args):
    out = call(moe.route, **args)
    if out is None:
        return
    weights, indices, scores = out
    (T, E), k, route_scale = args["logits"].shape, args["k"], args["route_scale"]
    assert weights.shape == indices.shape == (T, k) and scores.shape == (T, E)
    sane(weights, 0, route_scale * (1 + 1e-6))
    sane(scores, 0, 1)
    assert (indices >= 0).all() and (indices < E).all()
    assert all(len(set(row.tolist())) == k for row in indices)  # k distinct experts
    if args["score_func"] == "sigmoid":  # normalised over the chosen, times the route scale
        torch.testing.assert_close(weights.sum(-1), torch.full((T,), float(route_scale)))
    counts = moe.expert_counts(indices, E)
    assert int(counts.sum()) == T * k
    sane(moe.balance_loss(scores, indices, args["score_func"]), 0, E * (1 + 1e-6))


@FAST
@given(shape=st.tuples(st.integers(0, 8), st.integers(1, 3)), n_experts=small_int,
       capacity=anything, tokens=anything, k=small_int, factor=anything)
def test_capacity(shape, n_experts, capacity, tokens, k, factor):
    indices = torch.arange(shape[0] * shape[1]).view(shape) % 5
    kept = call(moe.capacity_mask, indices, n_experts, capacity)
    if kept is not None:
        assert kept.shape == indices.shape and kept.dtype == torch.bool
        per_expert = torch.bincount(indices[kept], minlength=5)
        assert (per_expert <= capacity).all()
    cap = call(moe.expert_capacity, tokens, n_experts, k, factor)
    if cap is not None:
        assert isinstance(cap, int) and cap >= 0
    counts = call(moe.expert_counts, indices, n_experts)
    if counts is not None:
        assert int(counts.sum()) == indices.numel()


@st.composite
def loads_and_ranks(draw):
    """A load whose experts split evenly over n_ranks GPUs, or (sometimes) odd ones."""
    n_ranks, per = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    load = draw(st.lists(st.one_of(st.floats(0, 1e6), st.integers(0, 50)),
                         min_size=n_ranks * per, max_size=n_ranks * per))
    odd = draw(st.sampled_from([None, None, "load", "n_ranks"]))
    if odd == "load":
        load = draw(loads)
    elif odd == "n_ranks":
        n_ranks = draw(anything)
    return load, n_ranks


@FAST
@given(load_ranks=loads_and_ranks(), gamma=st.one_of(st.floats(0, 1), anything))
def test_load_statistics(load_ranks, gamma):
    load, n_ranks = load_ranks
    v = call(moe.max_vio, load)
    sane(v)
    ep = call(moe.ep_ranks, load, n_ranks)
    if ep is not None:
        sane(ep.tokens_per_rank)
        sane(ep.utilisation, 0, 1)
        sane(ep.slowdown, 1)
        assert ep.slowdown == pytest.approx(1 / ep.utilisation)
    floor = call(moe.word_router_floor, load, 16, n_ranks)
    sane(floor, 0, 15)
    if isinstance(load, list):
        try:
            t = torch.tensor(load, dtype=torch.float)
        except (TypeError, ValueError, RuntimeError):
            return
        new = call(moe.bias_update, torch.zeros_like(t), t, gamma)
        if new is not None:
            sane(new.abs(), 0, float(gamma) * (1 + 1e-6))  # one step of γ (FP32)


@FAST
@given(joint=st.one_of(st.lists(st.lists(st.integers(0, 50), min_size=3, max_size=3),
                                min_size=1, max_size=5), loads))
def test_mutual_information_is_between_zero_and_the_smaller_entropy(joint):
    mi = call(moe.mutual_information, joint)
    if mi is not None:
        p = np.asarray(joint, dtype=float)
        p = p / p.sum()

        def h(q):
            return -(q[q > 0] * np.log2(q[q > 0])).sum()

        assert -1e-12 <= mi <= min(h(p.sum(0)), h(p.sum(1))) + 1e-9


@FAST
@given(data=st.data(), odd=st.sampled_from([None, "d_model", "n_routed_experts",
                                            "experts_per_token", "moe_inter_dim",
                                            "n_shared_experts", "n_groups", "topk_groups",
                                            "score_func", "route_scale", "router_std",
                                            "router_temp", "aux_scope", "capacity_factor"]))
def test_moe_layer(data, odd):
    E = data.draw(st.sampled_from([1, 2, 4, 6, 8]))
    groups = data.draw(st.sampled_from([g for g in (1, 2) if E % g == 0]))
    fields = dict(d_model=data.draw(st.integers(1, 8)), n_routed_experts=E,
                  experts_per_token=data.draw(st.integers(1, E)),
                  moe_inter_dim=data.draw(st.integers(1, 8)),
                  n_shared_experts=data.draw(st.integers(0, 2)), n_groups=groups,
                  topk_groups=groups, score_func=data.draw(st.sampled_from(moe.SCORE_FUNCS)),
                  route_scale=1.0)
    extra = dict(router_std=data.draw(st.sampled_from([0.02, 1.0, 100.0])),
                 router_temp=1.0, aux_scope=data.draw(st.sampled_from(moe.AUX_SCOPES)),
                 capacity_factor=data.draw(st.sampled_from([None, 0.0, 1.0, 2.5])))
    if odd is not None:
        value = data.draw(st.one_of(anything, name))
        (extra if odd in extra else fields)[odd] = value
    layer = call(moe.MoE, SimpleNamespace(**fields, extra=extra))
    if layer is None:
        return
    torch.manual_seed(0)
    y = call(layer, torch.randn(2, 3, int(fields["d_model"])))  # an extreme router may overflow
    if y is None:
        return
    k = int(fields["experts_per_token"])
    sane(y.abs())
    assert int(layer.last_load.sum()) == 6 * k
    assert 0 <= layer.last_dropped <= layer.last_slots == 6 * k
    sane(layer.aux_loss, 0, E * (1 + 1e-6))


@FAST
@given(balance=st.one_of(st.sampled_from(["none", "aux", "bias"]) | st.sampled_from(ODD)),
       steps=st.one_of(st.integers(1, 3), st.integers(1, 3), st.sampled_from(ODD)),
       seed=st.one_of(st.integers(0, 3), st.integers(0, 3), st.sampled_from(ODD)),
       key=st.sampled_from([None, None, "n_experts", "top_k", "alpha", "gamma", "lr",
                            "router_std", "score_func", "aux_scope", "capacity_factor",
                            "n_groups", "moe_inter_dim", "batch", "colour"]),
       value=st.one_of(anything, name))
def test_train_checks_its_settings(balance, steps, seed, key, value):
    kw = dict(batch=2, n_experts=4, top_k=1, moe_inter_dim=8)
    if key is not None:
        kw[key] = value
    run = call(moe.train, balance, steps=steps, seed=seed, **kw)
    if run is not None:
        assert len(run.loss) == steps and np.isfinite(run.loss).all()
        sane(run.load, 0, 1)
        sane(run.val_max_vio)
        np.testing.assert_allclose(run.load.sum(-1), 1.0)
    moe.RUNS.clear()


@FAST
@given(size=st.one_of(st.sampled_from(["toy", "realistic", None]), st.sampled_from(ODD)),
       repeats=st.one_of(st.integers(1, 2), st.sampled_from(ODD)),
       seed=st.one_of(st.integers(0, 2), st.sampled_from(ODD)))
def test_time_layer(size, repeats, seed):
    if torch.cuda.is_available():
        pytest.skip("the realistic layer would run on the GPU")
    t = call(moe.time_layer, size, repeats, seed)
    if t is not None:
        sane([t.router_seconds, t.layer_seconds, t.tokens_per_s])
        assert t.router_seconds > 0 and int(t.load.sum()) > 0
