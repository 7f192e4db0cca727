"""The static website (`python -m course.site`) in a real browser, and the CI workflow.

The site is built once per test session into a temporary folder, reusing the executed
notebooks cached in build/cache/notebooks (CI builds the site just before the tests, so this
only renders). It is then served on 127.0.0.1 and every page is opened in headless Chromium:
no console errors, every figure drawn with data, no request leaving the site, every internal
link (page and #anchor) resolving. Two pages are also opened from disk (file://).

COURSE_SITE_ONLY="00 07" builds and checks only those notebooks (while editing);
COURSE_SITE_DIR=build/site checks an already built site instead of building one.
Skipped (with the reason) when Chromium or playwright is missing, unless
COURSE_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shlex
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
import quiet
from browser_support import CHROMIUM, FLAGS, require_browser

from course import site

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"

# ----------------------------------------------------------------------------- no browser


def test_links_between_course_files_become_links_between_pages():
    stems = {"03_memory", "07_dualpipe"}
    text = ("[a](03_memory.ipynb) [b](../notebooks/07_dualpipe.py#sec) "
            "[c](../docs/instructor_guide.md#x) [d](README.md) [e](https://example.org/a.md) "
            "[f](#local) [g](../course/moe.py)")
    out = site.rewrite_links(text, stems)
    assert out == ("[a](03_memory.html) [b](07_dualpipe.html#sec) [c](instructor_guide.html#x) "
                   "[d](index.html) [e](https://example.org/a.md) [f](#local) "
                   "g (`../course/moe.py` in the repository)")


def test_formulas_become_mathml_and_money_stays_text():
    shown = site.markdown_math(
        r"$$\text{time} = \frac{\text{FLOPs}}{\text{GPUs} \times \text{MFU}}$$ "
        r"costs $5.576 M at $2 per hour, $0.14, $0.55; reads $h_i$ and `$x$` "
        r"$\unknown{x}$")
    assert shown.startswith('<math display="block"><mrow><mtext>time</mtext><mo>=</mo><mfrac>')
    assert "<mtext>FLOPs</mtext>" in shown and "<mo>×</mo>" in shown
    assert "costs $5.576 M at $2 per hour, $0.14, $0.55;" in shown  # money is not math
    assert "<msub><mrow><mi>h</mi></mrow><mrow><mi>i</mi></mrow></msub>" in shown
    assert "`$x$`" in shown and r"$\unknown{x}$" in shown  # code, and TeX outside the subset
    assert site.tex_to_mathml(r"\frac{1}") is None


def test_cache_key_follows_notebook_and_package_sources(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "course").mkdir()
    (tmp_path / "assets").mkdir()
    nb = tmp_path / "notebooks" / "00_x.ipynb"
    nb.write_text("{}")
    mod = tmp_path / "course" / "m.py"
    mod.write_text("A = 1\n")
    (page,) = site.discover(tmp_path)
    key = lambda: site.cache_path(tmp_path, page, site.package_hash(tmp_path)).name
    first = key()
    assert key() == first  # unchanged sources: the same executed notebook is reused
    (tmp_path / "course" / "site.py").write_text("# the renderer does not change outputs\n")
    assert key() == first
    mod.write_text("A = 2\n")
    second = key()
    assert second != first
    nb.write_text('{"cells": []}')
    assert key() not in (first, second)


def test_widget_views_render_statically_from_their_saved_state():
    """Widgets other than LiveFigure (as nbclient saves them): boxes, HTML, controls at their
    values, an Output widget's captured outputs (text and a plotly figure), and a note."""
    from course import static

    fig = {"data": [{"type": "bar", "y": [1, 2]}], "layout": {}}
    states = {
        "box": {"model_name": "VBoxModel", "state": {"children": [
            "IPY_MODEL_html", "IPY_MODEL_slider", "IPY_MODEL_pick", "IPY_MODEL_out"]}},
        "html": {"model_name": "HTMLModel", "state": {"value": "<b>loss 0.25</b>"}},
        "slider": {"model_name": "FloatSliderModel", "state": {
            "_model_name": "FloatSliderModel", "description": "gamma", "value": 0.001}},
        "pick": {"model_name": "DropdownModel", "state": {
            "_model_name": "DropdownModel", "description": "model", "index": 1,
            "_options_labels": ["llama-3-8b", "deepseek-v3"]}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "stream", "name": "stdout", "text": "trained 10 steps\n"},
            {"output_type": "display_data", "data": {static.PLOTLY_MIME: fig}}]}},
    }
    page = static.widget_html("box", states)
    assert "<b>loss 0.25</b>" in page and "trained 10 steps" in page
    assert "gamma</span> <span class=\"course-control-value\">0.001<" in page
    assert "deepseek-v3" in page and "llama-3-8b" not in page
    assert page.count("course-plotly-data") == 1 and '"y":[1,2]' in page
    assert "JupyterLab" in static.widget_html("gone", states)  # state not saved: a note


