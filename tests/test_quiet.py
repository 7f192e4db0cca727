"""tests/quiet.py: a timed section waits for the other worker's heavy work, and heavy work
waits for a timed section (two processes sharing one lock file)."""

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import quiet

HERE = Path(__file__).resolve().parent
HOLD = """import sys, time; sys.path.insert(0, {here!r}); import quiet, fcntl
with quiet.{how}():
    print("held", flush=True); time.sleep(1.0)
"""


def _hold(tmp_path, how: str) -> subprocess.Popen:
    env = dict(os.environ, **{quiet.ENV: str(tmp_path / "run.lock")})
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(here=str(HERE), how=how)],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _seconds_to_lock(tmp_path, mode: int) -> float:
    fd = os.open(tmp_path / "run.lock", os.O_CREAT | os.O_RDWR)
    try:
        start = time.perf_counter()
        fcntl.flock(fd, mode)
        return time.perf_counter() - start
    finally:
        os.close(fd)


def test_exclusive_waits_for_shared_and_shared_for_exclusive(tmp_path):
    heavy = _hold(tmp_path, "shared")
    assert _seconds_to_lock(tmp_path, fcntl.LOCK_SH) < 0.5  # heavy work runs two at a time
    assert _seconds_to_lock(tmp_path, fcntl.LOCK_EX) > 0.5  # a timing waits for it
    heavy.wait()
    timed = _hold(tmp_path, "alone")
    assert _seconds_to_lock(tmp_path, fcntl.LOCK_SH) > 0.5  # heavy work waits for a timing
    timed.wait()


def test_wait_quiet_gives_up_after_its_timeout():
    # Whatever the machine is doing, it never waits longer than asked (plus one window).
    assert quiet.wait_quiet(max_busy_cores=-1, window_s=0.05, timeout_s=0.2) < 0.4
