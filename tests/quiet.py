"""Timed sections run alone on the machine.

The browser tests time what a learner feels: a training-backed slider move to its result
(the README's budget: 5 s on one core) and app mode's first widget (10 s). On a 2-core
machine those times mean nothing while the other pytest-xdist worker runs a notebook beside
them: measured here, a 2.6 s training move took 7 s. So the two workers share one lock file:

* untimed heavy work holds it *shared*: every test outside the browser tests for its whole
  run (tests/conftest.py), and the browser tests around Run All, page loads and servers;
* a timed section holds it *exclusively* (`alone()`): it starts once the other worker's
  heavy work in progress is done and the machine has gone quiet (Chromium still draws the
  figures of a notebook whose Run All just ended: measured, that made the first timed move
  after it 5.3 s instead of 3.5 s), and the other worker starts nothing heavy meanwhile.

Heavy work still runs two at a time; only the timed sections (about a minute and a half of
a run) run alone. `flock` converts a held lock in place, and a conversion first drops the
old lock, so two workers that both want to be alone cannot deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from pathlib import Path

ENV = "COURSE_QUIET_LOCK"

_fd: int | None = None
_state = fcntl.LOCK_UN  # what this process holds now


def configure(run_id: str | None = None) -> Path:
    """Name the lock file of this test run (the same `run_id` in every xdist worker)."""
    if ENV not in os.environ:
        name = f"course-quiet-{run_id or uuid.uuid4().hex}.lock"
        os.environ[ENV] = str(Path(tempfile.gettempdir()) / name)
    return Path(os.environ[ENV])


def remove() -> None:
    """Delete this run's lock file (the controlling process, once the run is over)."""
    with contextlib.suppress(KeyError, FileNotFoundError):
        os.remove(os.environ[ENV])


def _set(mode: int) -> None:
    global _fd, _state
    if _fd is None:
        _fd = os.open(configure(), os.O_CREAT | os.O_RDWR, 0o600)
    if mode != _state:
        fcntl.flock(_fd, mode)
        _state = mode


@contextlib.contextmanager
def shared():
    """Heavy, untimed work: runs beside other heavy work, never beside a timed section."""
    before = _state
    if before == fcntl.LOCK_UN:
        _set(fcntl.LOCK_SH)
    try:
        yield
    finally:
        _set(before)


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_quiet(max_busy_cores: float = 0.5, window_s: float = 0.25,
               timeout_s: float = 10.0) -> float:
    """Wait until the machine uses at most `max_busy_cores` over a `window_s` window (at
    most `timeout_s`); return the seconds waited. Not on Linux: return at once."""
    if not Path("/proc/stat").exists():
        return 0.0
    start = time.monotonic()
    cores = os.cpu_count() or 1
    while time.monotonic() - start < timeout_s:
        busy0, total0 = _busy_ticks()
        time.sleep(window_s)
        busy1, total1 = _busy_ticks()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) * cores <= max_busy_cores:
            break
    return time.monotonic() - start


@contextlib.contextmanager
def alone():
    """A timed section: nothing heavy runs beside it."""
    before = _state
    _set(fcntl.LOCK_EX)
    if before != fcntl.LOCK_EX:
        wait_quiet()
    try:
        yield
    finally:
        _set(before)
