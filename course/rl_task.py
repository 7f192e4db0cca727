"""The task of notebook 16 (`course.rl`): sort `n_terms` digits, e.g. ``sort 3 1 4 1 :`` →
``1 1 3 4 .``; its vocabulary, prompts (a seeded share held out), demonstrations (a share
`quality` correct, the rest with one slip), the rule-based reward (`score`), and the
course's model set up for it: sampling with a KV cache, per-token log-probabilities and
the sampled held-out accuracy (`evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course import data
from course.model import TinyConfig, TinyLM
from course.presets import preset
from course.timing import one_thread

END = "."  # id 0: ends a response, and starts every prompt (as in the corpus stream)
WORDS = (END, *"0123456789", "sort", ":")
FORMAT_WEIGHT = 0.1


# --------------------------------------------------------------------------------- task


def tokenizer() -> data.Tokenizer:
    """The task's own vocabulary: END, the ten digits, "sort" and ":"."""
    return data.Tokenizer(WORDS)


def _digit(d: int) -> int:
    return 1 + int(d)  # token id of digit d


def answer(terms) -> list[int]:
    """The right response's digits: the terms sorted."""
    return sorted(int(t) for t in terms)


def problems(n_terms: int | None = None, held_out: float = 0.2, seed: int = 0):
    """Every prompt of `n_terms` digits, shuffled by `seed`, split into (train, held-out)
    arrays of shape (N, n_terms). The split is fixed by the seed, so held-out prompts are
    never seen in training."""
    n_terms = int(n_terms or preset("rl")["n_terms"])
    if not 2 <= n_terms <= 5:
        raise ValueError(f"n_terms must be between 2 and 5, not {n_terms}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a share between 0 and 1, not {held_out}.")
    grid = np.stack(np.meshgrid(*[np.arange(10)] * n_terms, indexing="ij"), -1)
    allp = grid.reshape(-1, n_terms)
    allp = allp[np.random.default_rng(seed).permutation(len(allp))]
    n_test = int(round(len(allp) * held_out))
    return allp[n_test:], allp[:n_test]


def prompt_ids(terms) -> list[int]:
    """``. sort a b c d :`` as token ids."""
    return [0, WORDS.index("sort"), *(_digit(t) for t in terms), WORDS.index(":")]


def encode_prompts(terms: np.ndarray) -> torch.Tensor:
    return torch.tensor([prompt_ids(t) for t in terms], dtype=torch.long)


def demonstration(terms, correct: bool, rng: np.random.Generator) -> list[int]:
    """One demonstrated response (token ids, ended by END). A wrong one holds one slip:
    two unequal neighbours swapped (or, when all digits are equal, one digit changed)."""
    out = answer(terms)
    if not correct:
        unequal = [i for i in range(len(out) - 1) if out[i] != out[i + 1]]
        if unequal:
            i = unequal[int(rng.integers(len(unequal)))]
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            i = int(rng.integers(len(out)))
            out[i] = (out[i] + int(rng.integers(1, 10))) % 10
    return [_digit(d) for d in out] + [0]


@dataclass
class Demos:
    prompts: torch.Tensor  # (N, P)
    responses: torch.Tensor  # (N, R), END-padded
    correct: np.ndarray  # (N,) bool: the demonstration is right
    quality: float  # share of correct demonstrations


def demonstrations(n: int, quality: float = 1.0, seed: int = 0) -> Demos:
    """`n` demonstrations on training prompts, exactly round(quality · n) of them correct
    (so the slider's value is the data's quality)."""
    if not 0 <= quality <= 1:
        raise ValueError(f"quality must be a share between 0 and 1, not {quality}.")
    if n < 1:
        raise ValueError(f"Ask for at least one demonstration, not {n}.")
    rng = np.random.default_rng(seed + 7919)
    train, _ = problems()
    terms = train[rng.integers(len(train), size=n)]
    correct = np.zeros(n, dtype=bool)
    correct[rng.permutation(n)[: int(round(quality * n))]] = True
    resp = [demonstration(t, c, rng) for t, c in zip(terms, correct)]
    return Demos(encode_prompts(terms), torch.tensor(resp, dtype=torch.long), correct,
                 float(correct.mean()))


