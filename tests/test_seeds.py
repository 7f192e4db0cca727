"""course.seeds: spreads over seeds and shipped results."""

import json

import pytest

from course import seeds


def test_spread_of_numbers_and_dicts():
    s = seeds.over_seeds(lambda seed: 10.0 + seed ** 2, seeds=(0, 1, 3))
    assert s.values == (10.0, 11.0, 19.0) and s.seeds == (0, 1, 3)
    assert (s.mean, s.lo, s.hi, s.width) == (pytest.approx(40 / 3), 10.0, 19.0, 9.0)
    assert s.text("{:.1f}") == "13.3 (10.0–19.0 over 3 seeds)"
    d = seeds.over_seeds(lambda seed: dict(a=seed, b=-seed))
    assert d["a"].values == (0, 1, 2) and d["b"].mean == -1


def test_differs_only_when_ranges_do_not_overlap():
    a = seeds.Spread((1.0, 2.0, 3.0), (0, 1, 2))
    assert seeds.differs(a, seeds.Spread((3.5, 4.0, 5.0), (0, 1, 2)))
    assert not seeds.differs(a, seeds.Spread((2.9, 4.0, 5.0), (0, 1, 2)))
    assert seeds.Spread.from_dict(a.as_dict()) == a


def test_progress_is_told_each_seed():
    told = []
    seeds.over_seeds(lambda s: s, (4, 5), progress=lambda d, n, t: told.append((d, n, t)))
    assert [(d, n) for d, n, _ in told] == [(0, 2), (1, 2), (2, 2)] and "seed 5" in told[1][2]


@pytest.mark.parametrize("bad", [(), (1,), (0, -1), (0, 1.5), "ab", None])
def test_bad_seeds_get_a_sentence(bad):
    with pytest.raises(ValueError):
        seeds.over_seeds(lambda s: s, bad)


def test_shipped_reads_only_a_matching_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": len(calls)}

    key = {"steps": 10, "seeds": [0, 1, 2]}
    seeds.save_shipped("demo", key, {"x": 0.5}, folder=tmp_path)
    assert json.loads((tmp_path / "demo.json").read_text())["key"] == key
    assert seeds.shipped("demo", key, compute, folder=tmp_path) == {"x": 0.5} and not calls
    assert seeds.shipped("demo", dict(key, steps=11), compute, folder=tmp_path) == {"x": 1}
    assert seeds.shipped("demo", key, compute, cache=False, folder=tmp_path) == {"x": 2}
    with pytest.raises(ValueError, match="non-finite"):
        seeds.save_shipped("bad", key, {"x": [1.0, float("nan")]}, folder=tmp_path)
