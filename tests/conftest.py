import os

# pytest-xdist runs two workers (and their notebook kernels) on a 2-core machine; torch's
# default of one thread per core then oversubscribes the CPU and runs up to 10x slower.
# Set before torch is imported here or in any kernel (kernels inherit the environment).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402


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
