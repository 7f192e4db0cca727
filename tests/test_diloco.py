"""Notebook 06: the DiLoCo-style toy run against synchronous data parallelism."""

import pytest

from course import diloco

KW = dict(replicas=4, steps=240, d_in=8, width=32, batch=32)  # the toy preset


@pytest.fixture(scope="module")
def runs():
    return diloco.compare(hs=(8, 60), **KW)


def test_bytes_fall_h_fold(runs):
    dp, h8, h60 = runs
    assert h8.bytes_sent[-1] == pytest.approx(dp.bytes_sent[-1] / 8)
    assert h60.bytes_sent[-1] == pytest.approx(dp.bytes_sent[-1] / 60)
    n_params = 8 * 32 + 32 + 32 * 32 + 32 + 32 + 1
    assert dp.bytes_sent[-1] == pytest.approx(240 * 2 * 3 / 4 * 4 * n_params)


def test_every_run_learns(runs):
    for run in runs:
        assert run.loss[-1] < run.loss[0] / 5, run.label


def test_local_steps_stay_close_to_synchronous(runs):
    dp, h8, _ = runs
    assert h8.loss[-1] < 3 * dp.loss[-1]


def test_deterministic():
    with diloco.one_thread():
        a = diloco.train_diloco(60, **KW)
        b = diloco.train_diloco(60, **KW)
    assert a.loss == b.loss


def test_one_thread_restores_thread_count():
    import torch

    before = torch.get_num_threads()
    with diloco.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_bad_arguments():
    with pytest.raises(ValueError):
        diloco.train_diloco(0, **KW)
    with pytest.raises(ValueError):
        diloco.train_diloco(500, **KW)
