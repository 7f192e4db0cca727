"""The one pattern every notebook uses to bind sliders to a computation and a figure.

    live = LiveFigure(controls, compute, draw, figure)

* `compute(**values)` is a pure function from `course/<idea>.py` (or a thin wrapper);
* `draw(fig, result)` updates the traces of the figure in place (no redraw, no flicker);
* a `ValueError` from `compute` becomes its own short red sentence under the controls; any
  other exception from compute, draw or summary becomes "something went wrong: ..." and its
  traceback goes to the `course.widgets` logger (and `live.traceback`), never to JupyterLab's
  Log Console; the last good figure stays;
* `live.apply(**values)` sets several controls and recomputes once, synchronously, and
  returns the result (tests and `course.bench` use it); setting `slider.value` from code
  also recomputes synchronously.

Slow computations (`progress=True`): `compute` takes a keyword `progress`, a callable
`progress(done: int, total: int, text: str)`, and calls it every few steps; the widget shows
an ipywidgets progress bar and the line "{text}: step {done}/{total}". A change made in the
browser then runs in a background thread, so the kernel stays free: the last figure stays
until the new result is ready, and a change made during a run stops that run at its next
`progress` call (the latest setting wins; changes never queue up). Code can wait for it
with `live.wait()`; tests simulate a browser change with `control.set_state({"value": x})`
(or `{"index": i}` for a dropdown or selection slider), then call `live.wait()`.

Controls that cannot act at the current values are disabled, with a one-line reason, by
`course.widgets.gates.gate` (its hint line goes in `extra`).

Each idea's widget builders live in `course/widgets/<idea>.py` and register themselves
with `register_bench` so `python -m course.bench` times them.
"""

from __future__ import annotations

import copy
import html
import logging
import os
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from traitlets import observe

from course.plots import APP_RENDERER, COLORS, in_voila
from course.timing import one_thread

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # silent unless the learner configures logging

ERROR_STYLE = f"color:{COLORS['bad']}"
#: Seconds between progress updates sent to the browser (the first and the last are always
#: sent). Each one is redrawn by the browser beside the training run.
PROGRESS_EVERY_S = 0.25


class Superseded(Exception):
    """Raised by a run's `progress` callback when a newer setting has arrived: the run
    stops there and the newer one starts."""


