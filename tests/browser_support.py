"""What the real-browser tests share: JupyterLab and Voila servers on 127.0.0.1, headless
Chromium through playwright, and the checks a learner would make by eye.

* `run_all(page, base, name)`: open a notebook in JupyterLab and Run All, as a learner does.
* `error_outputs(page)` / `log_console(page)`: error outputs in the notebook, and what landed
  in JupyterLab's Log Console (exceptions from widget callbacks go there, not to the notebook).
* `probe_slider(page, slider)`: press one arrow key on a slider; time the first visible change
  of its widget (figure data, text, or a progress line) and the final result. A slider whose
  widget trains a model (it has a progress bar) is timed alone on the machine, as a learner's
  laptop runs one notebook (tests/quiet.py); Run All, servers and page loads hold the lock
  shared.

Measured times are appended to artifacts/browser/latency.jsonl (git-ignored) so the README's
performance table can be rebuilt from a run: `python -m tests.browser_support`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import quiet

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "browser"
LATENCY_LOG = ARTIFACTS / "latency.jsonl"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]
TOKEN = "course-browser-test"
#: A key press must show *something* (new figure data, new text, a progress line) this soon.
FIRST_CHANGE_S = 1.0
#: ...and the finished result this soon: the README's budget for a training run the widget
#: has not cached. The slowest such moves (12's MTP depth, 16's sliders) measured about
#: 3.1 s from key press to drawn result when run alone. The calculators answer in well
#: under a second.
FINAL_S = 5.0
#: How long a probe waits for a result before it gives up.
WAIT_S = 20.0
#: Run All's limit: the slowest notebook takes about 40 s in JupyterLab.
RUN_ALL_TIMEOUT_S = 180


def course_notebooks() -> list[str]:
    """Every notebook of the course, by file name, in course order."""
    return sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def browser_missing() -> list[str]:
    """Why the browser tests cannot run here (empty when Chromium and playwright are there)."""
    reasons = []
    if not CHROMIUM.exists():
        reasons.append("Chromium is not at /usr/bin/chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("the playwright package is not installed")
    return reasons


def require_browser() -> None:
    reasons = browser_missing()
    if reasons:
        message = "; ".join(reasons)
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"COURSE_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], ready, log_path: Path, env=None, cwd=None):
    """Run a server process until the block ends; its output goes to `log_path`."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready(proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in time")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited before it opened its port")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listened on port {port} in time")


@contextlib.contextmanager
def lab_server(tmp: Path, names: list[str]):
    """JupyterLab serving a temporary copy of `names` (autosave must not touch ours), every
    cell rendered (no windowing, so all sliders are in the page) and no news toasts."""
    root = tmp / "notebooks"
    root.mkdir(parents=True)
    for name in names:
        shutil.copy(NOTEBOOKS / name, root / name)
    settings = tmp / "settings" / "@jupyterlab"
    for plugin, value in [("apputils-extension/notification",
                           {"fetchNews": "false", "checkForUpdates": False}),
                          ("notebook-extension/tracker", {"windowingMode": "none"})]:
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), "--allow-root", f"--IdentityProvider.token={TOKEN}",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}"]
    ready = lambda proc: wait_http(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", proc)
    with server(cmd, ready, tmp / "lab.log", env):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


# ------------------------------------------------------------------------------ JupyterLab

KERNEL_IDLE = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = nb && nb.sessionContext && nb.sessionContext.session;
  return !!(s && s.kernel && s.kernel.status === 'idle'); }"""

#: Run All is over: every code cell ran, or a cell failed (the kernel then drops the cells
#: queued after it, so they never run; the error output is reported as a problem).
ALL_RAN = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext.session) return false;
  const kernel = nb.sessionContext.session.kernel;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  const failed = cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
  return kernel && kernel.status === 'idle' && cells.length > 0 &&
         (failed || cells.every(c => c.model.executionCount !== null));
}"""

ERROR_OUTPUTS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  return nb.content.widgets.filter(c => c.model.type === 'code')
    .flatMap(c => c.model.outputs.toJSON())
    .filter(o => o.output_type === 'error')
    .map(o => o.ename + ': ' + o.evalue);
}"""

LOG_CONSOLE = """() => {
  const app = window.jupyterapp;
  const plugin = app.pluginRegistry._plugins.get('@jupyterlab/logconsole-extension:plugin');
  const logger = plugin._service.getLogger(app.shell.currentWidget.context.path);
  return logger.outputAreaModel.toJSON().map(o => {
    if (o.output_type === 'error') return o.ename + ': ' + o.evalue;
    if (o.text) return String(o.text).slice(0, 300);
    return JSON.stringify(o.data || o).slice(0, 300);
  });
}"""

WIDGET_ERRORS = """() => [...document.querySelectorAll('.widget-html-content')]
  .map(e => e.innerText).filter(t => t.includes('⚠') || t.includes('something went wrong'))"""

WHERE_STUCK = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content) return 'no notebook is open';
  const s = nb.sessionContext && nb.sessionContext.session;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  const waiting = cells.map((c, i) => [i, c.model.executionCount]).filter(x => x[1] === null);
  return `kernel ${s && s.kernel ? s.kernel.status : 'none'}; ${cells.length} code cells, ` +
    `${waiting.length} never ran (first: code cell ${waiting.length ? waiting[0][0] : '-'})`;
}"""


