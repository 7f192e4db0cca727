import pytest


@pytest.fixture(autouse=True)
def _private_progress_file(tmp_path, monkeypatch):
    """Tests never touch the learner's real progress file."""
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "progress.json"))
