"""A real browser: JupyterLab on 127.0.0.1, notebook 00 opened in headless Chromium,
all cells run, a slider moved with the keyboard, and the plot checked to have changed.

Skipped (with the reason) when Chromium or playwright is missing, unless
COURSE_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
A screenshot is saved under artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "browser"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]
TOKEN = "course-browser-test"

pytestmark = pytest.mark.browser


def _require_browser():
    reasons = []
    if not CHROMIUM.exists():
        reasons.append("Chromium is not at /usr/bin/chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("the playwright package is not installed")
    if reasons:
        message = "; ".join(reasons)
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"COURSE_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("JupyterLab exited before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("JupyterLab did not answer /api/status in time")


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a temporary copy of the notebooks (autosave must not touch ours)."""
    _require_browser()
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns("*.py"))
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), "--allow-root", f"--IdentityProvider.token={TOKEN}",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}"]
    ready = lambda proc: _wait_ready(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", proc)
    with _server(cmd, ready, tmp_path / "lab.log", env):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _server(cmd: list[str], ready, log_path: Path, env=None):
    """Run a server process until the block ends; its output goes to `log_path`."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready(proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


ALL_RAN = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext.session) return false;
  const kernel = nb.sessionContext.session.kernel;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  return kernel && kernel.status === 'idle' && cells.length > 0 &&
         cells.every(c => c.model.executionCount !== null);
}"""

LINE_Y = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const gd = plots.find(p => p.data && p.data.length > 1 && p.data[1].name === 'your line');
  return gd ? Array.from(gd.data[1].y) : null;
}"""


LINE_CHANGED = f"""(before) => {{
  const now = ({LINE_Y})();
  return now !== null && (now[0] !== before[0] || now[1] !== before[1]);
}}"""


def _nudge_first_slider(page, presses: int = 5) -> tuple[list, list]:
    """Press ArrowRight on the first slider (knob w) and wait until the plotted line moves;
    return the line's y values before and after."""
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    before = page.evaluate(LINE_Y)
    handle.focus()
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(LINE_CHANGED, arg=before, timeout=30_000)
    return before, page.evaluate(LINE_Y)


def test_notebook_00_slider_moves_plot_in_chromium(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab}/lab/tree/00_welcome.ipynb?reset&token={TOKEN}")
            page.wait_for_function("() => window.jupyterapp && "
                                   "window.jupyterapp.shell.currentWidget && "
                                   "window.jupyterapp.shell.currentWidget.sessionContext"
                                   ".session", timeout=90_000)
            page.wait_for_function("""() => { const k = window.jupyterapp.shell.currentWidget
                .sessionContext.session.kernel; return k && k.status === 'idle'; }""",
                                   timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells')")
            page.wait_for_function(ALL_RAN, timeout=120_000, polling=500)
            page.wait_for_function(f"() => ({LINE_Y})() !== null", timeout=30_000)
            before, after = _nudge_first_slider(page)
            page.screenshot(path=str(ARTIFACTS / "00_welcome.png"))
        finally:
            browser.close()
    # The notebook's own cells move w to 2.0 and b to 1.0 and then descend; the arrow keys
    # then raise the slope, so the line's right end rises relative to its left end.
    slope = lambda y: (y[1] - y[0]) / 4.4
    assert slope(after) > slope(before)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("Voilà exited before it was ready")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError("Voilà did not open its port in time")


@pytest.fixture
def voila_app(tmp_path):
    """Voilà serving notebook 00 as an app (widgets and prose, no code)."""
    _require_browser()
    shutil.copy(ROOT / "notebooks" / "00_welcome.ipynb", tmp_path / "00_welcome.ipynb")
    port = _free_port()
    cmd = [sys.executable, "-m", "voila", str(tmp_path / "00_welcome.ipynb"), "--no-browser",
           f"--port={port}", "--Voila.ip=127.0.0.1"]
    with _server(cmd, lambda proc: _wait_port(port, proc), tmp_path / "voila.log"):
        yield f"http://127.0.0.1:{port}"


def test_voila_app_mode_slider_moves_plot(voila_app):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        # Voilà's template links a stylesheet from a CDN: offline, abort anything not local.
        page.route("**/*", lambda route: route.continue_()
                   if route.request.url.startswith(voila_app) else route.abort())
        try:
            page.goto(voila_app, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_function(f"() => ({LINE_Y})() !== null", timeout=120_000)
            before, after = _nudge_first_slider(page)
            assert page.locator(".jp-InputArea-editor").count() == 0  # app mode: no code
            page.screenshot(path=str(ARTIFACTS / "00_welcome_voila.png"))
        finally:
            browser.close()
    slope = lambda y: (y[1] - y[0]) / 4.4
    assert slope(after) > slope(before)