def run_all(page, base: str, name: str) -> float:
    """Open `name` in JupyterLab, Run All, wait until every code cell ran; return seconds."""
    with quiet.shared():
        page.goto(f"{base}/lab/tree/{name}?reset&token={TOKEN}")
        page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=250)
        start = time.perf_counter()
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(ALL_RAN, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=250)
        except Exception as err:  # playwright's TimeoutError: say where it stopped
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}_stuck.png"))
            raise AssertionError(f"Run All of {name} did not finish in {RUN_ALL_TIMEOUT_S} s: "
                                 f"{page.evaluate(WHERE_STUCK)}") from err
        return time.perf_counter() - start


def error_outputs(page) -> list[str]:
    return page.evaluate(ERROR_OUTPUTS)


def log_console(page) -> list[str]:
    return page.evaluate(LOG_CONSOLE)


def widget_errors(page) -> list[str]:
    return page.evaluate(WIDGET_ERRORS)


def shutdown_kernel(page) -> None:
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")


# ------------------------------------------------------------------------------- sliders

#: Every enabled slider, with the widget (cell) it belongs to and its description.
SLIDERS = """() => [...document.querySelectorAll('.widget-slider')].map((s, i) => {
  const target = s.querySelector('.noUi-target');
  const handle = s.querySelector('.noUi-handle');
  const cell = s.closest('.jp-Cell') || s.closest('.jp-OutputArea-output');
  const cells = [...document.querySelectorAll('.jp-Cell, .jp-OutputArea-output')];
  return {index: i, cell: cells.indexOf(cell),
          label: (s.querySelector('.widget-label') || {}).innerText || '',
          slow: !!(cell && cell.querySelector('.widget-hprogress')),
          disabled: !!(target && target.hasAttribute('disabled')) ||
                    s.classList.contains('mod-disabled'),
          now: handle ? Number(handle.getAttribute('aria-valuenow')) : null,
          max: handle ? Number(handle.getAttribute('aria-valuemax')) : null};
})"""

#: What a learner sees of a slider's widget, except the slider readouts themselves: the
#: figures' data and titles, and every text, message and progress bar of the widget.
SIGNATURE = """(slider) => {
  const cell = slider.closest('.jp-Cell') || slider.closest('.jp-OutputArea-output')
               || document.body;
  const texts = [...cell.querySelectorAll(
      '.widget-html-content, .widget-label, .jp-RenderedText, .widget-hprogress')]
    .filter(e => !e.closest('.widget-slider'))
    .map(e => e.classList.contains('widget-hprogress')
         ? 'progress:' + (e.querySelector('.progress-bar') || e).style.width
           + (e.offsetParent === null ? ':hidden' : '')
         : e.innerText);
  const plots = [...cell.querySelectorAll('.js-plotly-plot')].map(gd => JSON.stringify([
    (gd.data || []).map(t => [t.x, t.y, t.z, t.text, t.name, t.base, t.visible,
                              t.marker && t.marker.color]),
    gd.layout && gd.layout.title && gd.layout.title.text,
    gd.layout && (gd.layout.annotations || []).map(a => a.text)]));
  const busy = [...cell.querySelectorAll('.widget-hprogress')]
    .some(e => e.offsetParent !== null);
  return {text: texts.join('\\n'), plots: plots.join('|'), busy};
}"""


def sliders_to_probe(page, at_least: int = 3) -> list[dict]:
    """The first enabled slider of every widget, then more until there are `at_least`."""
    enabled = [s for s in page.evaluate(SLIDERS) if not s["disabled"] and s["now"] is not None]
    firsts, seen = [], set()
    for s in enabled:
        if s["cell"] not in seen:
            seen.add(s["cell"])
            firsts.append(s)
    rest = [s for s in enabled if s not in firsts]
    return firsts + rest[:max(0, at_least - len(firsts))]


def probe_slider(page, info: dict, key: str | None = None) -> dict:
    """One arrow key on the slider; seconds to the first visible change and to the result.
    A training-backed slider is timed alone on the machine (tests/quiet.py)."""
    with quiet.alone() if info.get("slow") else contextlib.nullcontext():
        return _probe(page, info, key)


