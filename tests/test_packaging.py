"""The package installs anywhere: a wheel built from the project carries every module, the
model configs and the toy corpus; installed (non-editable) into a fresh virtual environment
it loads all of them from a directory outside the repository.

The wheel is built from a copy of the project (pyproject.toml, README.md, course/, assets/)
so the build writes nothing into the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p.name for p in (ROOT / "assets" / "configs").glob("*.json"))
CORPUS = ("tiny.txt", "word_kinds.json")


def _copy_project(dest: Path) -> Path:
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("course", "assets"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_project(tmp / "src")
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(src)], check=True, cwd=tmp)
    (whl,) = out.glob("course-*.whl")
    return whl


def test_package_list_matches_the_source_tree():
    """pyproject lists the packages explicitly (to map assets/ in): none may be missing."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "course").rglob(
        "__init__.py") if "__pycache__" not in p.parts}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"


def test_wheel_carries_modules_configs_and_corpus(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "course").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set(), "modules missing from the wheel"
    data = {f"course/_assets/configs/{c}" for c in CONFIGS} | {
        f"course/_assets/corpus/{c}" for c in CORPUS}
    assert data - names == set(), "configs or corpus missing from the wheel"
    site_files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "course" / "_site").rglob("*")
                  if p.is_file()}
    assert site_files and site_files - names == set(), "the website's templates are missing"
    assert len(CONFIGS) >= 5
    # Only data ships from assets/: the generator script is not needed at run time.
    assert not any(n.startswith("course/_assets/") and n.endswith(".py") for n in names)
    # The shipped bytes are the repository's: assets/ is the single source.
    with zipfile.ZipFile(wheel) as z:
        assert z.read("course/_assets/corpus/tiny.txt") == (
            ROOT / "assets" / "corpus" / "tiny.txt").read_bytes()


CHECK = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import course, course.paths
    from course import configs, data, mtp
    from course.memory import param_count
    print(json.dumps(dict(
        course=course.__file__,
        assets=str(course.paths.ASSETS),
        configs={n: param_count(configs.load_config(n)).total for n in configs.SHIPPED},
        files=sorted(p.name for p in configs.CONFIG_DIR.glob("*.json")),
        sentences=len(data.load_corpus()),
        vocab=data.tokenizer().vocab_size,
        kinds=[mtp.token_type(w) for w in ("green", "paris", "moo", "the")],
    )))
""")


def test_installed_wheel_works_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    # System site packages supply torch, numpy, plotly...: nothing is downloaded.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = venv / "bin" / "python"
    # The outer pip, run by the venv's interpreter, installs into the venv.
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run([str(python), "-c", CHECK], cwd=elsewhere, env=env, check=True,
                         capture_output=True, text=True)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    site = str(venv.resolve())
    assert got["course"].startswith(site), f"imported the checkout, not the wheel: {got}"
    assert got["assets"].startswith(site) and got["assets"].endswith("_assets")
    assert got["files"] == CONFIGS
    # DeepSeek-V3: 671 B parameters in the main model (DeepSeek-V3 report, §1 / Table 1).
    assert 660e9 < got["configs"]["deepseek-v3"] < 680e9
    from course import data  # the checkout's copy, for comparison
    assert (got["sentences"], got["vocab"]) == (len(data.load_corpus()),
                                                data.tokenizer().vocab_size) == (3000, 103)
    assert got["kinds"] == ["colour", "capital city", "animal sound", "function word"]
