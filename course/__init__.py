"""The course package: pure computations (one module per idea), figure builders
(`course.plots`) and the thin widget layer (`course.widgets`) the notebooks use."""

__version__ = "0.1.0"
