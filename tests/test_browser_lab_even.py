"""Notebooks 00, 02, 04, ... as a learner meets them in JupyterLab, in Chromium: Run All, no
error output, nothing in the Log Console, every widget at a clean default, and each widget's
sliders answer a key press visibly within a second (tests/browser_support.py)."""

from browser_support import course_notebooks, lab_tests

lab, test_notebook_as_a_learner_sees_it = lab_tests(course_notebooks()[0::2])
