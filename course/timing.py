"""Wall-clock timing and the one-thread setting, in one place for the whole course.

A measurement runs a function a few times after an untimed warm-up (allocations, kernel
selection, the first touch of the pages) and keeps a robust statistic of the runs: the
fastest (`best_seconds`; on a shared machine the slower runs measure the neighbours, as
Python's `timeit` documentation recommends) or the median (`median_seconds`). A GPU runs
asynchronously, so the clock waits for it (`torch.cuda.synchronize`) before and after each
run. `mean_seconds` instead times runs back to back with one wait at each end: a GPU's
throughput with its launch gaps hidden.

`one_thread()` runs tiny models on one intra-op thread: on a busy shared CPU extra
threads only spin (measured for DiLoCo's toy run: 70 s with 2 threads, 3 s with 1).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Sequence

from course import validate

_ONE_THREAD_LOCK = threading.Lock()
_one_thread_users = 0
_threads_before = 1


@contextmanager
def one_thread():
    """Within the block torch uses one intra-op thread; the setting is restored when the
    last block open (in any Python thread) closes, so overlapping blocks of two widgets'
    background runs cannot leave torch at one thread."""
    import torch

    global _one_thread_users, _threads_before
    with _ONE_THREAD_LOCK:
        if _one_thread_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _one_thread_users += 1
    try:
        yield
    finally:
        with _ONE_THREAD_LOCK:
            _one_thread_users -= 1
            if _one_thread_users == 0:
                torch.set_num_threads(_threads_before)


def _nothing() -> None:
    return None


def synchronizer(device=None) -> Callable[[], None]:
    """A function that waits for the work queued on `device`: `torch.cuda.synchronize` on a
    GPU, nothing on a CPU (or when `device` is None)."""
    if device is None:
        return _nothing
    import torch

    return torch.cuda.synchronize if torch.device(device).type == "cuda" else _nothing


def lap_times(steps: Sequence[Callable], repeats: int = 5, *, device=None, warmup: int = 1,
              setup: Callable | None = None, sync: Callable | None = None) -> list[list[float]]:
    """Sorted seconds of each step over `repeats` timed rounds, after `warmup` untimed ones.

    A round calls `setup()` untimed, then each step in turn, each timed on its own: the
    first step receives setup's result (None without a setup), each later step the result
    of the one before (a forward pass, then the backward of the graph it built). `sync`
    (default: `synchronizer(device)`) runs before and after every step.
    """
    repeats = validate.integer("repeats", repeats, 1, 100_000)
    warmup = validate.integer("warmup", warmup, 0, 1_000)
    if not steps or not all(callable(s) for s in steps):
        raise ValueError("steps must be a non-empty list of functions to time.")
    wait = sync or synchronizer(device)
    out: list[list[float]] = [[] for _ in steps]
    for i in range(warmup + repeats):
        value = setup() if setup is not None else None
        for laps, step in zip(out, steps):
            wait()
            start = time.perf_counter()
            value = step(value)
            wait()
            if i >= warmup:
                laps.append(time.perf_counter() - start)
    return [sorted(laps) for laps in out]


def times(fn: Callable[[], object], repeats: int = 5, *, device=None, warmup: int = 1,
          sync: Callable | None = None) -> list[float]:
    """Sorted seconds of `repeats` calls of `fn()`, after `warmup` untimed calls."""
    return lap_times([lambda _: fn()], repeats, device=device, warmup=warmup, sync=sync)[0]


def best_seconds(fn: Callable[[], object], repeats: int = 5, **kw) -> float:
    """The fastest of `repeats` timed calls (after the warm-up): the least-disturbed run."""
    return times(fn, repeats, **kw)[0]


def median(sorted_times: Sequence[float]) -> float:
    """The middle of sorted times (the upper one of the two middles for an even count)."""
    return sorted_times[len(sorted_times) // 2]


def median_seconds(fn: Callable[[], object], repeats: int = 5, **kw) -> float:
    """The median of `repeats` timed calls (after the warm-up): robust to a few outliers."""
    return median(times(fn, repeats, **kw))


def mean_seconds(fn: Callable[[], object], repeats: int = 10, *, device=None,
                 sync: Callable | None = None) -> float:
    """Average seconds per call of `repeats` back-to-back calls, after one warm-up call, with
    one wait at each end: throughput, with a GPU's launch gaps hidden between the calls."""
    repeats = validate.integer("repeats", repeats, 1, 100_000)
    wait = sync or synchronizer(device)
    fn()
    wait()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    wait()
    return (time.perf_counter() - start) / repeats
