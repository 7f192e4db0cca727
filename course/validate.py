"""Checks for arguments where they enter the course's public functions.

Each check returns the value in a clean form (a Python int or float) or raises ValueError
with one sentence a learner can act on: the argument's name, what was given and what is
allowed. Wrong types get the same sentence: `True` is not a count, `"2"` is not a number,
nan and inf are not sizes or times.

    n = positive_int("microbatches", microbatches)
    f = positive("f", f)
    kind = choice("schedule", schedule, SCHEDULES)
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _fail(name: str, value, allowed: str) -> ValueError:
    return ValueError(f"{name} must be {allowed}, not {_shown(value)}.")


def _is_real(value) -> bool:
    # bool is an int subclass in Python, but True is not a size; strings are not numbers.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(name: str, value, allowed: str = "a finite number") -> float:
    """A finite real number (int, float or numpy scalar; not bool, str, nan or inf)."""
    if not _is_real(value) or not math.isfinite(float(value)):
        raise _fail(name, value, allowed)
    return float(value)


finite = number


def positive(name: str, value) -> float:
    """A finite number > 0 (a time, a bandwidth, a size in bytes)."""
    x = number(name, value, "a positive number")
    if x <= 0:
        raise _fail(name, value, "a positive number")
    return x


def non_negative(name: str, value) -> float:
    """A finite number ≥ 0."""
    x = number(name, value, "a number ≥ 0")
    if x < 0:
        raise _fail(name, value, "a number ≥ 0")
    return x


def fraction(name: str, value, *, zero: bool = True) -> float:
    """A number in [0, 1] (or (0, 1] with zero=False)."""
    allowed = "a fraction between 0 and 1" if zero else "a fraction in (0, 1]"
    x = number(name, value, allowed)
    if not (0 <= x <= 1) or (x == 0 and not zero):
        raise _fail(name, value, allowed)
    return x


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number in [minimum, maximum]; 8.0 counts as 8, 2.5 and "2" do not."""
    if minimum is not None and maximum is not None:
        allowed = f"a whole number from {minimum} to {maximum}"
    elif minimum is not None:
        allowed = f"a whole number ≥ {minimum}"
    else:
        allowed = "a whole number"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        n = int(value)
    elif _is_real(value) and math.isfinite(float(value)) and float(value).is_integer():
        n = int(value)
    else:
        raise _fail(name, value, allowed)
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise _fail(name, value, allowed)
    return n


def positive_int(name: str, value) -> int:
    """A whole number ≥ 1 (a size, a count of GPUs, layers, micro-batches...)."""
    return integer(name, value, 1)


def non_negative_int(name: str, value) -> int:
    """A whole number ≥ 0 (a count that may be zero)."""
    return integer(name, value, 0)


def choice(name: str, value, options: Iterable):
    """One of `options` (names of schedules, recipes, formats...)."""
    options = tuple(options)
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a dict's keys
        ok = False
    if not ok:
        listed = ", ".join(str(o) for o in options)
        raise ValueError(f"Unknown {name} {_shown(value)}; choose one of {listed}.")
    return value


def optional(check, name: str, value, *args, **kw):
    """None stays None; anything else goes through `check`."""
    return None if value is None else check(name, value, *args, **kw)
