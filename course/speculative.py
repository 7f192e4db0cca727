"""Speculative decoding with the MTP module as the draft (DeepSeek-V3 report, 5.4.3).

One *main-model step* feeds the newest token plus D drafted tokens; the main model
checks every draft in that one forward pass. Drafts it agrees with are kept, the first
disagreement is replaced by the main model's own token, and when all drafts pass, the
last position gives one more token for free. A step therefore yields 1 to D+1 tokens.

* Greedy (temperature 0): a draft is accepted iff it equals the main model's argmax,
  so the output is token for token what `course.model.generate` gives.
* Sampled: the draft token x ~ q (the MTP head at `draft_temperature`) is accepted with
  probability min(1, p(x)/q(x)), p the main model at `temperature`; on rejection the
  token is drawn from max(0, p - q) renormalised (Leviathan et al. 2023, Chen et al. 2023).
  The output then follows the main model's distribution exactly, whatever q is.

Caches: the main model keeps a KV cache that is cut back after a rejection; depth k of
the MTP keeps its own cache of the positions whose inputs are all verified tokens.
One sequence at a time (batch 1), as in the report's per-request acceptance figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from course import timing, validate


@dataclass
class Draft:
    depth: int  # 1: the token after next (DeepSeek-V3's "second token"), 2: one further
    position: int  # index in the output sequence of the token it guessed
    token: int  # the drafted token
    verified: int  # the token the main model kept at that position
    accepted: bool


@dataclass
class SpecResult:
    tokens: torch.Tensor  # (1, T + max_new_tokens)
    main_steps: int  # main-model forward passes, the prompt's prefill included
    new_tokens: int
    drafts: list = field(default_factory=list)  # Draft records, in order
    seconds: float = 0.0

    @property
    def tokens_per_step(self) -> float:
        return self.new_tokens / self.main_steps


def truncate_cache(cache, length: int) -> None:
    """Forget every cached position from `length` on (after a rejected draft)."""
    length = validate.non_negative_int("length (positions to keep)", length)
    if isinstance(cache, (list, tuple)):  # the model's cache: one per layer
        for layer_cache in cache:
            truncate_cache(layer_cache, length)
    elif hasattr(cache, "length"):  # course.mla caches: preallocated buffers + a length
        cache.length = min(cache.length, length)
    elif hasattr(cache, "k"):  # course.attention.KVCache: (B, H, S, d) tensors
        if cache.k is not None:
            cache.k, cache.v = cache.k[..., :length, :], cache.v[..., :length, :]
    else:
        raise ValueError(f"Cannot roll back a {type(cache).__name__}.")


def _probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(V,) logits -> (V,) probabilities; temperature 0 is the one-hot of the argmax."""
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.shape[-1]).float()
    return (logits.float() / temperature).softmax(-1)


def _sample(p: torch.Tensor, generator) -> int:
    if p.max() >= 1.0:  # one-hot: no random draw, so greedy runs never touch the RNG
        return int(p.argmax())
    return int(torch.multinomial(p, 1, generator=generator))


def _verify(p: torch.Tensor, q: torch.Tensor, x: int, generator) -> tuple[bool, int]:
    """Accept draft x ~ q with prob min(1, p[x]/q[x]); else draw from (p - q)+."""
    ratio = float(p[x] / q[x]) if q[x] > 0 else 0.0
    if ratio >= 1.0 or (ratio > 0 and float(torch.rand(1, generator=generator)) < ratio):
        return True, x
    rest = (p - q).clamp(min=0)
    return False, _sample(rest / rest.sum() if rest.sum() > 0 else p, generator)


class _Drafter:
    """The MTP modules with their caches: each call drafts D tokens after the sequence."""

    def __init__(self, model):
        self.model, self.D = model, model.cfg.mtp_depth
        self.caches = [m.new_cache() for m in model.mtp]
        d, self.device = model.cfg.d_model, model.embed.weight.device
        self.hist = [torch.zeros(1, 0, d, device=self.device)
                     for _ in range(self.D + 1)]  # verified h^k
        self.done = [0] * self.D  # depth k: positions whose inputs are all verified

    def add_main_hidden(self, h: torch.Tensor) -> None:
        self.hist[0] = torch.cat([self.hist[0], h], dim=1)

    def draft(self, seq: list[int], temperature: float, generator):
        """seq: verified tokens t_0..t_n, main hidden known for 0..n-1 -> D drafts, D q's."""
        n, m = len(seq) - 1, self.model
        ids, h_prev, drafts, qs = list(seq), self.hist[0], [], []
        for k, module in enumerate(m.mtp, start=1):
            c = self.done[k - 1]
            truncate_cache(self.caches[k - 1], c)
            # eq. 21 at positions j = c..n-1: h^{k-1}_j with the embedding of t_{j+k}
            emb = m.embed(torch.tensor([ids[c + k: n + k]], device=self.device))
            out = module(h_prev[:, c:n], emb, cache=self.caches[k - 1])
            full = torch.cat([self.hist[k][:, :c], out], dim=1)  # h^k at 0..n-1
            # positions j <= n-k used only verified tokens: keep them for the next round
            self.done[k - 1] = max(0, n - k + 1)
            self.hist[k] = full[:, : self.done[k - 1]]
            q = _probs(m.head(m.norm(out[0, -1])), temperature)  # eq. 23: shared head
            x = _sample(q, generator)
            drafts.append(x)
            qs.append(q)
            ids.append(x)
            h_prev = full
        return drafts, qs


