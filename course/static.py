"""Static rendering of the course's widgets, for the website built by `python -m course.site`.

A static page cannot run the kernel, so a widget is shown as what it looks like at its
default values: the controls as labelled values, its text and HTML, its figure (a real
plotly figure: hover and zoom work, the sliders do not), and one visible line saying that
the controls move in JupyterLab and how to open the notebook there. Nothing fakes
interactivity.

Two entry points render the same widget tree:

* `live_figure_bundle(live)`: in the kernel, when COURSE_STATIC=1 (set by the site build),
  `LiveFigure._repr_mimebundle_` returns this instead of a widget view: the current figure as
  `application/vnd.plotly.v1+json` and the rest (controls, summary, note) as `text/html`,
  with FIGURE_SLOT marking where the figure goes.
* `widget_html(model_id, states)`: in the site build, for any other widget view left in an
  executed notebook, from the widget state nbclient saved in the notebook's metadata.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, Callable

FIGURE_SLOT = "<!--course-figure-slot-->"
BOXES = {"VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel",
         "StackModel"}
TEXTS = {"HTMLModel", "HTMLMathModel"}
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def notebook_name() -> str:
    return os.environ.get("COURSE_STATIC_NOTEBOOK", "")


def static_note(notebook: str | None = None) -> str:
    """The visible line under every static widget: what moves where, and how to open it."""
    notebook = notebook_name() if notebook is None else notebook
    where = f"notebooks/{notebook}" if notebook else "the notebook"
    return ('<div class="course-static-note">Static page: the controls above are shown at '
            'their default values and do not move here. In JupyterLab they drive the real '
            f'computation: <code>pip install -e . &amp;&amp; jupyter lab {html.escape(where)}'
            '</code> (see <a href="index.html#run-it-yourself">Run it yourself</a>).</div>')


def figure_div(figure: dict) -> str:
    """A plotly figure as a placeholder div plus its JSON; the site's script draws it."""
    data = json.dumps(figure, separators=(",", ":")).replace("</", "<\\/")
    return ('<div class="course-plotly"></div>'
            f'<script type="application/json" class="course-plotly-data">{data}</script>')


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return " – ".join(_fmt(v) for v in value)
    return str(value)


def _control(state: dict) -> str:
    labels = state.get("_options_labels")
    index = state.get("index")
    if labels is not None and isinstance(index, int) and 0 <= index < len(labels):
        value = labels[index]
    else:
        value = state.get("value", "")
    label = html.escape(str(state.get("description") or ""))
    shown = html.escape(_fmt(value))
    if state.get("_model_name") == "TextModel":
        shown = f"“{shown}”"
    return (f'<span class="course-control"><span class="course-control-label">{label}</span> '
            f'<span class="course-control-value">{shown}</span></span>')


def render_outputs(outputs: list[dict], states: dict, figure: Callable[[dict], str]) -> str:
    """Notebook-style outputs (as saved in an Output widget's state) as HTML."""
    parts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
            parts.append(f'<pre class="course-stream">'
                         f'{html.escape("".join(text) if isinstance(text, list) else text)}</pre>')
        elif kind == "error":
            parts.append(f'<pre class="course-error">{html.escape(out.get("ename", ""))}: '
                         f'{html.escape(out.get("evalue", ""))}</pre>')
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            parts.append(render_data(data, states, figure))
    return "".join(parts)


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def render_data(data: dict, states: dict, figure: Callable[[dict], str]) -> str:
    """One mime bundle as HTML: widget view, plotly figure, HTML, image or text."""
    if WIDGET_MIME in data:
        return widget_html(data[WIDGET_MIME].get("model_id", ""), states, figure)
    if PLOTLY_MIME in data:
        fig = figure(data[PLOTLY_MIME])
        page = _joined(data.get("text/html", ""))
        return page.replace(FIGURE_SLOT, fig) if FIGURE_SLOT in page else page + fig
    if "text/html" in data:
        return _joined(data["text/html"])
    if "image/png" in data:
        return f'<img alt="output" src="data:image/png;base64,{_joined(data["image/png"])}">'
    if "text/plain" in data:
        return f'<pre>{html.escape(_joined(data["text/plain"]))}</pre>'
    return ""


