"""Notebook 09's comparisons over seeds (course.moe_eval): the shipped files are what the
code computes (a fresh seed is retrained and compared), they hang together, and the
sentences the notebook prints say what the spreads say."""

import json

import numpy as np
import pytest

from course import moe, moe_eval, moe_train, seeds
from course.seeds import Spread


def _shipped(name):
    methods, steps, router = moe_eval.SHIPPED[name]
    return moe_eval.shipped_compare(name, methods, seeds.DEFAULT_SEEDS, steps, **router)


def test_the_notebook_reads_the_shipped_files_without_training(monkeypatch):
    def no_training(*a, **kw):
        raise AssertionError("a shipped comparison should not train")

    monkeypatch.setattr(moe_eval, "train", no_training)
    for name in moe_eval.SHIPPED:
        c = _shipped(name)
        assert c.source == f"assets/runs/{name}.json"
        assert c.seeds == (0, 1, 2) and c.steps == moe_eval.SHIPPED[name][1]
        assert list(c.methods) == list(moe_eval.SHIPPED[name][0])


@pytest.mark.parametrize("name,label,seed", [("moe_balancing", "aux", 1),
                                              ("moe_specialisation", "sequence aux", 2),
                                              ("moe_routers", "DeepSeek-style", 1)])
def test_a_fresh_seed_reproduces_the_shipped_one(name, label, seed):
    c = _shipped(name)
    methods, _, router = moe_eval.SHIPPED[name]
    balance, kw = methods[label]
    moe.RUNS.clear()
    run = moe.train(balance, steps=c.steps, seed=seed, **kw, **router)
    i = c.seeds.index(seed)
    assert run.val_loss == pytest.approx(c[label]["val_loss"].values[i], rel=1e-3)
    assert run.val_max_vio == pytest.approx(c[label]["val_max_vio"].values[i], abs=0.02)
    mi = moe.mutual_information(run.val_kinds[0])
    assert mi == pytest.approx(c[label]["mi"].values[i], abs=0.02)
    moe.RUNS.clear()


def test_shipped_numbers_hang_together():
    bal, spec = _shipped("moe_balancing"), _shipped("moe_specialisation")
    # the same runs appear in both files under the two notebooks' labels
    for a, b in (("none", "none"), ("aux", "batch aux"), ("bias", "bias")):
        for m in moe_eval.MEASURES:
            assert bal[a][m].values == spec[b][m].values, (a, m)
    for c in (bal, spec):
        for label in c.methods:
            joint = c.joint[label]  # seed 0's table gives seed 0's mutual information
            assert moe.mutual_information(joint) == pytest.approx(c[label]["mi"].values[0])
            p_kind = joint.sum(1) / joint.sum()
            h_kind = -(p_kind[p_kind > 0] * np.log2(p_kind[p_kind > 0])).sum()
            assert 0 < c[label]["mi"].values[0] <= h_kind
    raw = json.loads((seeds.RUNS_DIR / "moe_balancing.json").read_text())
    assert raw["key"]["router"] == moe_eval.ROUTER and raw["key"]["steps"] == 150


def test_save_and_read_a_comparison(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "RUNS_DIR", tmp_path)
    tiny = dict(batch=4, n_experts=4)
    methods = {"none": ("none", tiny), "bias": ("bias", dict(tiny, gamma=0.01))}
    monkeypatch.setattr(moe_eval, "SHIPPED", {"moe_tiny": (methods, 3, moe_eval.ROUTER)})
    router, three = moe_eval.ROUTER, seeds.DEFAULT_SEEDS
    moe.RUNS.clear()
    calls = []
    (path,) = moe_eval.save_shipped_runs(progress=lambda *a: calls.append(a))
    assert path == tmp_path / "moe_tiny.json" and calls[-1][:2] == (6, 6)
    read = moe_eval.shipped_compare("moe_tiny", methods, three, 3, **router)
    assert read.source == "assets/runs/moe_tiny.json"
    moe.RUNS.clear()
    fresh = moe_eval.shipped_compare("moe_tiny", methods, three, 3, cache=False, **router)
    assert fresh.source == "computed"
    np.testing.assert_array_equal(read.max_vio, fresh.max_vio)
    np.testing.assert_array_equal(read.val_loss, fresh.val_loss)
    np.testing.assert_array_equal(read.joint["bias"], fresh.joint["bias"])
    # another setting is not what the file holds: it trains instead of reading
    other = moe_eval.shipped_compare("moe_tiny", methods, three, 2, **router)
    assert other.source == "computed" and other.steps == 2
    with pytest.raises(ValueError, match="top_k"):  # set twice: by the method and the router
        moe_eval.compare({"x": ("none", dict(top_k=1))}, three, 2, **router)
    moe.RUNS.clear()


