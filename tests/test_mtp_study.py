"""Notebook 12's comparison over seeds (course.mtp_study): the shipped file is the one the
notebook reads, and a fresh run of one seed reproduces it."""

import json

import pytest

from course import mtp_study, seeds
from course.speculative import expected_tokens_per_step

SHIPPED = seeds.RUNS_DIR / f"{mtp_study.NAME}.json"


def test_the_notebook_reads_the_shipped_file_without_training():
    saved = json.loads(SHIPPED.read_text())
    assert saved["key"] == json.loads(json.dumps(mtp_study.settings()))  # else Run All trains
    study = mtp_study.study()  # from the file: would take minutes otherwise
    assert len(study.settings["seeds"]) >= 3 and study.baseline.seeds == (0, 1, 2)


def test_shipped_numbers_hang_together():
    study = mtp_study.study()
    for depth in study.depths:
        for lam in study.lams:
            accept = [study.spread(depth, lam, f"accept {k}") for k in range(1, depth + 1)]
            tokens = study.spread(depth, lam, "tokens_per_step")
            for i in range(len(tokens.values)):  # the prefill and the overshoot cost a little
                ceiling = expected_tokens_per_step([a.values[i] for a in accept])
                assert 1 <= tokens.values[i] <= ceiling + 1e-9
    # λ = 0 never trains the module: its drafts are guesses; λ = 0.3 is accepted most times
    assert study.spread(1, 0.0).hi < 0.2 < 0.6 < study.spread(1, 0.3).lo
    assert (0.0, 0.3) in study.apart(1)


def test_a_fresh_seed_reproduces_the_shipped_one():
    shipped = mtp_study.study()
    fresh = mtp_study.study(lams=(0.3,), depths=(1,), seed_list=(1,), cache=False)
    i = shipped.settings["seeds"].index(1)
    pairs = [("accept 1", 0.05), ("agree 1", 0.03), ("tokens_per_step", 0.1), ("val_loss", 0.01)]
    for what, tol in pairs:
        assert fresh.spread(1, 0.3, what).values[0] == pytest.approx(
            shipped.spread(1, 0.3, what).values[i], abs=tol), what
    assert fresh.baseline.values[0] == pytest.approx(shipped.baseline.values[i], abs=0.01)
    depth, lam = shipped.settings["heads_at"]
    for k in range(1, depth + 1):
        assert fresh.spread(depth, lam, f"agree {k}", "parallel").values[0] == pytest.approx(
            shipped.spread(depth, lam, f"agree {k}", "parallel").values[i], abs=0.03)


def test_asking_for_what_was_not_run_is_a_sentence():
    study = mtp_study.study()
    with pytest.raises(ValueError, match="no 'accept 2'"):
        study.spread(1, 0.3, "accept 2")
    with pytest.raises(ValueError, match="lams must be a non-empty list"):
        mtp_study.settings(lams=())
    with pytest.raises(ValueError, match="depth must be"):
        mtp_study.settings(depths=(3,))


def test_figures_show_the_mean_with_whiskers_to_the_extreme_seeds():
    from course.plots import mtp as plots

    study = mtp_study.study()
    fig = plots.acceptance_over_seeds(study)
    bar = fig.data[0]  # depth-1 model, draft 1, one bar per λ
    for lam, y, up, down in zip(study.lams, bar.y, bar.error_y.array, bar.error_y.arrayminus):
        s = study.spread(1, lam)
        assert (y, y + up, y - down) == pytest.approx((100 * s.mean, 100 * s.hi, 100 * s.lo))
    assert len(fig.data) == sum(study.depths)  # one series per draft of each model
    heads = plots.heads_over_seeds(study)
    assert [b.name for b in heads.data] == ["sequential", "parallel"]
    parallel = study.spread(2, 0.3, "agree 2", "parallel")
    assert heads.data[1].y[1] == pytest.approx(100 * parallel.mean)
