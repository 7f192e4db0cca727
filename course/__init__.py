"""The course package: pure computations (one module per idea), figure builders
(`course.plots`) and the thin widget layer (`course.widgets`) the notebooks use."""

__version__ = "0.1.0"

import os as _os

if "COURSE_APP_RUN" in _os.environ:  # a kernel of `python -m course.app` (see settle_kernel)
    from course.app import settle_kernel

    settle_kernel()
