"""The shared widget layer (course.widgets.LiveFigure and its Figure), headless.

The browser side is simulated with the messages JupyterLab's plotly view really sends
(captured in Chromium, see `DELTA_FROM_BROWSER`), and browser-made control changes with
`control.set_state(...)`, which is what ipywidgets calls when the frontend moves a slider.
"""

import json
import logging
import threading
import time

import ipywidgets as W
import plotly.graph_objects as go
import pytest
from plotly.serializers import custom_serializers

from course.widgets import Figure, LiveFigure, slider
from course.widgets.welcome import turntable_widget


def _capture_updates(fig) -> list[dict]:
    """Every `update` message the kernel sends the browser's plotly views, as JSON."""
    sent = []
    to_json = custom_serializers["to_json"]

    def keep(change):
        if change["new"] is not None:
            sent.append(json.loads(json.dumps(to_json(change["new"], fig), default=str)))

    fig.observe(keep, names="_py2js_update")
    return sent


def _three_traces(cls):
    fig = cls(go.Figure([go.Scatter(x=[0, 1], y=[0, 1]), go.Scatter(x=[-2.2, 2.2], y=[0, 0]),
                         go.Scatter(x=[], y=[])]))
    sent = _capture_updates(fig)
    with fig.batch_update():  # what the turntable's draw does on every move
        fig.data[1].y = [1.0, 2.0]
        fig.data[2].x = [0, 1]
        fig.data[2].y = [8.7, 8.6]
        fig.layout.title = "w = 0.01"
    return fig, sent


def test_batched_updates_never_pad_traces_with_undefined():
    # plotly's own batch pads trace 1's x with `undefined` (the Log Console bug's trigger)
    _, plain = _three_traces(go.FigureWidget)
    assert "_undefined_" in json.dumps(plain)
    fig, sent = _three_traces(Figure)
    assert "_undefined_" not in json.dumps(sent)
    assert sorted(tuple(m["style_traces"]) for m in sent) == [(1,), (2,)]
    assert sum("title" in (m["layout_data"] or {}) for m in sent) == 1
    assert list(fig.data[1].y) == [1.0, 2.0] and list(fig.data[2].y) == [8.7, 8.6]
    assert list(fig.data[1].x) == [-2.2, 2.2]


def _delta_from_browser(fig) -> dict:
    """The trace delta Chromium's plotly view sent after a knob move in notebook 00 (before
    the fix): the line's own x, as an index-keyed object, next to real defaults."""
    line = {"dash": "solid", "backoff": "auto", "shape": "linear", "simplify": True}
    return {"trace_edit_id": fig._last_trace_edit_id, "trace_deltas": [
        {"uid": fig.data[0].uid, "visible": True, "opacity": 1, "index": 0},
        {"uid": fig.data[1].uid, "x": {"0": -2.2, "1": 2.2}, "line": line, "index": 1},
        {"uid": fig.data[2].uid, "line": dict(line, width=2), "index": 2}]}


def test_browser_echo_of_a_move_is_accepted():
    live = turntable_widget()
    live.controls["w"].set_state({"value": 1.0})  # the browser moves knob w
    # the plain FigureWidget raises in the comm handler: what JupyterLab's Log Console showed
    plain = go.FigureWidget(live.fig)
    plain.data[1].y = [0.5, 0.6]
    with pytest.raises(ValueError, match="truth value of an array"):
        plain.set_state({"_js2py_traceDeltas": _delta_from_browser(plain)})
    live.fig.set_state({"_js2py_traceDeltas": _delta_from_browser(live.fig)})
    assert list(live.fig.data[1].x) == pytest.approx([-2.2, 2.2])
    assert list(live.fig.data[1].y) == pytest.approx([1.0 * -2.2, 1.0 * 2.2])
    assert live.fig.data[1].line.dash == "solid"  # the real defaults are still taken


def _widget(compute, draw=None, **kw):
    fig = go.Figure(go.Scatter(x=[0], y=[0]))
    draw = draw or (lambda f, r: setattr(f.data[0], "y", [r]))
    return LiveFigure(dict(a=slider("a", 0, 10, 1), b=slider("b", 0, 10, 5)), compute, draw,
                      fig, **kw)


