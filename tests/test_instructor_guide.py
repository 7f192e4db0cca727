"""The instructor guide covers every notebook and its links resolve."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructor_guide.md"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    """Map "NN" to the body of the guide's `## NN · Title` section."""
    parts = re.split(r"^## (\d\d) · .*$", _text(), flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_notebook_has_a_section(stem):
    sections = _sections()
    number = stem[:2]
    assert number in sections, f"the guide has no '## {number} · ...' section for {stem}"
    body = sections[number]
    for part in ("**Goals.**", "**Project.**", "**Discuss.**", "**Misconceptions.**"):
        assert part in body, f"section {number} lacks {part}"
    assert re.search(r"\*\*(about )?\d+ min\*\*", body), f"section {number} gives no time"
    assert len(re.findall(r"^\d\. \*", body, flags=re.M)) >= 2, \
        f"section {number} needs at least two discussion questions"


def test_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)\)", _text())
    assert links, "the guide links to no notebook"
    for target in links:
        if "://" in target:
            continue
        assert (GUIDE.parent / target).resolve().exists(), f"the guide links to missing {target}"


def test_workshop_plans_and_readme_link():
    text = _text()
    assert "### Half day" in text and "### Full day" in text
    assert "docs/instructor_guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")
