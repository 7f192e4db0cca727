"""A real browser moves notebook 00's first knob and the plotted line tilts the right way:
the one browser check that knows what a slider *means* (the per-notebook checks in
test_browser_lab_*.py only know that something visible changed).

Skipped (with the reason) when Chromium or playwright is missing, unless
COURSE_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
A screenshot is saved under artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import pytest
from browser_support import ARTIFACTS, chromium, lab_server, log_console, require_browser, run_all

pytestmark = pytest.mark.browser

LINE_Y = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const gd = plots.find(p => p.data && p.data.length > 1 && p.data[1].name === 'your line');
  return gd ? Array.from(gd.data[1].y) : null;
}"""

LINE_CHANGED = f"""(before) => {{
  const now = ({LINE_Y})();
  return now !== null && (now[0] !== before[0] || now[1] !== before[1]);
}}"""


def test_knob_w_tilts_the_line(tmp_path):
    require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with lab_server(tmp_path, ["00_welcome.ipynb"]) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        run_all(page, base, "00_welcome.ipynb")
        page.wait_for_function(f"() => ({LINE_Y})() !== null", timeout=30_000)
        handle = page.locator(".widget-slider .noUi-handle").first  # knob w
        handle.scroll_into_view_if_needed()
        before = page.evaluate(LINE_Y)
        handle.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(LINE_CHANGED, arg=before, timeout=30_000)
        after = page.evaluate(LINE_Y)
        logged = log_console(page)
        page.screenshot(path=str(ARTIFACTS / "00_welcome_knob.png"))
    slope = lambda y: (y[1] - y[0]) / 4.4  # the line is drawn between two x values 4.4 apart
    assert slope(after) > slope(before)
    assert logged == [], "moving a knob logged errors in JupyterLab's Log Console"
