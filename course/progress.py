"""Which exercises a learner has passed, kept in a small local JSON file so progress
survives a kernel restart. `course.checks` records every passed exercise here.

The file is `~/.course_progress.json`, or the path in `COURSE_PROGRESS_FILE`.
Nothing is sent anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def progress_file() -> Path:
    return Path(os.environ.get("COURSE_PROGRESS_FILE", Path.home() / ".course_progress.json"))


def load() -> dict[str, dict]:
    """name -> {"notebook": "08", "passed_at": "2026-11-28 13:05"} for every passed exercise."""
    path = progress_file()
    try:
        done = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return done if isinstance(done, dict) else {}


def record(name: str, notebook: str = "") -> None:
    """Remember that exercise `name` was passed (an unwritable file is silently skipped)."""
    if not isinstance(name, str) or not isinstance(notebook, str):
        raise ValueError(f"An exercise name and its notebook are text, like '08.max_vio' "
                         f"and '08', not {name!r} and {notebook!r}.")
    done = load()
    if name in done:
        return
    done[name] = {"notebook": notebook, "passed_at": time.strftime("%Y-%m-%d %H:%M")}
    try:
        _write_atomically(progress_file(), json.dumps(done, indent=1, sort_keys=True))
    except OSError:
        pass


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`: a crash leaves
    either the old file or the new one, never half of one (os.replace is atomic)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reset() -> None:
    progress_file().unlink(missing_ok=True)


def table(exercises: dict[str, str]) -> list[tuple[str, int, int]]:
    """Rows (notebook, passed, total) given exercise name -> notebook for the whole course."""
    done = load()
    rows: dict[str, list[int]] = {}
    for name, nb in exercises.items():
        row = rows.setdefault(nb, [0, 0])
        row[0] += name in done
        row[1] += 1
    return [(nb, passed, total) for nb, (passed, total) in sorted(rows.items())]
