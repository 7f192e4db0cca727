"""App mode for a classroom: one notebook as a clean app (prose and widgets, no code).

    python -m course.app notebooks/09_balancing.ipynb          # opens it in your browser
    python -m course.app notebooks/09_balancing.ipynb --port 8866 --no-browser

It runs Voila with the settings a classroom needs:
* a kernel pre-heated with the notebook already executed (`--preheat_kernel`), so the app
  answers at once instead of running the whole notebook when the page is opened;
* the next kernel pre-heats at the lowest CPU priority: Voila refills its pool a few
  seconds after a kernel is taken, i.e. runs the whole notebook again (20 s of CPU for 09)
  while the first visitor moves sliders. At normal priority a training move then took
  5.8 s instead of 3.4 s here. The first kernel of a run keeps its priority; every later
  one lowers its own (`settle_kernel`), so it uses only the CPU the visitor leaves idle,
  and a reloaded page still finds a kernel ready;
* the course's template (`course/app_data/voila/templates/course`), which drops the lab
  template's Font Awesome stylesheets fetched from a public CDN: nothing leaves the room;
* only the front-end extensions the widgets need (the JupyterLab-only ones, such as
  jupytext's, fail to load inside Voila and log errors to the console).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "app_data"
#: Lab extensions an app does not need: JupyterLab's own, and jupyterlab-plotly (app mode
#: draws static figures with `course.plots`' HTML renderer, and FigureWidget is an
#: anywidget), whose 4.8 MB bundle took about 0.5 s of the page load to compile.
DENYLIST = ["jupyterlab-jupytext", "@voila-dashboards/jupyterlab-preview", "jupyterlab-plotly"]
#: Seconds before Voila pre-heats the next kernel once one is taken: after the page has
#: loaded (5-8 s measured), so the refill does not slow the visitor's first page.
REFILL_AFTER_S = 15.0
#: Names this run's folder in the kernels' environment (`voila_env`): see `settle_kernel`.
RUN_ENV = "COURSE_APP_RUN"
#: The lowest CPU priority (POSIX nice value) a refill kernel takes.
REFILL_NICE = 19


def voila_command(notebook: str | os.PathLike, port: int | None = None,
                  open_browser: bool = True, refill_after_s: float = REFILL_AFTER_S) -> list[str]:
    """The Voila command line that serves `notebook` as the course's app, on 127.0.0.1."""
    path = Path(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"{notebook!s} is not a notebook file (.ipynb) that exists")
    if not refill_after_s >= 0:
        raise ValueError(f"refill_after_s must be 0 or more seconds, not {refill_after_s!r}")
    cmd = [sys.executable, "-m", "voila", str(path), "--template=course",
           "--preheat_kernel=True", "--pool_size=1", "--Voila.ip=127.0.0.1",
           f"--VoilaKernelManager.fill_delay={float(refill_after_s)}",
           *[f"--VoilaConfiguration.extension_denylist={name}" for name in DENYLIST]]
    if port is not None:
        cmd.append(f"--port={int(port)}")
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def voila_env(base: dict | None = None) -> dict:
    """The environment for one run of the app: Voila finds the course's template (Jupyter's
    data path), and its kernels find a fresh run folder (`settle_kernel`)."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(DATA), env.get("JUPYTER_PATH")]))
    env[RUN_ENV] = tempfile.mkdtemp(prefix="course-app-")
    return env


def settle_kernel(env=None) -> bool:
    """Called as the course is imported in an app's kernel. The run's first kernel marks
    the run folder and keeps its priority; a later one (Voila pre-heating the next kernel
    while someone uses the app) lowers its own CPU priority to `REFILL_NICE` and uses one
    torch thread. Returns True when it lowered them. Outside the app (no run folder) it
    does nothing."""
    folder = (os.environ if env is None else env).get(RUN_ENV)
    if not folder or not hasattr(os, "nice"):
        return False
    try:
        os.close(os.open(os.path.join(folder, "first-kernel"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return False
    except FileExistsError:
        pass
    except OSError:  # the run folder is gone: leave the priority alone
        return False
    os.nice(max(0, REFILL_NICE - os.nice(0)))
    # ...and one torch thread, so the refill fills at most one idle core (before torch is
    # imported the environment decides; after, torch's own setting)
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--refill-after", type=float, default=REFILL_AFTER_S, metavar="S",
                        help="seconds before the next kernel is pre-heated (at low priority) "
                             f"once one is taken (default {REFILL_AFTER_S:g})")
    args = parser.parse_args(argv)
    try:
        cmd = voila_command(args.notebook, args.port, not args.no_browser, args.refill_after)
    except ValueError as err:
        parser.error(str(err))
    return subprocess.call(cmd, env=voila_env())


if __name__ == "__main__":
    raise SystemExit(main())
