"""Notebook 14's comparisons over seeds (course.tiny_deepseek_ablation): the shipped files
are what the code computes (one variant and one balancing setting retrained at one seed),
their keys follow the settings, and the verdicts (`switch_effects`, `best_balanced`) say
what their docstrings say on hand-made spreads."""

import json

import pytest

from course import seeds
from course import tiny_deepseek as td
from course import tiny_deepseek_ablation as tda
from course.plots import tiny_deepseek as plots

SEEDS = (0, 1, 2)


def _file(name: str) -> dict:
    return json.loads((seeds.RUNS_DIR / f"{name}.json").read_text())


def test_shipped_files_match_the_current_settings():
    """The notebook reads the files only when their keys match: a stale file would mean
    every Run All retrains for minutes."""
    assert _file("tiny_deepseek_ablation")["key"] == json.loads(json.dumps(
        tda._key(None, SEEDS, variants=list(td.VARIANTS))))
    assert _file("tiny_deepseek_balancing")["key"] == json.loads(json.dumps(
        tda._key(None, SEEDS, alphas=list(tda.ALPHAS), gammas=list(tda.GAMMAS))))
    ablated = tda.ablation()
    assert list(ablated.spreads) == list(td.VARIANTS) and ablated.seconds > 0
    assert all(s.seeds == SEEDS for cols in ablated.spreads.values() for s in cols.values())
    assert "max_vio" not in ablated["dense"] and "max_vio" in ablated["full"]
    sweep = tda.balancing()
    assert list(sweep.spreads) == [f"aux {a:g}" for a in tda.ALPHAS] + [
        f"bias {g:g}" for g in tda.GAMMAS]


def test_a_changed_setting_changes_the_key(monkeypatch):
    from course import presets

    before = tda._key("toy", SEEDS)
    assert tda._key("toy", (0, 1, 3)) != before
    changed = dict(presets.PRESETS["tiny_deepseek"]["toy"], steps=99)
    monkeypatch.setitem(presets.PRESETS["tiny_deepseek"], "toy", changed)
    assert tda._key("toy", SEEDS)["train"]["steps"] == 99
    changed = dict(changed, aux_alpha=0.5)
    monkeypatch.setitem(presets.PRESETS["tiny_deepseek"], "toy", changed)
    assert tda._key("toy", SEEDS)["config"]["aux_alpha"] == 0.5


# Runs are seeded and deterministic on a CPU: on the machine that wrote the files a rerun
# agrees to the last bit. Another CPU may sum in another order and drift by float
# rounding, so we allow 0.2% of the loss, ten times below what the seed alone moves it
# (checked on the shipped spread), and 0.02 of MaxVio: MaxVio is (busiest - mean) / mean
# tokens per expert over 64 held-out windows of 32 tokens, top-2 of 8 experts, so a mean
# of 512 tokens, and 0.02 is ten tokens moved to the busiest expert. A file from other
# settings or older code moves these by a seed's worth and fails.
LOSS_REL, VIO_ABS = 2e-3, 0.02


def test_shipped_ablation_matches_a_fresh_run_of_one_variant():
    """FP32 at seed 1: the one variant without FP8's emulated rounding (fast to train)."""
    shipped = tda.ablation()["fp32"]
    fresh = td.measure("fp32", seed=1, cache=False)
    i = SEEDS.index(1)
    assert shipped["val_loss"].width > 10 * LOSS_REL * shipped["val_loss"].mean
    assert fresh.val_loss == pytest.approx(shipped["val_loss"].values[i], rel=LOSS_REL)
    assert fresh.max_vio == pytest.approx(shipped["max_vio"].values[i], abs=VIO_ABS)
    for col in ("kv_bytes_per_token", "total_params", "active_params"):
        assert getattr(fresh, col) == shipped[col].values[i], col


def test_shipped_balancing_matches_a_fresh_run_of_one_setting():
    sweep = tda.balancing()
    name = "aux 0.1"
    fresh = tda.balance_run("aux", 0.1, seed=2)
    i = SEEDS.index(2)
    assert sweep[name]["val_loss"].width > 10 * LOSS_REL * sweep[name]["val_loss"].mean
    assert sweep[name]["max_vio"].width > 10 * VIO_ABS
    assert fresh["val_loss"] == pytest.approx(sweep[name]["val_loss"].values[i], rel=LOSS_REL)
    assert fresh["max_vio"] == pytest.approx(sweep[name]["max_vio"].values[i], abs=VIO_ABS)


