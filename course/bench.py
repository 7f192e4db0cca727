"""Benchmark: how fast every registered widget responds, and how long each notebook takes
to execute headless.

    python -m course.bench                 # widgets and notebooks
    python -m course.bench --widgets       # widgets only
    python -m course.bench --notebooks     # notebooks only
    python -m course.bench -k moe          # only entries whose name contains "moe"

Widget time is the wall time of one `LiveFigure.apply(...)` (compute + in-place redraw)
over the widget's registered sweep of slider values:

* cached: after one untimed pass over the sweep, `--repeat` timed passes (what a learner
  sees when coming back to a setting);
* uncached (widgets that cache training runs, i.e. register a `clear`): for each setting
  of the sweep, every cache is emptied, the widget is set back to its defaults (computed
  afresh, untimed), then the move to the setting is timed: a setting never seen before.
  Its CPU time (`time.process_time`) is reported too: on a busy machine the wall time
  includes waiting for a core, the CPU time is close to the wall time on an idle core.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import numpy as np

import course.widgets as widgets_pkg
from course import timing

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def load_widget_modules() -> dict:
    """Import every `course.widgets.<idea>` module so its widgets register themselves."""
    for info in pkgutil.iter_modules(widgets_pkg.__path__):
        importlib.import_module(f"course.widgets.{info.name}")
    return widgets_pkg.BENCH


def time_widget(entry, repeat: int = 3, uncached: bool = True) -> dict:
    live = entry.build()
    defaults = live.values()
    sweep = entry.sweep()
    errors = []

    def move(values: dict) -> None:
        live.apply(**values)
        errors.append(live.error is not None)

    # one untimed pass fills the caches; each timed pass starts from the defaults
    laps = timing.lap_times([lambda _, v=v: move(v) for v in sweep], repeat,
                            setup=lambda: live.apply(**defaults))
    ms = np.concatenate(laps) * 1e3
    out = dict(name=entry.name, notebook=entry.notebook, n=len(ms),
               median_ms=float(np.median(ms)), p95_ms=float(np.percentile(ms, 95)))
    del errors[: len(sweep)]  # the untimed pass is not counted
    if uncached and entry.clear is not None:
        out.update(_uncached(entry, live, defaults, sweep, move))
    out["messages"] = sum(errors)
    return out


def _uncached(entry, live, defaults: dict, sweep: list, move) -> dict:
    """Each setting of the sweep after every cache is emptied and the widget set back to its
    defaults (untimed): wall seconds, and CPU seconds (`time.process_time`)."""
    wall, cpu = [], []

    def reset():
        entry.clear()
        live.apply(**defaults)

    for values in sweep:
        def timed_move(_, values=values):
            start = time.process_time()
            move(values)
            cpu.append(time.process_time() - start)
        wall += timing.lap_times([timed_move], 1, warmup=0, setup=reset)[0]
    entry.clear()
    return dict(uncached_n=len(wall), uncached_median_ms=float(np.median(wall)) * 1e3,
                uncached_max_ms=float(np.max(wall)) * 1e3,
                uncached_cpu_max_ms=float(np.max(cpu)) * 1e3)


def _row(r: dict) -> str:
    line = (f"{r['name']:34s} {r['notebook']:6s} {r['n']:4d} {r['median_ms']:10.1f} "
            f"{r['p95_ms']:9.1f}")
    if "uncached_n" in r:
        line += (f" {r['uncached_n']:4d} {r['uncached_median_ms']:10.0f} "
                 f"{r['uncached_max_ms']:9.0f} {r['uncached_cpu_max_ms']:9.0f}")
    else:
        line += f" {'':4s} {'-':>10s} {'-':>9s} {'-':>9s}"
    return line + (f"  ({r['messages']} bad-input messages)" if r["messages"] else "")


def time_notebook(path: Path, timeout: int = 600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    return timing.times(client.execute, 1, warmup=0)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widgets", action="store_true", help="time widgets only")
    parser.add_argument("--notebooks", action="store_true", help="time notebooks only")
    parser.add_argument("--realistic", action="store_true",
                        help="run the realistic-size computations on CUDA")
    parser.add_argument("-k", default="", help="only names containing this")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cached-only", action="store_true",
                        help="skip the uncached moves (they retrain the widgets' models)")
    args = parser.parse_args(argv)
    if args.realistic:
        return realistic()
    if not args.notebooks:
        print(f"{'':41s} {'cached':>25s} {'uncached (new setting)':>34s}")
        print(f"{'widget':34s} {'notebook':6s} {'n':>4s} {'median ms':>10s} {'p95 ms':>9s} "
              f"{'n':>4s} {'median ms':>10s} {'max ms':>9s} {'max CPU ms':>9s}")
        for name, entry in sorted(load_widget_modules().items(), key=lambda kv: kv[1].notebook):
            if args.k in name:
                print(_row(time_widget(entry, args.repeat, not args.cached_only)), flush=True)
    if not args.widgets:
        print(f"\n{'notebook':34s} {'seconds':>8s}")
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            if args.k in path.stem:
                print(f"{path.stem:34s} {time_notebook(path):8.1f}", flush=True)
    return 0


def realistic() -> int:
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU here: the realistic-size benchmark needs one.")
        return 1
    from course import realistic as suite

    return suite.main()


if __name__ == "__main__":
    sys.exit(main())
