"""Every exercise in the course: its reference passes its own check, a plausible wrong
answer fails it, a stub is "not attempted", and passing is remembered in the progress file."""

import pytest

from course import checks, exercises, progress

ALL = exercises.all_exercises()


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", sorted(ALL))
def test_reference_passes_and_wrong_fails(name):
    ex = ALL[name]
    if ex.is_function:
        assert checks.exercise(name, ex.reference) is ex.reference
        assert checks.results[name] == "passed"
        assert checks.exercise(name, ex.wrong) is ex.reference
        assert checks.results[name] == "failed"
        assert checks.exercise(name, _stub) is ex.reference
        assert checks.results[name] == "not attempted"
    else:
        assert checks.answer(name, ex.expected()) is True
        assert checks.answer(name, ex.wrong) is False
        assert checks.answer(name, None) is False
    assert name in progress.load()


@pytest.mark.parametrize("name", sorted(ALL))
def test_solution_can_be_revealed(name):
    text = checks.solution(name)
    assert text and (ALL[name].reference is None or "def " in text or "lambda" in text)


def test_notebook_calls_go_through_the_registry():
    fn, val = sorted(n for n in ALL if ALL[n].is_function)[0], sorted(
        n for n in ALL if not ALL[n].is_function)[0]
    assert checks.check_exercise(fn, ALL[fn].reference) is ALL[fn].reference
    assert checks.results[fn] == "passed"
    assert checks.check_exercise(fn, ALL[fn].wrong) is ALL[fn].reference
    assert checks.results[fn] == "failed"
    assert checks.check_answer(val, ALL[val].expected()) is True
    assert checks.check_answer(val, ALL[val].wrong) is False


def test_every_exercise_names_its_notebook():
    for name, ex in ALL.items():
        assert name.startswith(ex.notebook + "."), name


def test_progress_table():
    progress.reset()
    progress.record("00.a", "00")
    rows = progress.table({"00.a": "00", "00.b": "00", "01.c": "01"})
    assert rows == [("00", 1, 2), ("01", 0, 1)]
    progress.reset()
    assert progress.load() == {}


WITH_ORACLE = sorted(n for n, ex in ALL.items() if ex.oracle is not None)


@pytest.mark.parametrize("name", WITH_ORACLE)
def test_reference_agrees_with_the_course(name):
    """The written-out solution a learner can reveal computes what the course computes."""
    ex = ALL[name]
    for args in ex.cases():
        assert checks.close(ex.reference(*args), ex.oracle(*args), ex.rtol, ex.atol), (
            name, args)


def test_oracles_cover_the_exercises_that_restate_the_course():
    assert len(WITH_ORACLE) >= 12


@pytest.mark.parametrize("notebook", sorted({ex.notebook for ex in ALL.values()}))
def test_every_function_exercise_has_an_oracle(notebook):
    """Issue 17: a written-out reference checked only against itself proves nothing."""
    missing = [n for n, ex in ALL.items()
               if ex.notebook == notebook and ex.reference is not None and ex.oracle is None]
    assert not missing, missing


def test_the_new_oracles_reject_the_wrong_answers():
    for name in ("02.mul_backward", "02.finite_difference", "03.mixed_precision_gb",
                 "06.ib_bytes", "10.quantize_by_hand", "12.greedy_acceptance",
                 "13.step_seconds", "13.fits", "01.one_head", "05.days_on",
                 "11.absorbed_scores"):
        ex = ALL[name]
        assert any(not checks.close(ex.wrong(*args), ex.oracle(*args), ex.rtol, ex.atol)
                   for args in ex.cases()), name