def test_any_compute_error_is_a_sentence_and_logged(caplog):
    def compute(a, b):
        if a == 7:
            raise ZeroDivisionError("division by zero")
        if a == 8:
            raise ValueError("a must not be 8.")
        return a + b

    live = _widget(compute)
    with caplog.at_level(logging.ERROR, logger="course.widgets"):
        assert live.apply(a=7) is None
    assert live.error == "something went wrong: ZeroDivisionError: division by zero"
    assert "something went wrong" in live.message.value
    assert "ZeroDivisionError" in caplog.text and "Traceback" in caplog.text
    assert "line" in live.traceback and live.fig.data[0].y == (6,)  # last good figure
    live.apply(a=8)
    assert live.error == "a must not be 8."  # a ValueError keeps its own sentence
    live.apply(a=2)
    assert live.error is None and live.message.value == "" and live.fig.data[0].y == (7,)


def test_any_draw_or_summary_error_is_a_sentence(caplog):
    def draw(fig, r):
        if r == 12:
            raise KeyError("no trace named 'loss'")
        fig.data[0].y = [r]

    live = _widget(lambda a, b: a + b, draw, summary=lambda r: f"{1 / (r - 13):.1f}")
    with caplog.at_level(logging.ERROR, logger="course.widgets"):
        live.controls["a"].value = 7  # from code: synchronous
    assert live.error.startswith("something went wrong: KeyError")
    assert live.fig.data[0].y == (6,) and "KeyError" in caplog.text
    live.apply(a=8)
    assert live.error.startswith("something went wrong: ZeroDivisionError")
    live.apply(a=9)
    assert live.error is None and live.summary.value == "1.0"


class Gate:
    """A slow compute that a test steps through: each call records its values, reports
    progress and waits for the test before each of its `steps` steps."""

    def __init__(self, steps=4):
        self.steps, self.calls, self.go = steps, [], threading.Semaphore(0)
        self.blocking = False  # the widget's first draw (in its constructor) runs freely

    def __call__(self, a, b, progress):
        self.calls.append((a, b))
        for step in range(self.steps):
            progress(step, self.steps, f"training with a = {a}")
            if self.blocking and not self.go.acquire(timeout=10):
                raise TimeoutError("the test never released the run")
        progress(self.steps, self.steps, f"training with a = {a}")
        return a * 10 + b


def test_apply_stays_synchronous_with_progress():
    seen = []

    def compute(a, b, progress):
        for step in range(3):
            progress(step, 3, "counting")
            seen.append((live.progress_box.layout.display, live.progress_text.value))
        return a + b

    live = None
    live = _widget(compute, progress=True)
    seen.clear()
    assert live.apply(a=3) == 8 and live.fig.data[0].y == (8,)
    assert seen[0] == ("flex", "counting: step 0/3")  # the bar and its line are shown...
    assert live.progress_box.layout.display == "none"  # ...and hidden when done
    assert live.progress_box in live.widget.children
    assert isinstance(live.progress_bar, (W.FloatProgress, W.IntProgress))


def test_browser_changes_run_in_background_and_the_latest_wins():
    gate = Gate()
    live = _widget(gate, progress=True)  # the initial draw runs synchronously
    assert gate.calls == [(1, 5)] and live.result == 15
    gate.calls.clear()
    gate.blocking = True
    start = time.perf_counter()
    live.controls["a"].set_state({"value": 2})  # as the browser does: returns at once
    assert time.perf_counter() - start < 0.5 and live.busy
    # the bar shows at once (within 100 ms on an idle machine; margin for a busy one)
    deadline = time.perf_counter() + 0.5
    while live.progress_text.value != "training with a = 2: step 0/4" and \
            time.perf_counter() < deadline:
        time.sleep(0.005)
    assert live.progress_box.layout.display == "flex"
    assert live.progress_text.value == "training with a = 2: step 0/4"
    assert live.fig.data[0].y == (15,)  # the last result stays while it runs
    live.controls["a"].set_state({"value": 3})  # two more moves during the run
    live.controls["a"].set_state({"value": 4})
    for _ in range(2 * gate.steps):
        gate.go.release()
    assert live.wait() == 45 and live.fig.data[0].y == (45,)
    assert gate.calls == [(2, 5), (4, 5)]  # the first stopped, the middle one never ran
    assert live.progress_box.layout.display == "none" and not live.busy