def test_live_figure_on_a_static_page_is_its_figure_controls_and_a_note(monkeypatch):
    """COURSE_STATIC=1: the widget's repr is its current figure (plotly JSON), its controls
    at their values, its summary, and the line saying the sliders move in JupyterLab."""
    import json

    import plotly.io as pio

    from course.widgets.pipeline import pipeline_gantt

    monkeypatch.setenv("COURSE_STATIC", "1")
    monkeypatch.setenv("COURSE_STATIC_NOTEBOOK", "07_dualpipe.ipynb")
    live = pipeline_gantt()
    bundle = live._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "application/vnd.plotly.v1+json"}
    assert bundle["application/vnd.plotly.v1+json"] == json.loads(pio.to_json(live.fig))
    page = bundle["text/html"]
    for control in live.controls.values():
        assert f">{html.escape(control.description)}</span>" in page
    assert "jupyter lab notebooks/07_dualpipe.ipynb" in page and "do not move here" in page
    assert page.count("<!--course-figure-slot-->") == 1
    monkeypatch.delenv("COURSE_STATIC")
    assert "application/vnd.jupyter.widget-view+json" in live._repr_mimebundle_()


# ----------------------------------------------------------------------------- the workflow


def _commands(script: str) -> tuple[list[str], dict[str, str]]:
    """Shell lines as commands (an if ... fi block is one command) and `export` settings;
    comments, blank lines and the script's own setup (set -e, cd) are not commands."""
    commands, env, block = [], {}, []
    for raw in script.splitlines():
        line = raw.split(" #")[0].strip() if not raw.strip().startswith("#") else ""
        if not line or line.startswith(("set -", "cd ")) or line.startswith("#!"):
            continue
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip("'\"")
            continue
        if block or line.startswith("if "):
            block.append(line)
            if line == "fi":
                commands.append("\n".join(block))
                block = []
            continue
        commands.append(" ".join(shlex.split(line, posix=False)))
    return commands, env


def _workflow():
    yaml = pytest.importorskip("yaml")
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert files, "no workflow in .github/workflows"
    return {f.name: yaml.safe_load(f.read_text()) for f in files}


