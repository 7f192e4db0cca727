import os

# pytest-xdist runs two workers (and their notebook kernels) on a 2-core machine; torch's
# default of one thread per core then oversubscribes the CPU and runs up to 10x slower.
# Set before torch is imported here or in any kernel (kernels inherit the environment).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import quiet  # noqa: E402
from browser_support import LATENCY_LOG, browser_missing  # noqa: E402

#: The browser test that runs a notebook in JupyterLab (tests/browser_support.py).
LAB_TEST = "test_notebook_as_a_learner_sees_it"


def pytest_configure(config):
    worker = getattr(config, "workerinput", None)
    quiet.configure(worker["testrunuid"] if worker else None)
    if worker is None and not config.option.collectonly:
        LATENCY_LOG.unlink(missing_ok=True)  # the controller, before any worker: a new log


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers)
        quiet.remove()


def pytest_report_header(config):
    return ("notebooks: nbval runs them, unless this run's browser test runs them in "
            "JupyterLab (then each notebook executes once, there)")


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
def pytest_collection_modifyitems(config, items):
    """A notebook executes once per run. The browser test runs it in JupyterLab and fails
    on any error output, as nbval does, and on what nbval cannot see (the Log Console,
    widgets left in an error state, sliders that do not answer), so when this run includes
    the browser test of a notebook, nbval's execution of the same notebook is left out."""
    in_lab = {item.callspec.params["name"] for item in items
              if getattr(item, "originalname", None) == LAB_TEST}
    if not in_lab or browser_missing():
        return
    twice = [item for item in items
             if item.path.suffix == ".ipynb" and item.path.name in in_lab]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [item for item in items if item.path.suffix != ".ipynb"
                    or item.path.name not in in_lab]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every test holds the shared lock while it runs, so a browser test's timed section
    never runs beside it (tests/quiet.py); browser tests lock their own parts."""
    if item.get_closest_marker("browser"):
        yield
    else:
        with quiet.shared():
            yield


@pytest.fixture(autouse=True)
def _private_progress_file(tmp_path, monkeypatch):
    """Tests never touch the learner's real progress file."""
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "progress.json"))


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state (torch, numpy and `random`), whatever
    ran before it or in which order: a test's numbers never depend on its neighbours."""
    from course.device import seed_everything

    seed_everything(0)
