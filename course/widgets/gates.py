"""Controls that cannot act are disabled, with a one-line hint why.

    hint = gate(controls, Rule(("hidden", "layers"), lambda v: v["model"] == "custom",
                               "The custom sliders act only when the model is “custom”."))
    LiveFigure(controls, compute, draw, fig, extra=[hint])

Each rule names the controls it governs, says from all the controls' values whether they
can act, and gives the sentence shown while they cannot. The rules are re-read on every
change (from the browser or from code), so the state is never stale.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

import ipywidgets as W


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    acts: Callable[[dict[str, Any]], bool]
    hint: str


def gate(controls: dict[str, W.ValueWidget], *rules: Rule) -> W.HTML:
    """Disable each rule's controls while they cannot act; return the hint line."""
    unknown = {n for r in rules for n in r.names} - set(controls)
    if unknown:
        raise KeyError(f"no control named {', '.join(sorted(unknown))}")
    hint = W.HTML(layout=W.Layout(min_height="1.2em"))

    def refresh(_change=None) -> None:
        values = {k: c.value for k, c in controls.items()}
        off = []
        for rule in rules:
            can_act = bool(rule.acts(values))
            for name in rule.names:
                controls[name].disabled = not can_act
            if not can_act:
                off.append(html.escape(rule.hint))
        hint.value = f"<small><i>{' · '.join(off)}</i></small>" if off else ""

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return hint