def _spread(*values):
    return seeds.Spread(tuple(values), tuple(range(len(values))))


def test_switch_effects_tell_apart_only_non_overlapping_ranges():
    ablated = tda.Shipped({
        "full": {"val_loss": _spread(1.00, 1.02, 1.04)},
        "mha": {"val_loss": _spread(1.03, 1.05, 1.06)},  # overlaps the full model's range
        "no_mtp": {"val_loss": _spread(1.10, 1.12, 1.15)},  # above every seed of it
    }, seconds=1.0)
    effects = {e.variant: e for e in tda.switch_effects(ablated)}
    assert set(effects) == {"mha", "no_mtp"}
    assert not effects["mha"].told_apart and effects["no_mtp"].told_apart
    assert effects["no_mtp"].delta == pytest.approx(1.12333 - 1.02, abs=1e-4)
    assert effects["no_mtp"].seed_width == pytest.approx(0.05)
    assert "NOT told apart" in effects["mha"].text() and "no MTP" in effects["no_mtp"].text()


def test_best_balanced_takes_the_most_even_load_at_no_measurable_loss():
    def row(loss, vio):
        return {"val_loss": _spread(*loss), "max_vio": _spread(*vio)}

    sweep = tda.Shipped({
        "aux 0": row((0.90, 0.91, 0.92), (0.1, 0.1, 0.1)),  # no balancing: never a choice
        "aux 0.01": row((1.00, 1.01, 1.02), (0.8, 0.9, 1.0)),  # the lowest loss
        "aux 0.1": row((1.01, 1.02, 1.03), (0.3, 0.4, 0.5)),  # same loss, more even
        "aux 0.3": row((1.10, 1.11, 1.12), (0.1, 0.1, 0.1)),  # most even, but costs loss
        "bias 0.01": row((1.0, 1.0, 1.0), (0.2, 0.2, 0.2)),
    }, seconds=1.0)
    assert tda.best_balanced(sweep, "aux") == "aux 0.1"
    assert tda.best_balanced(sweep, "bias") == "bias 0.01"
    with pytest.raises(ValueError, match="choose aux or bias"):
        tda.best_balanced(sweep, "none")
    ablated = tda.Shipped({"full": row((1.0, 1.0, 1.0), (0.2, 0.3, 0.4)),
                           "aux": row((1.0, 1.0, 1.0), (0.35, 0.5, 0.6))}, seconds=1.0)
    assert tda.balancing_verdicts(ablated, sweep) == {
        "row 4 (α = γ = 0.01), MaxVio": False,  # 0.2-0.4 overlaps 0.35-0.6
        "best of each, loss": True,  # aux 0.1's 1.01-1.03 lies above bias's 1.0
        "best of each, MaxVio": True,  # 0.3-0.5 above 0.2
        "best bias vs no balancing, MaxVio": True,  # 0.2 above α = 0's 0.1
        "best aux vs no balancing, MaxVio": True}


def test_table_and_figures_show_the_spread():
    ablated = tda.ablation()
    table = plots.ablation_table(ablated.spreads)
    assert table.count("<tr") == len(td.VARIANTS) + 1 and "over 3 seeds" in table
    lo, hi = ablated["full"]["val_loss"].lo, ablated["full"]["val_loss"].hi
    assert f"{lo:.3f}–{hi:.3f}" in table
    fig = plots.ablation_bars(ablated.spreads)
    bar = fig.data[0]  # validation loss
    assert list(bar.y) == pytest.approx([c["val_loss"].mean for c in ablated.spreads.values()])
    assert bar.error_y.array[0] == pytest.approx(hi - ablated["full"]["val_loss"].mean)
    sweep = tda.balancing()
    fig = plots.balancing_scatter(sweep.spreads, ["aux 0.1"])
    aux = fig.data[0]
    assert len(aux.x) == len(tda.ALPHAS) and len(fig.data[1].x) == len(tda.GAMMAS)
    assert list(aux.marker.size).count(16) == 1