@torch.no_grad()
def speculative_generate(model, idx: torch.Tensor, max_new_tokens: int,
                         temperature: float = 0.0, draft_temperature: float = 0.0,
                         generator: torch.Generator | None = None) -> SpecResult:
    """Continue `idx` (1, T) by `max_new_tokens` tokens, drafting with the MTP modules."""
    if not getattr(getattr(model, "cfg", None), "mtp_depth", 0):
        raise ValueError("Speculative decoding needs a model with an MTP module (depth ≥ 1).")
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.shape[0] != 1 or idx.shape[1] < 1:
        raise ValueError("Give one prompt of at least one token, shape (1, T).")
    max_new_tokens = validate.integer("max_new_tokens", max_new_tokens, 1, 100_000)
    temperature = validate.non_negative("temperature", temperature)
    draft_temperature = validate.non_negative("draft_temperature", draft_temperature)
    model.eval()
    start = time.perf_counter()
    cache, drafter = model.new_cache(), _Drafter(model)
    out = model(idx, cache=cache)  # prefill: the first main-model step
    drafter.add_main_hidden(out.hidden)
    seq = idx[0].tolist() + [_sample(_probs(out.logits[0, -1], temperature), generator)]
    result = SpecResult(tokens=idx, main_steps=1, new_tokens=0)
    while len(seq) - idx.shape[1] < max_new_tokens:
        n = len(seq) - 1
        drafts, qs = drafter.draft(seq, draft_temperature, generator)
        step = torch.tensor([[seq[-1], *drafts]], device=idx.device)
        out = model(step, cache=cache)  # the main model checks every draft in one pass
        result.main_steps += 1
        kept = []
        for j, (x, q) in enumerate(zip(drafts, qs)):
            ok, token = _verify(_probs(out.logits[0, j], temperature), q, x, generator)
            kept.append(token)
            result.drafts.append(Draft(j + 1, n + 1 + j, x, token, ok))
            if not ok:
                break
        else:  # every draft passed: the last position predicts one more token
            kept.append(_sample(_probs(out.logits[0, -1], temperature), generator))
        truncate_cache(cache, n + len(kept))  # drop the rejected draft's keys and values
        drafter.add_main_hidden(out.hidden[:, : len(kept)])
        seq += kept
    seq = seq[: idx.shape[1] + max_new_tokens]
    result.tokens = torch.tensor([seq], device=idx.device)
    result.new_tokens = max_new_tokens
    result.seconds = time.perf_counter() - start
    return result


def expected_tokens_per_step(acceptance: list[float]) -> float:
    """Tokens per main-model step when depth k's draft passes with probability p_k (given
    every earlier draft passed): 1 + p_1 + p_1 p_2 + ...  With one draft: the 1 + p ceiling."""
    if isinstance(acceptance, (str, bytes)) or not hasattr(acceptance, "__iter__"):
        raise ValueError(f"acceptance must be a list of rates, not {acceptance!r}.")
    total, chain = 1.0, 1.0
    for p in acceptance:
        chain *= validate.fraction("acceptance rate", p)
        total += chain
    return total


def speedup_estimate(tokens_per_step: float, plain_step_s: float, verify_step_s: float,
                     draft_s: float) -> float:
    """Decoding speed-up over plain decoding: tokens per step times the cost ratio of a
    plain one-token step to one speculative step (verify D+1 tokens, plus drafting)."""
    tokens_per_step = validate.positive("tokens_per_step", tokens_per_step)
    plain_step_s = validate.positive("plain_step_s", plain_step_s)
    verify_step_s = validate.positive("verify_step_s", verify_step_s)
    draft_s = validate.non_negative("draft_s", draft_s)
    return tokens_per_step * plain_step_s / (verify_step_s + draft_s)


@dataclass
class StepCosts:
    plain_s: float  # main model, one new token against a cache of `context` tokens
    verify_s: float  # main model, D+1 new tokens against the same cache
    draft_s: float  # all D MTP depths, one new position each


@torch.no_grad()
def step_costs(model, context: int = 32, repeats: int = 30) -> StepCosts:
    """Fastest wall time of each kind of decoding step over `repeats` interleaved rounds
    (`course.timing.lap_times`: on a busy machine the fastest is the least disturbed)."""
    if not getattr(getattr(model, "cfg", None), "mtp_depth", 0):
        raise ValueError("step_costs needs a model with an MTP module (depth ≥ 1).")
    context = validate.integer("context", context, 1, 100_000)
    repeats = validate.integer("repeats", repeats, 1, 10_000)
    model.eval()
    dev, D = model.embed.weight.device, model.cfg.mtp_depth
    ids = torch.randint(0, model.cfg.vocab_size, (1, context + D + 1),
                        generator=torch.Generator().manual_seed(0)).to(dev)
    cache, drafter = model.new_cache(), _Drafter(model)
    drafter.add_main_hidden(model(ids[:, :context], cache=cache).hidden)
    seq = ids[0, : context + 1].tolist()
    drafter.draft(seq, 0.0, None)  # fills the MTP caches up to the context

    def one_draft():  # as after a step that verified one new token
        drafter.done = [max(0, context - k) for k in range(1, D + 1)]
        drafter.draft(seq, 0.0, None)

    def main_step(new: int):  # n new tokens against the context (rolled back first: ~µs)
        def step(_):
            truncate_cache(cache, context)
            model(ids[:, context: context + new], cache=cache)
        return step

    laps = timing.lap_times([main_step(1), main_step(D + 1), lambda _: one_draft()], repeats,
                            device=dev)
    truncate_cache(cache, context)
    plain, verify, draft = (t[0] for t in laps)  # the fastest of each
    return StepCosts(plain, verify, draft)
