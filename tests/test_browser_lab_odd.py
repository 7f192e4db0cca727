"""Notebooks 01, 03, 05, ... as a learner meets them in JupyterLab (see test_browser_lab_even)."""

from browser_support import course_notebooks, lab_tests

lab, test_notebook_as_a_learner_sees_it = lab_tests(course_notebooks()[1::2])
