"""`python -m course.app`: the Voila command line a classroom runs (the app itself is
checked in a browser by test_browser_voila.py)."""

import os
import subprocess
import sys

import pytest

from course import app

NOTEBOOK = app.Path(__file__).resolve().parent.parent / "notebooks" / "09_balancing.ipynb"


def _options(cmd: list[str]) -> dict:
    return dict(arg[2:].split("=", 1) for arg in cmd if arg.startswith("--") and "=" in arg)


def test_the_app_is_preheated_local_and_refills_after_the_page_load():
    options = _options(app.voila_command(NOTEBOOK, port=8870, open_browser=False))
    assert options["preheat_kernel"] == "True" and options["pool_size"] == "1"
    assert options["Voila.ip"] == "127.0.0.1" and options["port"] == "8870"
    # The next kernel pre-heats once the first page has loaded (5-8 s), well before a
    # reload would have to wait long for it.
    assert 10 <= float(options["VoilaKernelManager.fill_delay"]) == app.REFILL_AFTER_S <= 60
    assert options["template"] == "course"
    denied = [arg.split("=", 1)[1] for arg in app.voila_command(NOTEBOOK)
              if arg.startswith("--VoilaConfiguration.extension_denylist=")]
    assert "jupyterlab-plotly" in denied and "jupyterlab-jupytext" in denied


#: What a kernel of the app reports once it has imported the course.
KERNEL = ("import os, course; print(os.nice(0), os.environ.get('OMP_NUM_THREADS'), "
          "sorted(os.listdir(os.environ['COURSE_APP_RUN'])))")


def _kernel_start(env: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-c", KERNEL], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(maxsplit=2)


def test_only_the_refill_kernels_give_way():
    env = app.voila_env({k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert env["JUPYTER_PATH"].split(os.pathsep)[0] == str(app.DATA)
    base = os.nice(0)
    first = _kernel_start(env)  # the kernel the first visitor gets
    assert first == [str(base), "None", "['first-kernel']"]
    refill = _kernel_start(env)  # Voila pre-heating the next one
    assert refill[:2] == [str(max(base, app.REFILL_NICE)), "1"]
    assert _kernel_start(app.voila_env(env))[:2] == [str(base), "None"]  # a new run
    outside = {k: v for k, v in env.items() if k != app.RUN_ENV}
    assert app.settle_kernel(outside) is False


def test_refill_delay_is_an_option_and_is_checked():
    cmd = app.voila_command(NOTEBOOK, refill_after_s=0)
    assert _options(cmd)["VoilaKernelManager.fill_delay"] == "0.0"
    with pytest.raises(ValueError, match="refill_after_s"):
        app.voila_command(NOTEBOOK, refill_after_s=-1)
    with pytest.raises(ValueError, match="not a notebook"):
        app.voila_command(NOTEBOOK.with_suffix(".py"))