def test_code_changes_stay_synchronous_with_progress():
    live = _widget(lambda a, b, progress: a * b, progress=True)
    live.controls["a"].value = 4  # from code (a test, a notebook cell): no thread
    assert not live.busy and live.result == 20 and live.fig.data[0].y == (20,)


def test_apply_stops_a_background_run():
    gate = Gate(steps=2)
    gate.blocking = True
    live = _widget(lambda a, b, progress: gate(a, b, progress) if a == 2 else a + b,
                   progress=True)
    live.controls["a"].set_state({"value": 2})
    while not gate.calls:
        time.sleep(0.01)
    assert live.apply(a=3) == 8  # supersedes the run that waits in the gate
    for _ in range(2):
        gate.go.release()
    assert live.wait() == 8 and live.fig.data[0].y == (8,) and live.error is None


def test_background_errors_are_sentences(caplog):
    def compute(a, b, progress):
        progress(0, 1, "x")
        raise RuntimeError("out of memory")

    live = _widget(lambda a, b, progress: a + b if a < 5 else compute(a, b, progress),
                   progress=True)
    with caplog.at_level(logging.ERROR, logger="course.widgets"):
        live.controls["a"].set_state({"value": 6})
        live.wait()
    assert live.error == "something went wrong: RuntimeError: out of memory"
    assert live.fig.data[0].y == (6,) and "RuntimeError" in caplog.text
    assert live.progress_box.layout.display == "none"


def test_controls_that_cannot_act_are_disabled_with_a_reason():
    from course.widgets.gates import Rule, gate

    controls = dict(a=slider("a", 0, 10, 1), b=slider("b", 0, 10, 1))
    hint = gate(controls, Rule(("b",), lambda v: v["a"] > 5, "b only acts when a > 5"))
    live = LiveFigure(controls, lambda a, b: a + b, None, extra=[hint])
    assert controls["b"].disabled and "b only acts" in hint.value
    live.apply(a=6)
    assert not controls["b"].disabled and hint.value == "" and live.result == 7


def test_a_silent_slow_compute_still_shows_that_it_works():
    release = threading.Event()

    def compute(a, b, progress):  # never reports progress
        if a == 2:
            release.wait(10)
        return a + b

    live = _widget(compute, progress=True)
    live.controls["a"].set_state({"value": 2})
    deadline = time.perf_counter() + 1.0  # shown after 50 ms (margin for a busy machine)
    while live.progress_box.layout.display != "flex" and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert live.progress_text.value == "working on the new setting…"
    release.set()
    assert live.wait() == 7 and live.progress_box.layout.display == "none"
    live.controls["a"].set_state({"value": 3})  # a fast result: nothing flashes
    live.wait()
    time.sleep(0.1)
    assert live.progress_box.layout.display == "none" and live.result == 8


def test_background_runs_use_one_torch_thread():
    """A second kernel on the same cores makes multi-threaded toy training many times
    slower; background runs train on one thread and leave the setting as it was."""
    import torch

    before = torch.get_num_threads()
    live = _widget(lambda a, b, progress: torch.get_num_threads() * 100 + a, progress=True)
    live.controls["a"].set_state({"value": 2})
    assert live.wait() == 102
    assert torch.get_num_threads() == before


def test_progress_reaches_the_browser_a_few_times_a_second():
    from course.widgets import PROGRESS_EVERY_S

    def compute(a, b, progress):
        for step in range(100):  # 100 steps in about 0.6 s
            progress(step, 100, "counting")
            time.sleep(0.006)
        progress(100, 100, "counting")
        return a + b

    live = _widget(compute, progress=True)
    shown = []
    live.progress_text.observe(lambda change: shown.append(change["new"]), names="value")
    live.apply(a=2)
    assert shown[0] == "counting: step 0/100" and shown[-1] == "counting: step 100/100"
    # the first and last step, and one update every PROGRESS_EVERY_S in between, not 101
    assert 2 <= len(shown) <= 2 + 0.7 / PROGRESS_EVERY_S + 1
