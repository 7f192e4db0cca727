"""Widget for notebook 14: type a prompt, the trained tiny DeepSeek continues it, plainly
and with MTP speculation; words that came from an accepted MTP draft are highlighted."""

from __future__ import annotations

import html
from functools import lru_cache

import ipywidgets as W

from course import tiny_deepseek as td
from course.widgets import LiveFigure, register_bench, slider

#: An accepted draft: underlined as well as shaded, so it does not rest on colour alone.
ACCEPTED = ("background:#CCEBE1;border-radius:3px;padding:0 2px;"
            "text-decoration:underline;text-underline-offset:3px")


def _words(words, accepted=None) -> str:
    accepted = accepted or [False] * len(words)
    return " ".join(f'<span style="{ACCEPTED}">{html.escape(w)}</span>' if a
                    else html.escape(w) for w, a in zip(words, accepted))


def render(c: td.Continuation) -> str:
    """HTML of a `course.tiny_deepseek.Continuation`: two lines and the step counts."""
    prompt = f"<b>{html.escape(' '.join(c.prompt))}</b>"
    same = "same words" if c.plain == c.speculative else "different words (sampling)"
    return (f"<div style='font-family:monospace;line-height:1.8'>"
            f"plain decoding: {prompt} {_words(c.plain)}<br>"
            f"with MTP drafts: {prompt} {_words(c.speculative, c.accepted)}</div>"
            f"<div>{len(c.plain)} new words: <b>{c.plain_steps}</b> main-model passes plainly, "
            f"<b>{c.main_steps}</b> with speculation "
            f"(<span style='{ACCEPTED}'>shaded and underlined</span> = an accepted draft, "
            f"a word the model got without its own pass; {same})</div>")


@lru_cache(maxsize=1)
def _trained():
    return td.train("full").model


def generation(model=None, text: str = "babe ruth played", new_tokens: int = 12) -> LiveFigure:
    """A text box and a length slider bound to `course.tiny_deepseek.continue_text`."""
    model = model if model is not None else _trained()
    controls = dict(
        text=W.Text(value=text, description="prompt", continuous_update=False,
                    style={"description_width": "initial"}, layout=W.Layout(width="420px")),
        new_tokens=slider("new words", 1, 32, new_tokens, slow=True),
    )
    out = W.HTML()

    def draw(_fig, c):
        out.value = render(c)

    def compute(text: str, new_tokens: int, progress=None):
        return td.continue_text(model, text, new_tokens, progress=progress)

    return LiveFigure(controls, compute, draw, figure=None, extra=[out], progress=True)


@register_bench("tiny_deepseek_generation", notebook="14", sweep=lambda: [
    dict(text=t, new_tokens=n) for t, n in
    [("babe ruth played", 12), ("the green forest has", 16), ("the capital of spain is", 8),
     ("the cat says", 24)]])
def _bench_generation() -> LiveFigure:
    return generation()
