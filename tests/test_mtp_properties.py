"""Property tests for course.mtp, course.speculative and course.mtp_study: whatever they are
given, public functions either return a sane result or raise ValueError with a sentence,
and speculative decoding keeps its invariants for any prompt and length."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import mtp, mtp_study, speculative
from course.model import TinyConfig, TinyLM, generate

FAST = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

ODD = [0, -1, -0.5, 1.5, 2.5, float("nan"), float("inf"), 1e30, 10**18, True, None, "2",
       "abc", [], (1, 2), {"a": 1}]
anything = st.one_of(st.sampled_from(ODD), st.integers(-5, 40), st.floats(-3, 12))


def call(fn, *args, **kw):
    """fn(*args, **kw), or None when it raised ValueError with a sentence; any other
    exception fails the test."""
    try:
        return fn(*args, **kw)
    except ValueError as err:
        assert len(str(err).split()) >= 3, f"ValueError without a sentence: {err!r}"
        return None


def _tiny(depth: int = 1) -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(TinyConfig(vocab_size=12, d_model=16, n_layers=1, n_heads=2,
                             mtp_depth=depth)).eval()


MODELS = {d: _tiny(d) for d in (0, 1, 2)}


@FAST
@given(depth=anything, lam=anything, heads=st.sampled_from(["sequential", "parallel", "x", 3]),
       steps=st.one_of(st.none(), anything), seed=anything)
def test_train_validates_before_training(monkeypatch, depth, lam, heads, steps, seed):
    from course import train as train_module

    calls = []
    monkeypatch.setattr(train_module, "train_lm", lambda cfg, **kw: calls.append((cfg, kw)) or kw)
    mtp.RUNS.clear()
    got = call(mtp.train, depth, lam, steps, seed, heads=heads)
    mtp.RUNS.clear()
    if got is None:
        assert calls == []  # refused before any training
        return
    cfg, kw = calls[0]
    assert cfg.mtp_depth in (0, 1, 2) and 0 <= cfg.mtp_lambda <= 10
    assert kw["steps"] >= 1 and kw["seed"] >= 0 and kw["batch_size"] >= 1
    assert (cfg.extra.get("mtp_heads") == "parallel") == (heads == "parallel" and depth != 0)


@FAST
@given(n=anything, length=anything, seed=anything)
def test_prompts_are_sentence_starts_of_the_asked_size(n, length, seed):
    got = call(mtp.prompts, n, length, seed)
    if got is not None:
        assert 1 <= len(got) <= n and all(p.shape == (1, length) and p[0, 0] == 0 for p in got)


@FAST
@given(tokens=st.lists(st.integers(0, 3), min_size=1, max_size=12), position=anything)
def test_sentence_position_counts_from_the_last_separator(tokens, position):
    got = call(mtp.sentence_position, tokens, position)
    if got is not None:
        i = int(position)  # 3.0 counts as 3
        assert got >= 1 and all(t != 0 for t in tokens[i - got + 1: i])
        assert i - got < 0 or tokens[i - got] == 0


@FAST
@given(prompt=st.lists(st.integers(0, 11), min_size=1, max_size=6),
       new=st.integers(1, 12), depth=st.sampled_from([1, 2]))
def test_greedy_speculation_equals_plain_decoding(prompt, new, depth):
    model, idx = MODELS[depth], torch.tensor([prompt])
    run = speculative.speculative_generate(model, idx, new)
    assert torch.equal(run.tokens, generate(model, idx, new))
    assert 1 <= run.tokens_per_step <= depth + 1  # a step yields 1 to D + 1 tokens
    assert all(d.accepted == (d.token == d.verified) for d in run.drafts)


@FAST
@given(new=anything, temperature=anything, draft_temperature=anything,
       depth=st.sampled_from([0, 1, 2]))
def test_speculation_refuses_bad_settings_with_a_sentence(new, temperature, draft_temperature,
                                                          depth):
    if isinstance(new, int) and not isinstance(new, bool) and new > 40:
        new = 40
    gen = torch.Generator().manual_seed(0)
    run = call(speculative.speculative_generate, MODELS[depth], torch.tensor([[0, 1]]), new,
               temperature, draft_temperature, gen)
    if run is not None:
        assert depth > 0 and run.tokens.shape == (1, 2 + new)


@FAST
@given(length=anything)
def test_truncate_cache_keeps_at_most_length(length):
    model = MODELS[1]
    cache = model.new_cache()
    model(torch.tensor([[1, 2, 3, 4, 5]]), cache=cache)
    refused = call(lambda: speculative.truncate_cache(cache, length) or "kept") is None
    kept = [len(c) for c in cache]  # one layer
    assert kept == ([5] if refused else [min(5, length)])  # a refusal leaves the cache alone
    whole = (isinstance(length, (int, float)) and not isinstance(length, bool)
             and math.isfinite(length) and float(length).is_integer() and length >= 0)
    assert refused == (not whole)  # 3.0 counts as 3; True, 2.5, nan and -1 do not


@FAST
@given(seq_len=anything, windows=anything)
def test_depth_accuracy_rates_are_fractions(seq_len, windows):
    stream = torch.arange(200) % 12
    got = call(mtp.depth_accuracy, MODELS[2], stream, seq_len, windows)
    if got is not None:
        rates = [got.next_token, *got.depth, *got.agrees_with_main]
        assert len(got.depth) == 2 and all(0 <= r <= 1 and math.isfinite(r) for r in rates)


@FAST
@given(lams=st.one_of(st.lists(anything, max_size=3), anything),
       depths=st.one_of(st.lists(anything, max_size=2), anything),
       seeds=st.one_of(st.lists(anything, max_size=3), anything))
def test_study_settings_validate_the_grid(lams, depths, seeds):
    key = call(mtp_study.settings, lams, depths, seeds)
    if key is not None:
        assert key["lams"] == sorted(set(key["lams"])) and all(0 <= x <= 10 for x in key["lams"])
        assert set(key["depths"]) <= {1, 2} and all(s >= 0 for s in key["seeds"])


@pytest.mark.parametrize("fn,args", [
    (mtp.depth_accuracy, (MODELS[0], torch.arange(100) % 12, 8)),
    (mtp.two_token_guesses, (MODELS[0], "the")),
    (speculative.step_costs, (MODELS[0],)),
    (mtp.token_type, (3,)),
])
def test_models_without_mtp_and_odd_words_get_a_sentence(fn, args):
    with pytest.raises(ValueError, match=r"\w+ \w+ \w+"):
        fn(*args)
