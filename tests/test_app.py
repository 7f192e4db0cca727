"""`python -m course.app`: the Voila command line a classroom runs (the app itself is
checked in a browser by test_browser_voila.py)."""

import pytest

from course import app

NOTEBOOK = app.Path(__file__).resolve().parent.parent / "notebooks" / "09_balancing.ipynb"


def _options(cmd: list[str]) -> dict:
    return dict(arg[2:].split("=", 1) for arg in cmd if arg.startswith("--") and "=" in arg)


def test_the_app_is_preheated_local_and_refills_late():
    options = _options(app.voila_command(NOTEBOOK, port=8870, open_browser=False))
    assert options["preheat_kernel"] == "True" and options["pool_size"] == "1"
    assert options["Voila.ip"] == "127.0.0.1" and options["port"] == "8870"
    # The next kernel is not pre-heated while the first visitor uses the app.
    assert float(options["VoilaKernelManager.fill_delay"]) == app.REFILL_AFTER_S >= 60
    assert options["template"] == "course"


def test_refill_delay_is_an_option_and_is_checked():
    cmd = app.voila_command(NOTEBOOK, refill_after_s=0)
    assert _options(cmd)["VoilaKernelManager.fill_delay"] == "0.0"
    with pytest.raises(ValueError, match="refill_after_s"):
        app.voila_command(NOTEBOOK, refill_after_s=-1)
    with pytest.raises(ValueError, match="not a notebook"):
        app.voila_command(NOTEBOOK.with_suffix(".py"))
