"""App mode's figures (Voila): static figures are drawn after the first slider, and a live
figure is HTML in an Output widget (no FigureWidget, whose state carries plotly's 5 MB
bundle). The browser side runs in tests/test_browser_voila.py."""

import json
import re

import plotly.graph_objects as go
import pytest

import course.widgets as widgets
from course.plots import APP_RENDERER, AppRenderer
from course.widgets import AppFigure, Figure, LiveFigure, slider


def _figure_in(html: str) -> dict:
    """The figure JSON an app-mode HTML output draws."""
    found = re.search(r"const f = (\{.*\}); Plotly\.newPlot", html)
    assert found, html[:300]
    return json.loads(found.group(1))


def test_static_figures_wait_for_the_first_slider():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[3, 4], name="tokens"))
    html = AppRenderer().to_mimebundle(fig.to_dict())["text/html"]
    assert _figure_in(html)["data"][0]["y"] == [3, 4]
    # drawn through the page's queue, which waits for a slider handle (or a time limit)
    assert "window.courseDrawLater(function" in html
    assert ".widget-slider .noUi-handle" in html
    assert html.count("</script>") == 1  # figure text cannot end the script early
    assert html.startswith('<div style="height:525px; width:100%;">')  # plotly's defaults


def test_a_figure_keeps_its_own_size():
    fig = go.Figure(layout=dict(height=300, width=640))
    html = AppRenderer().to_mimebundle(fig.to_dict())["text/html"]
    assert html.startswith('<div style="height:300px; width:640px;">')


def test_plotly_js_goes_in_the_page_once_as_inert_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display_html",
                        lambda html, raw: shown.append(html))
    renderer = AppRenderer()
    renderer.html(go.Figure().to_dict())
    renderer.html(go.Figure().to_dict())
    renderer.activate()  # plotly's own activation of the default renderer: no second copy
    assert len(shown) == 1
    assert '<script type="text/plain" id="course-plotlyjs">' in shown[0]
    assert len(shown[0]) > 1_000_000  # the whole plotly.js, local: nothing from a CDN


@pytest.fixture
def app_mode(monkeypatch):
    monkeypatch.setattr(widgets, "in_voila", lambda: True)
    monkeypatch.setattr(APP_RENDERER, "activated", True)  # no plotly.js into test output


def _live():
    controls = dict(a=slider("a", 1, 5, 1))
    fig = go.Figure(go.Scatter(x=[0], y=[0], name="a squared"))

    def draw(fig, result):
        fig.data[0].y = [result]

    return LiveFigure(controls, lambda a: a * a, draw, fig)


def test_app_mode_live_figure_is_html_redrawn_on_each_change(app_mode):
    live = _live()
    assert isinstance(live.fig, AppFigure)
    assert live.widget.children[-1] is live.fig.widget  # an Output widget, not a FigureWidget
    assert _figure_in(live.fig.widget.outputs[0]["data"]["text/html"])["data"][0]["y"] == [1]
    live.controls["a"].value = 3
    outputs = live.fig.widget.outputs
    assert len(outputs) == 1 and outputs[0]["output_type"] == "display_data"
    assert _figure_in(outputs[0]["data"]["text/html"])["data"][0]["y"] == [9]
    assert live.fig.data[0].y == (9,)  # the figure object, as in JupyterLab


def test_outside_the_app_live_figures_stay_figure_widgets():
    live = _live()
    assert isinstance(live.fig, Figure) and live.widget.children[-1] is live.fig