def _probe(page, info: dict, key: str | None) -> dict:
    slider = page.locator(".widget-slider").nth(info["index"])
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle")
    before = slider.evaluate(SIGNATURE)
    handle.focus()
    if key is None:
        at_max = info["max"] is not None and info["now"] >= info["max"]
        key = "ArrowLeft" if at_max else "ArrowRight"
    start = time.perf_counter()
    page.keyboard.press(key)
    first = final = None
    last, seen_at = before, 0.0  # seen_at: when the page first showed `last`
    while time.perf_counter() - start < WAIT_S:
        now = slider.evaluate(SIGNATURE)
        t = time.perf_counter() - start
        if now != last:
            seen_at = t
        if first is None and now != before:
            first = t
        # unchanged and idle for 0.3 s: the result is in, and it was drawn when first seen
        if first is not None and not now["busy"] and now == last and t - seen_at >= 0.3:
            final = seen_at
            break
        last = now
        # Poll less once it moved, and least while it trains: each poll costs the browser a
        # layout and the page's figure data, on the cores the training run also needs.
        page.wait_for_timeout(40 if first is None else 250 if now["busy"] else 100)
    return dict(label=info["label"], key=key, first_s=first, final_s=final,
                slow=bool(info.get("slow")))


def record(entry: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(LATENCY_LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def _probe_and_check(page, info: dict, problems: list[str]) -> dict:
    """Probe one slider (again, once, if its first change was late: a hiccup); add what is
    wrong to `problems`."""
    result = probe_slider(page, info)
    if result["first_s"] is not None and result["first_s"] > FIRST_CHANGE_S:
        result = dict(probe_slider(page, info), retried=True)
    if result["first_s"] is None or result["first_s"] > FIRST_CHANGE_S:
        problems.append(f"slider {result['label']!r}: no visible change within "
                        f"{FIRST_CHANGE_S} s ({result['first_s']})")
    elif result["final_s"] is None or result["final_s"] > FINAL_S:
        problems.append(f"slider {result['label']!r}: no settled result within "
                        f"{FINAL_S} s ({result['final_s']})")
    return result


#: The one browser check that knows what a slider *means* (the others only know that something
#: visible changed): in 00, five presses on knob w tilt the plotted line up.
LINE_Y = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const gd = plots.find(p => p.data && p.data.length > 1 && p.data[1].name === 'your line');
  return gd ? Array.from(gd.data[1].y) : null;
}"""


def knob_w_tilts_the_line(page) -> list[str]:
    handle = page.locator(".widget-slider .noUi-handle").first  # knob w
    handle.scroll_into_view_if_needed()
    before = page.evaluate(LINE_Y)
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    changed = f"(b) => {{ const y = ({LINE_Y})(); return y !== null && (y[0] !== b[0] || " \
              "y[1] !== b[1]); }"
    page.wait_for_function(changed, arg=before, timeout=30_000)
    after = page.evaluate(LINE_Y)
    for _ in range(5):
        page.keyboard.press("ArrowLeft")  # back to the default
    slope = lambda y: (y[1] - y[0]) / 4.4  # the line is drawn between two x values 4.4 apart
    return [] if slope(after) > slope(before) else [
        f"knob w: five presses right did not tilt the line up ({before} -> {after})"]


MEANING = {"00_welcome.ipynb": knob_w_tilts_the_line}


def check_notebook_in_lab(browser, base: str, name: str) -> dict:
    """Run All as a learner, then move the sliders: the whole check for one notebook."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        opened = time.perf_counter()
        seconds = run_all(page, base, name)
        ran = time.perf_counter()
        page.wait_for_timeout(500)  # let the last widget views render
        problems = [f"error output: {e}" for e in error_outputs(page)]
        problems += [f"Log Console after Run All: {m}" for m in log_console(page)]
        problems += [f"widget not at a clean default: {m}" for m in widget_errors(page)]
        probes = []
        targets = sliders_to_probe(page)
        # One exclusive section for all of a notebook's probes if any trains (tests/quiet.py):
        # the other worker's Run All is waited for once, not before every slider. Probing a
        # calculator's sliders is lighter but not free (a kernel, Chromium redrawing figures,
        # the polling): it holds the lock shared, so it never runs beside a timed training.
        timed = quiet.alone() if any(t["slow"] for t in targets) else quiet.shared()
        with timed:
            for i, info in enumerate(targets):
                probes.append(_probe_and_check(page, info, problems))
                if any(later["cell"] == info["cell"] for later in targets[i + 1:]):
                    # Back to the default, so the widget's next slider is probed from the
                    # defaults (a setting left in an error state would hide its change).
                    back = "ArrowRight" if probes[-1]["key"] == "ArrowLeft" else "ArrowLeft"
                    probe_slider(page, info, key=back)
        if name in MEANING:
            problems += MEANING[name](page)
        probed = time.perf_counter()
        problems += [f"Log Console after moving sliders: {m}" for m in log_console(page)]
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"))
        shutdown_kernel(page)
    finally:
        page.close()
    entry = dict(notebook=name, mode="lab", run_all_s=round(seconds, 1), sliders=probes,
                 open_s=round(ran - opened - seconds, 1), probes_s=round(probed - ran, 1))
    record(entry)
    return dict(entry, problems=problems)


# ----------------------------------------------------------------------------------- Voila

def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_kernels_idle(proc: subprocess.Popen, timeout: float = 240) -> None:
    """Wait until Voila's pre-heated kernel has run the notebook: its kernels used CPU and
    are now quiet (a classroom starts the app before the students open it)."""
    if not Path("/proc").exists():
        time.sleep(60)
        return
    deadline, quiet = time.time() + timeout, 0
    last = None
    while time.time() < deadline and quiet < 3:
        time.sleep(1)
        kids = _children(proc.pid)
        used = sum(_cpu_seconds(k) for k in kids)
        quiet = quiet + 1 if kids and last is not None and used - last < 0.05 and used > 2 \
            else 0
        last = used


@contextlib.contextmanager
def voila_server(tmp: Path, name: str):
    """Voila serving one notebook as the course's app (`python -m course.app`), pre-heated."""
    from course.app import voila_command, voila_env

    shutil.copy(NOTEBOOKS / name, tmp / name)
    port = free_port()
    cmd = voila_command(tmp / name, port=port, open_browser=False)
    with quiet.shared(), server(cmd, lambda proc: wait_port(port, proc), tmp / "voila.log",
                                env=voila_env(), cwd=tmp) as proc:
        wait_kernels_idle(proc)
        yield f"http://127.0.0.1:{port}"


def check_notebook_in_voila(browser, url: str, name: str) -> dict:
    """Open the app as a student does: first slider interactive, nothing requested outside
    127.0.0.1, no console errors, and the first slider answers a key press."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text[:300]) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)[:300]))

    def local_only(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    try:
        with quiet.alone():  # the page load and the sliders are timed: alone on the machine
            start = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".widget-slider .noUi-handle", timeout=120_000)
            first_widget = time.perf_counter() - start
            page.wait_for_timeout(1000)  # every view renders
            probes = [probe_slider(page, info)
                      for info in sliders_to_probe(page, at_least=1)[:2]]
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}_voila.png"))
        has_code = page.locator(".jp-InputArea-editor").count() > 0
    finally:
        page.close()
    entry = dict(notebook=name, mode="voila", first_widget_s=round(first_widget, 1),
                 sliders=probes)
    record(entry)
    return dict(entry, errors=errors, outside=outside, has_code=has_code)


def summarise(path: Path = LATENCY_LOG) -> str:
    """The README's browser columns from a run's log: median key-to-change and result."""
    rows = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        rows[(e["notebook"], e["mode"])] = e
    out = ["| notebook | mode | Run All / first widget, s | key → first change, median ms "
           "| key → result, median (max) ms |", "|---|---|---|---|---|"]
    for (name, mode), e in sorted(rows.items()):
        firsts = [s["first_s"] for s in e["sliders"] if s["first_s"] is not None]
        finals = [s["final_s"] for s in e["sliders"] if s["final_s"] is not None]
        ms = lambda xs: f"{statistics.median(xs) * 1e3:.0f}" if xs else "–"
        worst = f" ({max(finals) * 1e3:.0f})" if finals else ""
        ready = e.get("run_all_s", e.get("first_widget_s"))
        out.append(f"| {name[:2]} | {mode} | {ready} | {ms(firsts)} | {ms(finals)}{worst} |")
    return "\n".join(out)



def lab_tests(names: list[str]):
    """A JupyterLab server and browser for `names`, and the learner's check of each: a test
    module assigns both to module names so pytest collects them (two modules split the
    course, so pytest-xdist runs the halves side by side)."""
    @pytest.fixture(scope="module")
    def lab(tmp_path_factory):
        require_browser()
        with lab_server(tmp_path_factory.mktemp("lab"), names) as base, chromium() as browser:
            yield base, browser

    @pytest.mark.browser
    @pytest.mark.parametrize("name", names)
    def test_notebook_as_a_learner_sees_it(lab, name):
        base, browser = lab
        result = check_notebook_in_lab(browser, base, name)
        assert not result["problems"], f"{name}:\n" + "\n".join(result["problems"])

    return lab, test_notebook_as_a_learner_sees_it


if __name__ == "__main__":
    print(summarise())