def score(terms: np.ndarray, responses: torch.Tensor) -> dict:
    """Rule-based reward of each response: dict of arrays `reward`, `correct`,
    `well_formed` and `length` (tokens up to and including END; the full width if none)."""
    resp = responses.numpy()
    n, R = resp.shape
    correct, formed, length = np.zeros(n, bool), np.zeros(n, bool), np.full(n, R)
    for i in range(n):
        ends = np.flatnonzero(resp[i] == 0)
        if len(ends):
            length[i] = ends[0] + 1
            body = resp[i, : ends[0]]
            formed[i] = len(body) == terms.shape[1] and bool(((body >= 1) & (body <= 10)).all())
            correct[i] = formed[i] and (body - 1).tolist() == answer(terms[i])
    return dict(reward=correct + FORMAT_WEIGHT * formed, correct=correct,
                well_formed=formed, length=length)


# -------------------------------------------------------------------------------- model


def task_config(student: bool = False, size: str | None = None, **overrides) -> TinyConfig:
    """The course's TinyConfig for the task's vocabulary, at `preset("rl")` sizes (the
    teacher's, or with `student=True` the smaller student's)."""
    p = preset("rl", size)
    key = "student" if student else "model"
    base = dict(vocab_size=len(WORDS), seq_len=16, **p[key])
    base.update(overrides)
    return TinyConfig(**base)


def response_mask(responses: torch.Tensor) -> torch.Tensor:
    """(N, R) float: 1 for the tokens up to and including the first END."""
    is_end = (responses == 0).long()
    before_end = (is_end.cumsum(1) - is_end) == 0  # no END strictly before this token
    return before_end.float()


def token_logprobs(model: TinyLM, prompts: torch.Tensor, responses: torch.Tensor,
                   ) -> torch.Tensor:
    """(N, R) log-probability the model gives each response token after its prefix."""
    full = torch.cat([prompts, responses], 1)
    logits = model(full[:, :-1]).logits[:, prompts.shape[1] - 1:]
    return torch.log_softmax(logits.float(), -1).gather(-1, responses[..., None])[..., 0]


@torch.no_grad()
def sample(model: TinyLM, prompts: torch.Tensor, max_new: int, generator: torch.Generator,
           temperature: float = 1.0) -> torch.Tensor:
    """(N, max_new) responses sampled with a KV cache; after END only END follows."""
    model.eval()
    cache = model.new_cache()
    logits = model(prompts, cache=cache).logits[:, -1]
    out, done = [], torch.zeros(len(prompts), dtype=torch.bool)
    for _ in range(max_new):
        if temperature > 0:
            nxt = torch.multinomial((logits.float() / temperature).softmax(-1), 1,
                                    generator=generator)[:, 0]
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        out.append(nxt)
        done |= nxt == 0
        if done.all():
            break
        logits = model(nxt[:, None], cache=cache).logits[:, -1]
    model.train()
    res = torch.stack(out, 1)
    if res.shape[1] < max_new:
        res = torch.cat([res, res.new_zeros(len(res), max_new - res.shape[1])], 1)
    return res


def evaluate(model: TinyLM, terms: np.ndarray, samples: int = 1, seed: int = 0) -> dict:
    """Sampled (temperature 1) accuracy, well-formed share and mean length over `samples`
    responses per prompt: accuracy is then the pass@1 estimate."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    rep = np.repeat(terms, samples, axis=0)
    with one_thread():
        resp = sample(model, encode_prompts(rep), terms.shape[1] + 1, gen)
    s = score(rep, resp)
    return dict(accuracy=float(s["correct"].mean()), well_formed=float(s["well_formed"].mean()),
                length=float(s["length"].mean()),
                correct=s["correct"].reshape(len(terms), samples))
