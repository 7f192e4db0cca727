"""tests/conftest.py: a run that includes a notebook's JupyterLab browser test leaves out
nbval's execution of that notebook (it would execute twice), and only that notebook's."""

import os
import subprocess
import sys
from pathlib import Path

import quiet
from browser_support import browser_missing

ROOT = Path(__file__).resolve().parent.parent


def _collected(*args: str) -> set[str]:
    """Node ids `pytest --collect-only` keeps for these arguments (no worker processes).
    The inner run names its own lock file: it removes it when it ends (tests/quiet.py)."""
    env = {k: v for k, v in os.environ.items() if k != quiet.ENV}
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                          *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return {line.strip() for line in out.stdout.splitlines() if "::" in line}


def test_a_notebook_in_the_browser_test_is_not_also_run_by_nbval():
    args = ["notebooks/00_welcome.ipynb", "notebooks/01_transformer_block.ipynb",
            "tests/test_browser_lab_even.py"]
    both = _collected(*args, "-k", "00_welcome or 01_transformer_block")
    lab = "tests/test_browser_lab_even.py::test_notebook_as_a_learner_sees_it[00_welcome.ipynb]"
    assert lab in both
    nbval_00 = {i for i in both if i.startswith("notebooks/00_welcome.ipynb::")}
    nbval_01 = {i for i in both if i.startswith("notebooks/01_transformer_block.ipynb::")}
    assert nbval_01, "01 has no browser test in this run, so nbval executes it"
    if browser_missing():  # no browser: the lab test would skip, so nbval must run 00
        assert nbval_00
    else:
        assert not nbval_00
    quick = _collected(*args, "-m", "not browser")  # the README's quick run
    assert lab not in quick
    assert {i for i in quick if i.startswith("notebooks/00_welcome.ipynb::")}


def test_an_inner_pytest_run_leaves_this_runs_lock_file_alone():
    lock = quiet.configure()
    with quiet.shared():  # opens (creates) this run's lock file
        assert lock.exists()
        _collected("tests/test_quiet.py")
        assert lock.exists()
