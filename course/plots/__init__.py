"""Figure builders: data in, a plotly figure out. One look for the whole course.

Shared pieces live here (the template, colours, `figure()`); each idea's builders live in
`course/plots/<idea>.py` and import from here. Builders compute nothing a test needs:
every number they draw comes from `course/<idea>.py`.
"""

from __future__ import annotations

import os
import sys

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
    """Static figures for app mode (Voila): HTML with the local plotly.js, loaded once.

    JupyterLab shows figures through the jupyterlab-plotly renderer, which in Voila throws
    "r.setData is not a function" on every figure (it caches a PNG into a model that Voila's
    output area lacks). plotly's own "notebook" renderer works there but links MathJax from
    a public CDN; this one is the same without MathJax, so an offline room loads nothing
    from outside.
    """

    def __init__(self):
        super().__init__(connected=False, full_html=False, global_init=True,
                         include_plotlyjs=False)

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, config=self.config, include_plotlyjs=False,
                           include_mathjax=False, full_html=False, default_width="100%",
                           default_height=525, validate=False)
        return {"text/html": html}


def in_voila() -> bool:
    """True in a kernel that Voila started (it sets VOILA_PREHEAT in every kernel's env)."""
    return "VOILA_PREHEAT" in os.environ


pio.renderers["course_app"] = AppRenderer()
if in_voila():
    pio.renderers.default = "course_app"