class Figure(go.FigureWidget):
    """`go.FigureWidget` whose in-place updates a browser applies without errors.

    subtle: plotly's own `batch_update` merges the edits of several traces into one
    `update` message and pads the properties that only some traces changed with
    `undefined` (e.g. `x: [undefined, [0, 1]]` when trace 1 got a new `y` and trace 2 new
    `x` and `y`). The browser then drops trace 1's `x` from its copy of the figure, so the
    "trace delta" it sends back lists the trace's own data (x = -2.2, 2.2) as if it were a
    plotly.js default, as an index-keyed object; plotly's Python handler stores it and
    tests `not <numpy array>`: "ValueError: The truth value of an array ... is ambiguous"
    in the kernel's comm handler, i.e. in JupyterLab's Log Console, once per move. Here a
    batch sends one message per group of traces that changed the same properties (no
    padding), and incoming deltas never overwrite a trace's own data arrays.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._edit_lock = threading.RLock()  # a background run's draw vs the kernel's handlers

    @contextmanager
    def batch_update(self):
        if self._in_batch_mode:
            yield
            return
        try:
            self._in_batch_mode = True
            yield
        finally:
            self._in_batch_mode = False
            edits = {i: dict(style) for i, style in self._batch_trace_edits.items()}
            layout = dict(self._batch_layout_edits) or None
            self._batch_trace_edits.clear()
            self._batch_layout_edits.clear()
            groups: dict[tuple, list[int]] = {}
            for i in sorted(edits):
                groups.setdefault(tuple(sorted(edits[i])), []).append(i)
            for props, traces in groups.items():
                self.plotly_update(restyle_data={p: [edits[i][p] for i in traces]
                                                 for p in props},
                                   relayout_data=layout, trace_indexes=traces)
                layout = None
            if layout:
                self.plotly_update(relayout_data=layout)

    @observe("_js2py_traceDeltas")
    def _handler_js2py_traceDeltas(self, change):
        msg = change["new"]
        if msg:
            by_uid = {trace.uid: trace for trace in self.data}
            for delta in msg.get("trace_deltas", []):
                trace = by_uid.get(delta.get("uid"))
                own = trace._props if trace is not None else {}
                for key in [k for k in delta if _is_data(own.get(k))]:
                    del delta[key]  # a trace's own data is never a plotly.js default
        with self._edit_lock:
            try:
                super()._handler_js2py_traceDeltas(change)
            except Exception:  # the figure already shows the right thing: never leak
                log.exception("plotly could not apply a trace delta from the browser")
                self._js2py_traceDeltas = None

    def keep_view_state_current(self) -> None:
        """Make the state a *new* view is built from equal the current figure.

        subtle: plotly sends in-place updates to open views as one-off messages and
        refreshes the synced `_widget_data`/`_widget_layout` only when the figure is
        displayed; a view created after a code-driven update (Voila renders only once the
        whole notebook has run) would show stale data. Open views already have the update,
        so the traits are replaced without a sync message (a new view asks the kernel for
        its state and gets these)."""
        self._trait_values["_widget_data"] = copy.deepcopy(self._data)
        self._trait_values["_widget_layout"] = copy.deepcopy(self._layout_obj._props)


class AppFigure(go.Figure):
    """A live figure for app mode (Voila): a plain figure, drawn as HTML into an Output
    widget and redrawn whole after each change (`draw` functions edit it as they edit a
    `Figure`).

    subtle: a FigureWidget is an anywidget whose state carries plotly's 5 MB JavaScript
    bundle. Voila sends it in one websocket frame and the browser evaluates it before it
    shows the page's first slider (on 08: about 1.2 s of the browser's main thread, plus
    the transfer). App mode's static figures already load plotly.js once
    (`course.plots.AppRenderer`); this figure uses that copy.
    """

    def __init__(self, figure):
        super().__init__(figure)
        self._edit_lock = threading.RLock()
        self._output = W.Output()
        self.redraw()

    @property
    def widget(self) -> W.Output:
        return self._output

    def redraw(self) -> None:
        """Replace the drawn figure with the current one (the app's renderer's HTML)."""
        html_out = {"output_type": "display_data", "metadata": {},
                    "data": {"text/html": APP_RENDERER.html(self.to_dict())}}
        self._output.outputs = (html_out,)

    def keep_view_state_current(self) -> None:
        self.redraw()


def _is_data(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, (list, tuple)) and not any(isinstance(v, dict) for v in value)


class LiveFigure:
    def __init__(self, controls: dict[str, W.ValueWidget], compute: Callable[..., Any],
                 draw: Callable[[go.FigureWidget, Any], None] | None,
                 figure: go.Figure | None = None, summary: Callable[[Any], str] | None = None,
                 extra: list | None = None, progress: bool = False):
        self.controls = controls
        self.compute = compute
        self.draw = draw
        self.summarise = summary
        fig_class = AppFigure if in_voila() else Figure
        self.fig = fig_class(figure) if figure is not None else None
        self.message = W.HTML(layout=W.Layout(min_height="1.5em"))
        self.summary = W.HTML()
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.uses_progress = progress
        self.progress_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                            layout=W.Layout(width="240px"))
        self.progress_text = W.HTML()
        self.progress_box = W.HBox([self.progress_bar, self.progress_text],
                                   layout=W.Layout(display="none", align_items="center"))
        self._paused = False
        self._lock = threading.RLock()  # guards the run bookkeeping below
        self._draw_lock = threading.RLock()  # one draw at a time
        self._generation = 0  # bumped by every request; older runs are stale
        self._pending: tuple[int, dict] | None = None
        self._worker: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        for control in controls.values():
            control.observe(self._on_change, names="value")
        parts = [W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                 *(extra or [])]
        if progress:
            parts.append(self.progress_box)
        parts += [self.message, self.summary]
        if self.fig is not None:
            parts.append(self.fig.widget if isinstance(self.fig, AppFigure) else self.fig)
        self.widget = W.VBox(parts)
        self.update()

    def values(self) -> dict[str, Any]:
        # Browsers echo floats back with rounding noise (2.0 -> 1.9999999999999998).
        return {k: round(c.value, 10) if isinstance(c.value, float) else c.value
                for k, c in self.controls.items()}

    # ------------------------------------------------------------------ running compute

    def update(self) -> Any:
        """Recompute from the controls' values now, in this thread, and redraw in place;
        return the result (None after an error). A background run still going is stopped."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        return self._run(self.values(), generation)

    def submit(self) -> None:
        """Recompute in a background thread (what a browser change does with
        `progress=True`): the latest values win, a run in progress is stopped."""
        with self._lock:
            self._generation += 1
            self._pending = (self._generation, self.values())
            self._idle.clear()
            generation = self._generation
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True,
                                                name="LiveFigure")
                self._worker.start()
        # Within 50 ms, unless the result (or the compute's own progress) came first.
        timer = threading.Timer(0.05, self._show_working, args=(generation,))
        timer.daemon = True
        timer.start()

    def _show_working(self, generation: int) -> None:
        if self.busy and not self._stale(generation) and self._progress_hidden():
            self.progress_bar.value = 0.0
            self.progress_text.value = "working on the new setting…"
            self.progress_box.layout.display = "flex"

    def wait(self, timeout: float | None = 120) -> Any:
        """Wait until background runs are done; return the current result."""
        if not self._idle.wait(timeout):
            raise TimeoutError(f"the widget was still computing after {timeout} s")
        return self.result

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._pending is None:
                    self._worker = None
                    self._idle.set()
                    return
                generation, values = self._pending
                self._pending = None
            # One torch thread for background runs: at toy size two threads gain ~10% on an
            # idle machine but are many times slower when another process (a second kernel)
            # also wants the cores (measured: 32 s instead of 5 s for one MTP training).
            with one_thread():
                self._run(values, generation)

    def _stale(self, generation: int) -> bool:
        return generation != self._generation

    def _run(self, values: dict, generation: int) -> Any:
        kwargs = dict(values)
        if self.uses_progress:
            kwargs["progress"] = self._progress_callback(generation)
        try:
            try:
                result = self.compute(**kwargs)
            except Superseded:
                return None
            except ValueError as err:
                return self._fail(generation, str(err))
            except Exception as err:  # noqa: BLE001 - the widget must never leak
                return self._fail(generation, _went_wrong(err), err)
            with self._draw_lock:
                if self._stale(generation):
                    return None  # a newer setting is on its way
                try:
                    self._draw(result)
                    summary = self.summarise(result) if self.summarise is not None else None
                except Exception as err:  # noqa: BLE001
                    return self._fail(generation, _went_wrong(err), err)
                self.error, self.traceback, self.message.value = None, None, ""
                self.result = result
                if summary is not None:
                    self.summary.value = summary
                return result
        finally:
            if not self._stale(generation) or self._pending is None:
                self._hide_progress()

    def _draw(self, result) -> None:
        if self.fig is not None:
            with self.fig._edit_lock, self.fig.batch_update():
                self.draw(self.fig, result)
            self.fig.keep_view_state_current()
        elif self.draw is not None:
            self.draw(None, result)

    def _fail(self, generation: int, sentence: str, err: Exception | None = None) -> None:
        if err is not None:
            self.traceback = "".join(traceback.format_exception(err))
            log.error("widget computation failed: %s", sentence, exc_info=err)
        with self._draw_lock:
            if self._stale(generation):
                return None
            self.error = sentence
            self.message.value = (f'<span style="{ERROR_STYLE}">⚠ '
                                  f'{html.escape(sentence)}</span>')
        return None

    # ------------------------------------------------------------------ progress, hints

    def _progress_callback(self, generation: int) -> Callable[[int, int, str], None]:
        last = [float("-inf")]

        def progress(done: int, total: int, text: str = "") -> None:
            if self._stale(generation):
                raise Superseded()
            now = time.monotonic()
            if 0 < done < total and now - last[0] < PROGRESS_EVERY_S:
                return
            last[0] = now
            total = max(int(total), 1)
            self.progress_bar.max = float(total)
            self.progress_bar.value = float(min(max(int(done), 0), total))
            self.progress_text.value = html.escape(f"{text}: step {int(done)}/{total}"
                                                   if text else f"step {int(done)}/{total}")
            self.progress_box.layout.display = "flex"

        return progress

    def _progress_hidden(self) -> bool:
        return self.progress_box.layout.display == "none"

    def _hide_progress(self) -> None:
        if not self._progress_hidden():
            self.progress_box.layout.display = "none"

    # ------------------------------------------------------------------ controls

    def apply(self, **values) -> Any:
        """Set several controls at once and recompute once, synchronously."""
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

    def _on_change(self, change) -> None:
        if self._paused:
            return
        # A change that comes from the browser arrives inside the control's `set_state`,
        # which locks the synced properties; a change made by code does not.
        if self.uses_progress and getattr(change["owner"], "_property_lock", None):
            self.submit()
        else:
            self.update()

    def _repr_mimebundle_(self, **kwargs):
        if os.environ.get("COURSE_STATIC") == "1":  # `python -m course.site`: a static page
            from course.static import live_figure_bundle
            return live_figure_bundle(self)
        return self.widget._repr_mimebundle_(**kwargs)


def _went_wrong(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"something went wrong: {type(err).__name__}" + (f": {text}" if text else "")


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
    clear: Callable[[], None] | None = None


BENCH: dict[str, BenchEntry] = {}


def register_bench(name: str, notebook: str, sweep: Callable[[], list[dict]],
                   clear: Callable[[], None] | None = None):
    """Decorator for a widget factory: `course.bench` builds it and times `apply` over
    each dict of control values that `sweep()` returns. `clear()` (for widgets that cache
    what they compute) forgets every cached result, so the bench can time uncached moves."""
    def wrap(factory: Callable[[], LiveFigure]) -> Callable[[], LiveFigure]:
        BENCH[name] = BenchEntry(name, notebook, factory, sweep, clear)
        return factory
    return wrap
