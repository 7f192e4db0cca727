"""course.timing: the one timing helper and the one-thread setting."""

import time
from types import SimpleNamespace

import pytest
import torch

from course import timing


class Clock:
    """A fake perf_counter: each call advances by the next step in `steps`."""

    def __init__(self, steps):
        self.now, self.steps = 0.0, iter(steps)

    def __call__(self):
        self.now += next(self.steps, 0.0)
        return self.now


def test_times_skip_the_warm_up_and_sort(monkeypatch):
    # the warm-up reads the clock once (its time is not kept); then start/stop pairs: 3, 1, 2 s
    def fake_clock():  # only course.timing sees it
        clock = Clock([5, 0, 3, 0, 1, 0, 2])
        monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))

    fake_clock()
    calls = []
    got = timing.times(lambda: calls.append(1), 3)
    assert got == [1, 2, 3] and len(calls) == 4  # one untimed warm-up call
    fake_clock()
    assert timing.best_seconds(lambda: None, 3) == 1
    fake_clock()
    assert timing.median_seconds(lambda: None, 3) == 2


def test_laps_pass_results_along_and_time_each_step():
    seen = []
    fwd, bwd = timing.lap_times([lambda s: s + 1, lambda y: seen.append(y)], 4,
                                setup=lambda: 10)
    assert seen == [11] * 5  # warm-up + 4 rounds, each starting from setup's value
    assert len(fwd) == len(bwd) == 4 and fwd == sorted(fwd) and min(fwd) >= 0


def test_sync_runs_around_every_timed_call():
    log = []
    timing.times(lambda: log.append("run"), 2, sync=lambda: log.append("sync"))
    assert log == ["sync", "run", "sync"] * 3


def test_mean_seconds_times_back_to_back_runs():
    calls = []
    t = timing.mean_seconds(lambda: time.sleep(0.002) or calls.append(1), 3)
    assert len(calls) == 4 and t >= 0.002


@pytest.mark.parametrize("repeats", [0, -1, 2.5, "3", None, True])
def test_bad_repeats_get_a_sentence(repeats):
    with pytest.raises(ValueError, match="repeats must be a whole number"):
        timing.times(lambda: None, repeats)
    with pytest.raises(ValueError, match="repeats"):
        timing.mean_seconds(lambda: None, repeats)


def test_synchronizer_is_a_no_op_on_cpu():
    assert timing.synchronizer("cpu")() is None and timing.synchronizer(None)() is None


def test_one_thread_restores_the_setting_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with timing.one_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_the_modules_share_the_one_helper():
    from course import diloco, rl

    assert diloco.one_thread is timing.one_thread and rl.one_thread is timing.one_thread


def test_overlapping_one_thread_blocks_restore_the_setting():
    """Two widgets' background runs overlap: the first to close must not restore early,
    and the last restores what was there before either opened."""
    import threading

    import torch

    before = torch.get_num_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with timing.one_thread():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with timing.one_thread():
            b_in.set()
            a_out.wait(5)
            seen["inside b after a closed"] = torch.get_num_threads()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"inside b after a closed": 1}
    assert torch.get_num_threads() == before
