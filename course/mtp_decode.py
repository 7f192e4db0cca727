"""Measuring MTP drafts in speculative decoding (notebook 12): prompts cut from held-out
text, `speculate` (plain and speculative decoding of every prompt, acceptance per depth,
by the kind of token and by its position in the sentence) and the corpus' word kinds.
`course.mtp` re-exports these names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from course import validate


def needs_mtp(model) -> None:
    """ValueError with a sentence unless `model` has at least one MTP module."""
    if not getattr(getattr(model, "cfg", None), "mtp_depth", 0):
        raise ValueError("This model has no MTP module (mtp_depth is 0): train one with "
                         "mtp.train(depth=1).")


def _corpus_lists() -> dict[str, set]:
    """Word lists by kind, written with the corpus by assets/corpus/make_corpus.py and shipped
    as corpus/word_kinds.json (nothing is generated at run time)."""
    import json

    from course.data import CORPUS

    kinds = json.loads(CORPUS.with_name("word_kinds.json").read_text())
    return {kind: set(words) for kind, words in kinds.items()}


@lru_cache(maxsize=1)
def _word_kinds() -> dict[str, str]:
    return {w: kind for kind, words in _corpus_lists().items() for w in words}


def token_type(word: str) -> str:
    """The kind of a corpus word: "colour", "athlete", "sport", ..., "end of sentence" for
    the separator, "function word" for the rest ("the", "played", "is", ...)."""
    if not isinstance(word, str):
        raise ValueError(f"word must be a word of the corpus (a string), not {word!r}.")
    if word == ".":
        return "end of sentence"
    return _word_kinds().get(word, "function word")


def sentence_position(tokens: list[int], position: int) -> int:
    """1 for the first word of a sentence, 2 for the second...; separator id 0 ends one."""
    position = validate.integer("position", position, 0, len(tokens))  # a draft may be 1 past
    start = position - 1
    while start >= 0 and tokens[start] != 0:
        start -= 1
    return position - start


def prompts(n: int = 16, length: int = 6, seed: int = 0) -> list[torch.Tensor]:
    """`n` prompts (1, length) cut from held-out text, each starting at a sentence start."""
    from course import data

    n = validate.integer("n (the number of prompts)", n, 1, 10_000)
    length = validate.integer("length (tokens per prompt)", length, 1, 1_000)
    seed = validate.non_negative_int("seed", seed)
    val = data.split()[1]
    starts = (val[: len(val) - length] == 0).nonzero().flatten()
    gen = torch.Generator().manual_seed(seed)
    pick = starts[torch.randperm(len(starts), generator=gen)[:n]]
    return [val[s: s + length].view(1, -1) for s in pick.tolist()]


@dataclass
class Speculation:
    acceptance: list  # depth k: accepted / drafted (depth k is tried once depth k-1 passed)
    tokens_per_step: float  # new tokens per main-model step, over every prompt
    by_type: dict  # kind of the verified token -> (depth-1 acceptance, count)
    by_position: dict  # word position in its sentence -> (depth-1 acceptance, count)
    plain_s: float  # wall time of plain decoding of every prompt
    spec_s: float  # wall time of speculative decoding of every prompt
    identical: bool | None  # greedy: every output equals plain decoding (None if sampled)
    outputs: list  # (1, T) token tensors from speculative decoding


def _rate(flags: list) -> tuple[float, int]:
    return (sum(flags) / len(flags) if flags else float("nan"), len(flags))


def speculate(model, prompt_list: list[torch.Tensor], new_tokens: int = 30,
              temperature: float = 0.0, draft_temperature: float = 0.0, seed: int = 0,
              progress=None) -> Speculation:
    """Decode every prompt plainly and speculatively (MTP drafts) and measure acceptance.

    `progress(done, total, text)` is called after each decoded prompt (see `course.widgets`).
    """
    import time

    from course.data import tokenizer

    needs_mtp(model)
    if not prompt_list or not all(torch.is_tensor(p) and p.dim() == 2 and p.shape[0] == 1
                                  for p in prompt_list):
        raise ValueError("prompt_list must be a non-empty list of (1, T) token tensors "
                         "(see mtp.prompts).")
    new_tokens = validate.integer("new_tokens", new_tokens, 1, 100_000)
    temperature = validate.non_negative("temperature", temperature)
    draft_temperature = validate.non_negative("draft_temperature", draft_temperature)
    seed = validate.non_negative_int("seed", seed)
    if getattr(model.mtp[0], "parallel", False):
        raise ValueError("Speculative decoding here drafts with sequential MTP modules; this "
                         "model has parallel heads (use depth_accuracy to compare them).")
    from course.model import generate
    from course.speculative import speculative_generate

    words = tokenizer().words
    gen_plain, gen_spec = (torch.Generator().manual_seed(seed) for _ in range(2))
    total, text = 2 * len(prompt_list), f"decoding {len(prompt_list)} prompts, then with drafts"
    tick = (lambda done: progress(done, total, text)) if progress else (lambda done: None)
    tick(0)
    t0 = time.perf_counter()
    plain = []
    for p in prompt_list:
        plain.append(generate(model, p, new_tokens, temperature=temperature,
                              generator=gen_plain))
        tick(len(plain))
    plain_s = time.perf_counter() - t0
    runs = []
    for p in prompt_list:
        runs.append(speculative_generate(model, p, new_tokens, temperature, draft_temperature,
                                         gen_spec))
        tick(len(prompt_list) + len(runs))
    per_depth = [[] for _ in range(model.cfg.mtp_depth)]
    kinds, places = {}, {}
    for run in runs:
        tokens = run.tokens[0].tolist()
        for d in run.drafts:
            per_depth[d.depth - 1].append(d.accepted)
            if d.depth == 1:
                kinds.setdefault(token_type(words[d.verified]), []).append(d.accepted)
                pos = sentence_position(tokens, d.position)
                places.setdefault(pos, []).append(d.accepted)
    identical = (all(torch.equal(a, r.tokens) for a, r in zip(plain, runs))
                 if temperature <= 0 else None)
    return Speculation(
        acceptance=[_rate(f)[0] for f in per_depth],
        tokens_per_step=sum(r.new_tokens for r in runs) / sum(r.main_steps for r in runs),
        by_type={k: _rate(v) for k, v in sorted(kinds.items())},
        by_position={k: _rate(v) for k, v in sorted(places.items())},
        plain_s=plain_s, spec_s=sum(r.seconds for r in runs), identical=identical,
        outputs=[r.tokens for r in runs])
