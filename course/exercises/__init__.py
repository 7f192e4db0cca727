"""Every exercise of the course in one registry, so each can be checked the same way in
a notebook (`checks.check_exercise(name, yours)` / `checks.check_answer(name, value)`),
revealed (`checks.solution(name)`) and tested (tests/test_exercises.py: the reference
passes its own check, a wrong answer fails it).

Two kinds:
* a function to write: `reference` is the solution, `cases()` the inputs to compare on;
* a value to compute or predict: `expected()` gives the right answer (computed by the
  course, never typed in), compared with `rtol`.

`wrong` is a plausible mistake (a function, or a value) the tests feed to the check.
`oracle`, where the course has its own tested function for the same quantity, takes the
reference's arguments; the tests check the written-out reference against it, so a
solution shown to a learner can never drift from what the course computes.
Exercises live in `course/exercises/nbNN.py`, one module per notebook.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Exercise:
    name: str
    notebook: str
    prompt: str
    hint: str
    wrong: Any
    reference: Callable | None = None
    cases: Callable[[], list[tuple]] | None = None
    expected: Callable[[], Any] | None = None
    oracle: Callable | None = None
    rtol: float = 1e-5
    atol: float = 1e-8

    @property
    def is_function(self) -> bool:
        return self.reference is not None


REGISTRY: dict[str, Exercise] = {}


def register(ex: Exercise) -> Exercise:
    if (ex.reference is None) == (ex.expected is None):
        raise ValueError(f"exercise {ex.name} needs exactly one of reference or expected")
    REGISTRY[ex.name] = ex
    return ex


def all_exercises() -> dict[str, Exercise]:
    """Import every `course.exercises.nbNN` module and return the full registry."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def get(name: str) -> Exercise:
    exercises = all_exercises()
    if name not in exercises:
        raise KeyError(f"No exercise named {name!r}.")
    return exercises[name]
