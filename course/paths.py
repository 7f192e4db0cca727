"""Where the shipped data (model configs, the toy corpus) lives, from any working directory.

The repository keeps one copy, in the top-level `assets/`. A wheel (or `pip install .`)
carries the same files as package data under `course/_assets/` (pyproject.toml maps the
package `course._assets` onto the `assets/` folder). A source checkout or an editable
install has no `course/_assets/` and reads `assets/` beside the package.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The folder holding `configs/` and `corpus/`: installed copy first, then the checkout's."""
    for candidate in (_HERE / "_assets", _HERE.parent / "assets"):
        if (candidate / "configs").is_dir() and (candidate / "corpus").is_dir():
            return candidate
    raise FileNotFoundError(
        f"The course's data (configs/, corpus/) is neither in {_HERE / '_assets'} (installed "
        f"package) nor in {_HERE.parent / 'assets'} (source checkout); reinstall the course.")


ASSETS = assets_dir()
