"""Every notebook is a jupytext pair: the .py (py:percent) is the source, the .ipynb is
committed in sync with it and without outputs or widget state."""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert (NOTEBOOKS / "00_welcome.py").exists()


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_pair_in_sync(py: Path):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run jupytext --to ipynb {py}"
    from_py = jupytext.read(py)
    from_ipynb = nbformat.read(ipynb, as_version=4)
    assert _cells(from_py) == _cells(from_ipynb), (
        f"{py.name} and {ipynb.name} differ: run jupytext --to ipynb {py}")


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_ipynb_has_no_outputs(py: Path):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{py.stem}.ipynb carries outputs: clear them before committing")
    assert "widgets" not in nb.metadata, f"{py.stem}.ipynb carries widget state"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_every_ipynb_has_a_source():
    for ipynb in NOTEBOOKS.glob("*.ipynb"):
        assert ipynb.with_suffix(".py").exists(), f"{ipynb.name} has no paired .py"


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_links_to_notebooks_resolve(py: Path):
    import re

    for target in re.findall(r"\]\(([^)#\s]+\.ipynb)", py.read_text()):
        assert (NOTEBOOKS / target).exists(), f"{py.name} links to missing {target}"


def test_readme_links_resolve():
    import re

    root = NOTEBOOKS.parent
    text = (root / "README.md").read_text()
    for target in re.findall(r"\]\(((?:notebooks|docs)/[^)#\s]+)\)", text):
        assert (root / target).exists(), f"README links to missing {target}"
    for py in SOURCES:  # the course map has one line per notebook
        assert f"notebooks/{py.stem}.ipynb" in text, f"README's course map lacks {py.stem}"