def test_comparison_arguments_are_checked():
    for methods in ({}, {"x": "bias"}, {"x": ("sometimes", {})}, [("none", {})]):
        with pytest.raises(ValueError):
            moe_eval.compare(methods, steps=2)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        moe_eval.compare({"none": ("none", {})}, seeds=(0,), steps=2)
    with pytest.raises(ValueError, match="steps"):
        moe_eval.compare({"none": ("none", {})}, steps=0)


def test_compare_text_says_what_the_ranges_say():
    low, high = Spread((0.2, 0.3, 0.25), (0, 1, 2)), Spread((0.5, 0.6, 0.4), (0, 1, 2))
    text = moe_eval.compare_text(low, high, "A", "B", "MaxVio")
    assert "every seed of A lies below every seed of B" in text and "0.25 (0.20–0.30" in text
    assert "lies above" in moe_eval.compare_text(high, low, "B", "A", "MaxVio")
    touching = Spread((0.3, 0.45, 0.35), (0, 1, 2))
    assert "overlap" in moe_eval.compare_text(touching, high, "A", "B", "MaxVio")


def test_method_vs_seed_text():
    a, b = Spread((1.0, 1.1, 0.9), (0, 1, 2)), Spread((1.02, 1.3, 0.95), (0, 1, 2))
    text = moe_eval.method_vs_seed_text({"a": a, "b": b}, "loss")
    # means 1.0 and 1.09: the methods differ by 0.09; b spans 0.35 over its seeds
    assert "at most 0.090" in text and "(b) moves by 0.350" in text
    assert "the seed moves it more" in text
    far = Spread((2.0, 2.01, 2.02), (0, 1, 2))
    assert "the method moves it more" in moe_eval.method_vs_seed_text({"a": a, "far": far},
                                                                       "loss")


def test_training_settings_are_checked_before_training():
    for bad in (dict(balance="sometimes"), dict(steps=0), dict(steps=2.5), dict(seed=-1),
                dict(n_experts=0), dict(top_k=True), dict(alpha=-0.1), dict(gamma=float("nan")),
                dict(score_func="relu"), dict(aux_scope="token"), dict(lr=0),
                dict(router_temp=0), dict(capacity_factor=-1), dict(n_dense_layers=2),
                dict(n_experts=6, n_groups=4), dict(top_k=5, n_experts=4), dict(colour=1),
                dict(batch=10**6)):
        kw = dict(steps=2, batch=2, n_experts=4)
        kw.update(bad)
        balance = kw.pop("balance", "none")
        with pytest.raises(ValueError) as err:
            moe.train(balance, **kw)
        assert len(str(err.value).split()) >= 4, err.value
    # whole numbers given as floats name the same run
    assert moe_train.settings_key(3, n_experts=4.0) == moe_train.settings_key(3, n_experts=4)


# ------------------------------------------------------------------ notebook 08's capacities


def test_notebook_08_reads_the_shipped_capacities_without_training(monkeypatch):
    from course import moe_capacity

    monkeypatch.setattr(moe_capacity, "train", lambda *a, **kw: 1 / 0)
    caps = moe.capacity_over_seeds(seeds=(0, 1, 2))
    assert caps.source == "assets/runs/moe_capacity.json" and caps.steps == 150
    for name in caps.methods:
        for s in caps.sweeps[name]:
            assert s.dropped[-1] == 0.0 and np.all(np.diff(s.dropped) <= 0)  # more room
            assert s.no_drop_factor >= 1.0  # the busiest expert has at least the mean
            assert 0 <= s.dropped.min() and s.dropped.max() <= 1
    spread = caps.spread("no balancing", "dropped", 1.25)
    assert spread.values == tuple(s.dropped[3] for s in caps.sweeps["no balancing"])
    with pytest.raises(ValueError, match="no factor 1.3"):
        caps.spread("no balancing", "dropped", 1.3)


def test_a_fresh_seed_reproduces_the_shipped_capacities():
    from course import moe_capacity

    caps = moe.capacity_over_seeds(seeds=(0, 1, 2))
    balance, kw = moe_capacity.METHODS["bias balancing"]
    moe.RUNS.clear()
    fresh = moe.capacity_sweep(moe.train(balance, seed=1, **kw), moe_capacity.FACTORS)
    shipped = caps.sweeps["bias balancing"][1]
    np.testing.assert_allclose(fresh.dropped, shipped.dropped, atol=0.01)
    assert fresh.no_drop_factor == pytest.approx(shipped.no_drop_factor, rel=0.02)
    assert fresh.val_loss_no_drop == pytest.approx(shipped.val_loss_no_drop, rel=1e-3)
    moe.RUNS.clear()
