"""Figure builders: data in, a plotly figure out. One look for the whole course.

Shared pieces live here (the template, colours, `figure()`); each idea's builders live in
`course/plots/<idea>.py` and import from here. Builders compute nothing a test needs:
every number they draw comes from `course/<idea>.py`.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

# subtle: plotly's renderers import nbformat (for a version check), nbformat imports
# jsonschema, and jsonschema's format checkers import rfc3987_syntax, which compiles ~35
# Earley parsers at import: 1.8 s of every notebook's first cell on a 2-core laptop
# (python-jsonschema/jsonschema#1428). The course never validates the two formats it
# checks ("iri", "iri-reference"); marked missing, jsonschema leaves just those two out.
# Only when nothing has imported it yet: a process that already paid keeps the checker.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)

import plotly.graph_objects as go  # noqa: E402
import plotly.io as pio  # noqa: E402
from plotly.io.base_renderers import HtmlRenderer  # noqa: E402

#: One colour per role, used consistently across notebooks. The Okabe-Ito palette
#: (Okabe & Ito, "Color Universal Design", 2008): its colours stay distinct for the common
#: forms of colour blindness, so "good" (bluish green) and "bad" (vermillion) differ in
#: lightness too. Figures still say everything in a legend, label or hover as well.
COLORS = {
    "primary": "#0072B2",    # blue
    "secondary": "#E69F00",  # orange
    "good": "#009E73",       # bluish green
    "bad": "#D55E00",        # vermillion
    "neutral": "#7F7F7F",    # grey
    "accent": "#CC79A7",     # reddish purple
}
#: A qualitative sequence for categories (experts, devices, schedules...): Okabe-Ito first,
#: then darker variants for the rare figure with more than eight categories.
SEQUENCE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
            "#000000", "#7F7F7F", "#8C510A"]

pio.templates["course"] = go.layout.Template(
    layout=dict(
        font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#1a202c"),
        title=dict(font=dict(size=16), x=0.02, xanchor="left"),
        colorway=SEQUENCE,
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis=dict(showgrid=True, gridcolor="#edf2f7", zeroline=False, linecolor="#a0aec0"),
        yaxis=dict(showgrid=True, gridcolor="#edf2f7", zeroline=False, linecolor="#a0aec0"),
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
        margin=dict(l=60, r=20, t=50, b=50),
        hoverlabel=dict(font_size=12),
    )
)
TEMPLATE = "plotly_white+course"

WIDTH, HEIGHT = 720, 400


def figure(title: str = "", x_title: str = "", y_title: str = "", height: int = HEIGHT,
           width: int | None = WIDTH, **layout) -> go.Figure:
    """An empty figure in the course's look. Axis titles should carry units."""
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=title, height=height, width=width, **layout)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


class AppRenderer(HtmlRenderer):
    """Static figures for app mode (Voila): HTML with the local plotly.js, loaded once,
    drawn once the page's first slider is there.

    JupyterLab shows figures through the jupyterlab-plotly renderer, which in Voila throws
    "r.setData is not a function" on every figure (it caches a PNG into a model that Voila's
    output area lacks). plotly's own "notebook" renderer works there but links MathJax from
    a public CDN; this one is the same without MathJax, so an offline room loads nothing
    from outside.

    subtle: Voila runs each output's script as it attaches the outputs, before it connects
    to the kernel, so drawing the figures above a widget (0.2-0.5 s each in Chromium here)
    delayed the widget. Here each figure waits for the first slider (or `DRAW_AFTER_MS`, for
    a page without one), then the figures are drawn one task at a time.
    """

    def __init__(self):
        super().__init__(connected=False, full_html=False, global_init=True,
                         include_plotlyjs=False)
        self.activated = False

    def html(self, fig_dict: dict) -> str:
        """The figure's HTML; the first call also puts plotly.js in the page."""
        self.activate()
        return self.to_mimebundle(fig_dict)["text/html"]

    def activate(self):
        """Put plotly.js in the page (once) as inert text: `DRAW_LATER_JS` runs it before the
        first draw (evaluating it took 0.75 s of the browser's main thread, ahead of the
        widgets)."""
        from IPython.display import display_html
        from plotly.offline import get_plotlyjs

        if self.activated:
            return
        self.activated = True
        display_html('<script>window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
                     f'<script type="text/plain" id="course-plotlyjs">{get_plotlyjs()}</script>',
                     raw=True)

    def to_mimebundle(self, fig_dict):
        div_id = f"course-figure-{uuid.uuid4().hex}"
        layout = fig_dict.get("layout", {})
        height, width = (_css_size(layout, key, default)
                         for key, default in (("height", "525px"), ("width", "100%")))
        figure = pio.to_json({"data": fig_dict.get("data", []), "layout": layout},
                             validate=False)
        config = json.dumps({"responsive": True, **(self.config or {})})
        # "</" cannot end the script early from inside a JSON string written as "<\/"
        figure, config = (x.replace("</", "<\\/") for x in (figure, config))
        return {"text/html": (
            f'<div style="height:{height}; width:{width};"><div id="{div_id}" '
            f'class="plotly-graph-div" style="height:100%; width:100%;"></div><script>'
            f"{DRAW_LATER_JS}window.courseDrawLater(function () {{ "
            f'const gd = document.getElementById("{div_id}"); '
            f"if (gd) {{ const f = {figure}; Plotly.newPlot(gd, f.data, f.layout, {config}); }}"
            f" }});</script></div>")}


def _css_size(layout: dict, key: str, default: str) -> str:
    """The figure's own height or width (its layout's, else its template's) in CSS, as
    plotly's `to_html` sizes a figure's box."""
    value = layout.get(key, layout.get("template", {}).get("layout", {}).get(key))
    return f"{value}px" if isinstance(value, (int, float)) else default


#: How long a figure waits for a slider before it is drawn anyway (a page without widgets).
DRAW_AFTER_MS = 4000
#: ...and how long the figures wait once the slider is painted: the slider answers at once
#: (a key press in that time is handled before the figures).
DRAW_PAUSE_MS = 300
#: Defines `window.courseDrawLater(draw)` once per page: queue `draw` until the first slider
#: handle is in the page and has been painted (two animation frames and a pause), then run
#: plotly.js (once) and the queue, one draw per task, so the page answers between figures.
DRAW_LATER_JS = """if (!window.courseDrawLater) {
  const queue = []; let state = "waiting"; const t0 = Date.now();
  const drain = () => {
    const source = document.getElementById("course-plotlyjs");
    if (!window.Plotly && source) {
      const script = document.createElement("script");
      script.textContent = source.textContent;
      document.head.appendChild(script);
    }
    const next = queue.shift();
    if (!next) { state = "ready"; return; }
    try { next(); } finally { setTimeout(drain, 0); }
  };
  const poll = () => {
    if (document.querySelector(".widget-slider .noUi-handle") || Date.now() - t0 > %d) {
      state = "drawing";
      requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(drain, %d)));
    } else { setTimeout(poll, 50); }
  };
  window.courseDrawLater = (draw) => {
    queue.push(draw);
    if (state === "ready") { state = "drawing"; setTimeout(drain, 0); }
  };
  poll();
}
""" % (DRAW_AFTER_MS, DRAW_PAUSE_MS)


def in_voila() -> bool:
    """True in a kernel that Voila started (it sets VOILA_PREHEAT in every kernel's env)."""
    return "VOILA_PREHEAT" in os.environ


APP_RENDERER = pio.renderers["course_app"] = AppRenderer()
if in_voila():
    pio.renderers.default = "course_app"
