"""A small cache of training runs keyed by their settings (used by `course.moe` and
`course.mtp`): a slider that comes back to a setting reuses the run."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable


class RunCache:
    """Training runs kept by their settings (most recent `size`), so a slider that comes
    back to a setting reuses the run; `get(key, make)` trains with `make()` only once."""

    def __init__(self, size: int = 64):
        self.size = size
        self._runs: OrderedDict[Any, Any] = OrderedDict()

    def __contains__(self, key) -> bool:
        return key in self._runs

    def get(self, key, make: Callable[[], Any]):
        if key in self._runs:
            self._runs.move_to_end(key)
            return self._runs[key]
        run = make()
        self._runs[key] = run
        while len(self._runs) > self.size:
            self._runs.popitem(last=False)
        return run

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._runs.items())

    def clear(self) -> None:
        self._runs.clear()
