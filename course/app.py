"""App mode for a classroom: one notebook as a clean app (prose and widgets, no code).

    python -m course.app notebooks/09_balancing.ipynb          # opens it in your browser
    python -m course.app notebooks/09_balancing.ipynb --port 8866 --no-browser

It runs Voila with the settings a classroom needs:
* a kernel pre-heated with the notebook already executed (`--preheat_kernel`), so the app
  answers at once instead of running the whole notebook when the page is opened;
* no second pre-heat right after the page opens: Voila refills its pool one second after a
  kernel is taken, i.e. it runs the whole notebook again (20 s of CPU for 09) while the
  first visitor moves sliders, and a training move then took 5.8 s instead of 3.4 s here.
  The app listens on 127.0.0.1, for the one person at this machine, so the pool refills
  only after `REFILL_AFTER_S` (a second tab before then runs the notebook as it opens);
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
from pathlib import Path

DATA = Path(__file__).resolve().parent / "app_data"
#: Lab extensions that belong to JupyterLab, not to an app.
DENYLIST = ["jupyterlab-jupytext", "@voila-dashboards/jupyterlab-preview"]
#: Seconds before Voila pre-heats the next kernel once the first is taken.
REFILL_AFTER_S = 600.0


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
    """The environment that lets Voila find the course's template (Jupyter's data path)."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(DATA), env.get("JUPYTER_PATH")]))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--refill-after", type=float, default=REFILL_AFTER_S, metavar="S",
                        help="seconds before the next kernel is pre-heated once the first "
                             f"is taken (default {REFILL_AFTER_S:.0f})")
    args = parser.parse_args(argv)
    try:
        cmd = voila_command(args.notebook, args.port, not args.no_browser, args.refill_after)
    except ValueError as err:
        parser.error(str(err))
    return subprocess.call(cmd, env=voila_env())


if __name__ == "__main__":
    raise SystemExit(main())
