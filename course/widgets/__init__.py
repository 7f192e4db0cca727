"""The one pattern every notebook uses to bind sliders to a computation and a figure.

    live = LiveFigure(controls, compute, draw, figure)

* `compute(**values)` is a pure function from `course/<idea>.py` (or a thin wrapper);
* `draw(fig, result)` updates the traces of the `go.FigureWidget` in place (no redraw,
  no flicker);
* a `ValueError` from `compute` becomes a short red sentence under the controls and the
  last good figure stays;
* `live.apply(**values)` sets several controls and recomputes once (used by tests and by
  `course.bench`); setting `slider.value` from code runs the same update.

Each idea's widget builders live in `course/widgets/<idea>.py` and register themselves
with `register_bench` so `python -m course.bench` times them.
"""

from __future__ import annotations

import copy
import html
import os
from dataclasses import dataclass
from typing import Any, Callable

import ipywidgets as W
import plotly.graph_objects as go


class LiveFigure:
    def __init__(self, controls: dict[str, W.ValueWidget], compute: Callable[..., Any],
                 draw: Callable[[go.FigureWidget, Any], None], figure: go.Figure | None = None,
                 summary: Callable[[Any], str] | None = None, extra: list | None = None):
        self.controls = controls
        self.compute = compute
        self.draw = draw
        self.summarise = summary
        self.fig = go.FigureWidget(figure) if figure is not None else None
        self.message = W.HTML(layout=W.Layout(min_height="1.5em"))
        self.summary = W.HTML()
        self.result: Any = None
        self.error: str | None = None
        self._paused = False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        parts = [W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                 *(extra or []), self.message, self.summary]
        if self.fig is not None:
            parts.append(self.fig)
        self.widget = W.VBox(parts)
        self.update()

    def values(self) -> dict[str, Any]:
        # Browsers echo floats back with rounding noise (2.0 -> 1.9999999999999998).
        return {k: round(c.value, 10) if isinstance(c.value, float) else c.value
                for k, c in self.controls.items()}

    def update(self) -> Any:
        """Recompute from the controls' values and redraw in place; return the result."""
        try:
            result = self.compute(**self.values())
        except ValueError as err:
            self.error = str(err)
            self.message.value = (f'<span style="color:#c53030">⚠ '
                                  f'{html.escape(self.error)}</span>')
            return None
        self.error, self.message.value, self.result = None, "", result
        if self.fig is not None:
            with self.fig.batch_update():
                self.draw(self.fig, result)
            self._keep_view_state_current()
        elif self.draw is not None:
            self.draw(None, result)
        if self.summarise is not None:
            self.summary.value = self.summarise(result)
        return result

    def _keep_view_state_current(self) -> None:
        # subtle: plotly sends in-place updates to open views as one-off messages, and
        # refreshes the synced state a *new* view is built from only when the figure is
        # displayed. A view created after a code-driven update (Voila renders only once the
        # whole notebook has run) would show stale data, so keep that state current too.
        self.fig._widget_data = copy.deepcopy(self.fig._data)
        self.fig._widget_layout = copy.deepcopy(self.fig._layout_obj._props)

    def apply(self, **values) -> Any:
        """Set several controls at once and recompute once."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"no control named {', '.join(sorted(unknown))}")
        self._paused = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._paused = False
        return self.update()

    def _on_change(self, _change) -> None:
        if not self._paused:
            self.update()

    def _repr_mimebundle_(self, **kwargs):
        if os.environ.get("COURSE_STATIC") == "1":  # `python -m course.site`: a static page
            from course.static import live_figure_bundle
            return live_figure_bundle(self)
        return self.widget._repr_mimebundle_(**kwargs)


def slider(description: str, min: float, max: float, value: float, step: float = 1,
           slow: bool = False, fmt: str | None = None, width: str = "320px") -> W.ValueWidget:
    """An int or float slider in the course's style; `slow=True` updates on release only."""
    is_int = all(float(v).is_integer() for v in (min, max, value, step))
    cls = W.IntSlider if is_int else W.FloatSlider
    kwargs = dict(description=description, min=min, max=max, value=value, step=step,
                  continuous_update=not slow, style={"description_width": "initial"},
                  layout=W.Layout(width=width))
    if fmt and not is_int:
        kwargs["readout_format"] = fmt
    return cls(**kwargs)


def log_slider(description: str, min_exp: float, max_exp: float, value: float,
               step: float = 0.1, slow: bool = False, width: str = "320px") -> W.FloatLogSlider:
    return W.FloatLogSlider(description=description, base=10, min=min_exp, max=max_exp,
                            value=value, step=step, continuous_update=not slow,
                            style={"description_width": "initial"},
                            layout=W.Layout(width=width))


def dropdown(description: str, options, value=None) -> W.Dropdown:
    options = list(options)
    return W.Dropdown(description=description, options=options,
                      value=options[0] if value is None else value,
                      style={"description_width": "initial"})


# ----------------------------------------------------------------------------- benchmark


@dataclass
class BenchEntry:
    name: str
    notebook: str
    build: Callable[[], LiveFigure]
    sweep: Callable[[], list[dict]]


BENCH: dict[str, BenchEntry] = {}


def register_bench(name: str, notebook: str, sweep: Callable[[], list[dict]]):
    """Decorator for a widget factory: `course.bench` builds it and times `apply` over
    each dict of control values that `sweep()` returns."""
    def wrap(factory: Callable[[], LiveFigure]) -> Callable[[], LiveFigure]:
        BENCH[name] = BenchEntry(name, notebook, factory, sweep)
        return factory
    return wrap