def test_workflow_runs_the_commands_of_ci_run_and_publishes_the_site():
    (name, flow), = [(n, f) for n, f in _workflow().items() if "test" in f["jobs"]]
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on:` key as True
    assert "push" in on and "pull_request" in on
    test = flow["jobs"]["test"]
    steps = test["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert "actions/checkout" in uses and "actions/setup-python" in uses
    script = "\n".join(s["run"] for s in steps if "run" in s)
    got, _ = _commands(script)
    want, exports = _commands((ROOT / ".ci" / "run").read_text())
    assert got == want, f"{name} must run .ci/run's commands, in order"
    env = {**flow.get("env", {}), **test.get("env", {})}
    assert {k: str(env.get(k)) for k in exports} == exports
    assert "python -m course.site" in want
    assert "python -m pytest" in want  # the README's test command, browser included
    # Publishing: the built site goes to GitHub Pages, only from pushes to main.
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert upload and upload[0]["with"]["path"] == "build/site"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and "refs/heads/main" in deploy["if"]
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


# ----------------------------------------------------------------------------- the browser

@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The whole site, built once per session; executed notebooks come from the cache."""
    require_browser()
    only = os.environ.get("COURSE_SITE_ONLY", "").split() or None  # e.g. "00 07" while editing
    if os.environ.get("COURSE_SITE_DIR"):  # check a site already built, as it is
        out = Path(os.environ["COURSE_SITE_DIR"]).resolve()
        pages = [p.html for p in site.discover(ROOT, only)]
        return dict(out=out, pages=pages, expected=pages, failures={})
    out = tmp_path_factory.mktemp("site") / "site"
    with quiet.shared():  # heavy (it executes what build/cache lacks), never beside a timing
        result = site.build(root=ROOT, out=out, jobs=2, only=only)
    result["expected"] = [p.html for p in site.discover(ROOT, only)]
    return result


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def served(built):
    handler = functools.partial(_Quiet, directory=str(built["out"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


FIGURES = """() => {
  const expected = document.querySelectorAll('script.course-plotly-data').length;
  const drawn = [...document.querySelectorAll('.js-plotly-plot')].filter(
    g => g.data && g.data.length > 0 && g._fullLayout && g.querySelector('.main-svg'));
  return {expected, drawn: drawn.length,
          points: drawn.map(g => (g.calcdata || []).reduce((n, cd) => n + cd.length, 0))};
}"""


def _visit(page, url: str, base: str) -> dict:
    """Open one page; return what it logged, requested, drew and links to."""
    seen = dict(errors=[], outside=[], failed=[])
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.on("response", lambda r: seen["failed"].append(f"{r.status} {r.url}")
            if r.status >= 400 else None)

    def route(r):
        if r.request.url.startswith(base) or r.request.url.startswith(("data:", "blob:")):
            return r.continue_()
        seen["outside"].append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_function(f"() => {{ const f = ({FIGURES})(); return f.drawn >= f.expected; }}",
                           timeout=60_000)
    seen["figures"] = page.evaluate(FIGURES)
    seen["links"] = page.evaluate("() => [...document.querySelectorAll('a[href]')]"
                                  ".map(a => a.href)")
    seen["ids"] = page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id)")
    seen["text"] = page.inner_text("body")
    return seen


@pytest.fixture(scope="session")
def crawl(served, built):
    """Every page of the site, visited once in Chromium."""
    from playwright.sync_api import sync_playwright
    names = sorted(p.name for p in built["out"].glob("*.html"))
    visits = {}
    with quiet.shared(), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            # One context, as a reader clicking through: plotly.min.js is fetched once.
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            for name in names:
                page = context.new_page()
                visits[name] = _visit(page, served + name, served)
                page.close()
        finally:
            browser.close()
    return visits


@pytest.mark.browser
def test_every_notebook_is_executed_and_has_a_page(built):
    assert built["failures"] == {}, f"notebooks that failed: {built['failures']}"
    assert built["expected"] == built["pages"]
    if not os.environ.get("COURSE_SITE_ONLY"):
        stems = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
        assert [f"{s}.html" for s in stems] == built["pages"]
    names = {p.name for p in built["out"].glob("*.html")}
    assert {"index.html", "instructor_guide.html", "sections.html"} <= names
    assert (built["out"] / "_static" / "plotly.min.js").stat().st_size > 1_000_000


@pytest.mark.browser
def test_pages_load_without_errors_or_outside_requests(crawl):
    for name, seen in crawl.items():
        assert seen["errors"] == [], f"{name}: console errors {seen['errors'][:3]}"
        assert seen["outside"] == [], f"{name}: requests outside the site {seen['outside'][:3]}"
        assert seen["failed"] == [], f"{name}: failed requests {seen['failed'][:3]}"


@pytest.mark.browser
def test_figures_are_drawn_with_data(crawl, built):
    with_figures = [n for n, s in crawl.items() if s["figures"]["expected"]]
    # Almost every notebook draws figures; the text pages draw none.
    assert len(with_figures) >= len(built["pages"]) - 1
    for name in with_figures:
        figs = crawl[name]["figures"]
        assert figs["drawn"] == figs["expected"], f"{name}: {figs}"
        assert all(n > 0 for n in figs["points"]), f"{name}: an empty figure {figs['points']}"


@pytest.mark.browser
def test_every_internal_link_resolves(crawl, served):
    for name, seen in crawl.items():
        for link in seen["links"]:
            if not link.startswith(served):
                assert urlparse(link).scheme in ("http", "https", "mailto"), (name, link)
                continue
            target, fragment = urldefrag(link)
            target_name = target[len(served):].split("?")[0] or "index.html"
            assert target_name in crawl, f"{name} links to a missing page: {link}"
            if fragment:
                ids = crawl[target_name]["ids"]  # the browser tries the raw, then decoded
                assert fragment in ids or unquote(fragment) in ids, (
                    f"{name} links to a missing anchor: {link}")


@pytest.mark.browser
def test_navigation_guide_and_widgets_on_the_pages(crawl, built, served):
    pages = built["pages"]
    home = crawl["index.html"]
    assert all(served + p in home["links"] for p in pages), "the course map links every page"
    for i, name in enumerate(pages):  # previous / next
        links = crawl[name]["links"]
        if i > 0:
            assert served + pages[i - 1] in links
        if i + 1 < len(pages):
            assert served + pages[i + 1] in links
    guide_links = {link.split("#")[0] for link in crawl["instructor_guide.html"]["links"]}
    assert len(guide_links & {served + p for p in pages}) >= len(pages) - 3
    sections = crawl["sections.html"]
    assert sum(link.startswith(served + pages[0] + "#") for link in sections["links"]) >= 3
    # A widget is shown at its defaults with the line saying where it moves.
    assert "Static page: the controls above" in crawl[pages[0]]["text"]
    assert f"jupyter lab notebooks/{pages[0].replace('.html', '.ipynb')}" in crawl[
        pages[0]]["text"]


@pytest.mark.browser
def test_search_finds_sections(served, crawl):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(served + "sections.html?q=bubble", wait_until="load")
            hits = page.eval_on_selector_all("#search-results a", "as => as.map(a => a.href)")
        finally:
            browser.close()
    assert any("07_dualpipe.html#" in h for h in hits), hits


@pytest.mark.browser
def test_site_works_from_disk(built):
    """file:// pages: the figures draw and nothing outside the folder is requested."""
    from playwright.sync_api import sync_playwright
    base = built["out"].as_uri() + "/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            for name in ("index.html", built["pages"][0]):
                seen = _visit(browser.new_page(), base + name, base)
                assert seen["errors"] == [] and seen["outside"] == [], (name, seen["errors"])
                assert seen["figures"]["drawn"] == seen["figures"]["expected"]
        finally:
            browser.close()
    assert re.search(r"<script src=\"_static/plotly\.min\.js\">",
                     (built["out"] / built["pages"][0]).read_text())