def _plotly_widget_figure(state: dict) -> dict | None:
    data, layout = state.get("_widget_data"), state.get("_widget_layout")
    if isinstance(data, list) and isinstance(layout, dict):
        return {"data": data, "layout": layout}
    return None


def widget_html(model_id: str, states: dict, figure: Callable[[dict], str] = figure_div,
                _depth: int = 0) -> str:
    """A widget (and its children) as static HTML. `states` maps model ids to
    {"model_name": ..., "state": {...}} as in the notebook's widget-state metadata."""
    entry = states.get(model_id)
    if entry is None or _depth > 30:
        return ('<div class="course-widget-missing">(an interactive widget: it runs in '
                'JupyterLab)</div>')
    name, state = entry.get("model_name", ""), entry.get("state", {})
    rec = lambda ref: widget_html(ref.removeprefix("IPY_MODEL_"), states, figure, _depth + 1)
    if name in BOXES:
        row = name == "HBoxModel"
        inner = "".join(rec(c) for c in state.get("children", []) if isinstance(c, str))
        return f'<div class="course-box{" course-row" if row else ""}">{inner}</div>'
    if name in TEXTS:
        return f'<div class="course-html">{state.get("value", "")}</div>' if state.get(
            "value") else ""
    if name == "LabelModel":
        return f'<span class="course-label">{html.escape(str(state.get("value", "")))}</span>'
    if name == "ButtonModel":
        return (f'<button class="course-button" disabled>'
                f'{html.escape(str(state.get("description", "")))}</button>')
    if name == "OutputModel":
        inner = render_outputs(state.get("outputs", []), states, figure)
        return f'<div class="course-output">{inner}</div>'
    if name in ("IntProgressModel", "FloatProgressModel"):
        return (f'<progress class="course-progress" value="{state.get("value", 0)}" '
                f'max="{state.get("max", 100)}"></progress>')
    fig = _plotly_widget_figure(state)
    if fig is not None:
        return figure(fig)
    if "value" in state or "index" in state:
        return _control(state)
    return ""


# ----------------------------------------------------------------------------- in the kernel


def _live_states(root) -> dict:
    """The widget tree under `root` as {model_id: {"model_name", "state"}} (live objects)."""
    import plotly.graph_objects as go

    states, todo = {}, [root]
    while todo:
        w = todo.pop()
        if w.model_id in states:
            continue
        if isinstance(w, go.FigureWidget):  # drawn from the bundle's plotly JSON instead
            state = {"_model_name": "FigureWidget", "_widget_data": [], "_widget_layout": {}}
        else:
            state = w.get_state()
            for child in getattr(w, "children", ()) or ():
                todo.append(child)
        states[w.model_id] = {"model_name": state.get("_model_name", ""), "state": state}
    return states


def _figure_json(fig) -> dict:
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def live_figure_bundle(live) -> dict:
    """The mime bundle of a LiveFigure on a static page (see the module docstring)."""
    slot = lambda _fig: FIGURE_SLOT
    page = widget_html(live.widget.model_id, _live_states(live.widget), figure=slot)
    bundle = {"text/plain": f"<LiveFigure: {', '.join(live.controls)} (static page)>"}
    if live.fig is not None:
        bundle[PLOTLY_MIME] = _figure_json(live.fig)
        if page.count(FIGURE_SLOT) != 1:  # the figure is drawn once, where it sits
            page = page.replace(FIGURE_SLOT, "") + FIGURE_SLOT
    else:
        page = page.replace(FIGURE_SLOT, "")
    bundle["text/html"] = f'<div class="course-widget">{page}{static_note()}</div>'
    return bundle
