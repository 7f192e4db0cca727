"""The toy server's inputs and records (notebook 15, `course.serving`): a seeded stream of
requests (`workload`: Poisson arrivals, prompt and output lengths from uniform
distributions, a shared "system prompt" prefix on a chosen share) and what serving them
measured, per request (`RequestStats`: time to first token, time per output token) and
per step (`Step`), gathered in a `ServeResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from course.presets import preset


@dataclass(frozen=True)
class Request:
    rid: int
    arrival: float  # seconds after the start
    prompt: tuple  # token ids
    max_new: int  # tokens to generate
    prefix_len: int = 0  # leading tokens equal to the shared system prompt (0: none)


def system_prompt(length: int) -> tuple:
    """The shared prefix: the first `length` tokens of the held-out corpus stream (a
    stand-in for a system prompt or a long shared document)."""
    from course import data

    stream = data.split()[1]
    if not 1 <= length <= len(stream):
        raise ValueError(f"The shared prefix must be 1 to {len(stream)} tokens, not {length}.")
    return tuple(stream[:length].tolist())


def workload(n_requests: int | None = None, rate: float | None = None,
             prefix_share: float | None = None, seed: int = 0, size: str | None = None,
             **overrides) -> list[Request]:
    """A seeded stream of requests at the "serving" preset.

    rate: mean arrivals per second (Poisson: exponential gaps); prefix_share: the share of
    requests whose prompt starts with the shared `system_prompt`; each prompt then holds
    the first `prompt_min..prompt_max` words of a random training sentence (uniform) and
    asks for `output_min..output_max` new tokens (uniform). Overrides: any preset key.
    """
    from course import data

    p = preset("serving", size)
    p.update({k: v for k, v in dict(n_requests=n_requests, rate=rate,
                                    prefix_share=prefix_share).items() if v is not None})
    unknown = set(overrides) - set(p)
    if unknown:
        raise ValueError(f"Unknown workload setting(s): {', '.join(sorted(unknown))}.")
    p.update(overrides)
    if p["n_requests"] < 1 or p["rate"] <= 0:
        raise ValueError("The workload needs at least one request and a positive rate.")
    if not 0 <= p["prefix_share"] <= 1:
        raise ValueError(f"The prefix share must be between 0 and 1, not {p['prefix_share']}.")
    if not 1 <= p["prompt_min"] <= p["prompt_max"] or not 1 <= p["output_min"] <= p[
            "output_max"]:
        raise ValueError("Prompt and output lengths need 1 <= min <= max.")
    rng = np.random.default_rng(seed)
    tok = data.tokenizer()
    sentences = [tok.encode(s) for s in data.load_corpus()[:-int(len(data.load_corpus())
                                                                 * 0.1)]]
    prefix = system_prompt(p["prefix_len"]) if p["prefix_len"] else ()
    arrivals = np.cumsum(rng.exponential(1 / p["rate"], p["n_requests"]))
    requests = []
    for i, t in enumerate(arrivals):
        sent = sentences[rng.integers(len(sentences))]
        k = int(rng.integers(p["prompt_min"], p["prompt_max"] + 1))
        own = (0, *sent[: min(k, len(sent))])  # "." starts a sentence
        shared = rng.random() < p["prefix_share"]
        prompt = (prefix + own) if shared and prefix else own
        new = int(rng.integers(p["output_min"], p["output_max"] + 1))
        requests.append(Request(i, float(t - arrivals[0]), tuple(int(x) for x in prompt), new,
                                len(prefix) if shared and prefix else 0))
    return requests



@dataclass
class RequestStats:
    rid: int
    arrival: float
    prompt_len: int
    max_new: int
    admitted: float = math.nan
    first_token: float = math.nan
    finish: float = math.nan
    prefill_tokens: int = 0  # prompt tokens computed (the rest came from the prefix cache)
    tokens: list = field(default_factory=list)  # generated ids

    @property
    def ttft(self) -> float:
        """Time to first token: arrival to the end of its prefill."""
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float:
        """Time per output token after the first (nan for a one-token request)."""
        n = len(self.tokens)
        return (self.finish - self.first_token) / (n - 1) if n > 1 else math.nan

    @property
    def queued(self) -> float:
        return self.admitted - self.arrival


@dataclass
class Step:
    kind: str  # "prefill" or "decode"
    start: float
    seconds: float  # measured on this machine
    batch: int  # requests in the step
    used_tokens: int  # KV-cache tokens held by running requests after the step
    reserved_tokens: int  # tokens reserved by admitted requests (<= the budget)


@dataclass
class ServeResult:
    requests: list  # RequestStats, by rid
    steps: list  # Step, in order
    budget_tokens: int
    max_batch: int
    prefix_cache: bool
    kv_bytes_per_token: int  # of the toy model's cache (FP32 latents)
    expert_load: np.ndarray | None = None  # (MoE layers, experts) tokens routed while serving

    @property
    def makespan(self) -> float:
        return max(r.finish for r in self.requests) - min(r.arrival for r in self.requests)

    @property
    def output_tokens(self) -> int:
        return sum(len(r.tokens) for r in self.requests)

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.makespan

    @property
    def busy_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def ttft(self) -> np.ndarray:
        return np.array([r.ttft for r in self.requests])

    def tpot(self) -> np.ndarray:
        return np.array([r.tpot for r in self.requests if len(r.tokens) > 1])

    @property
    def prefill_tokens(self) -> int:
        return sum(r.prefill_tokens for r in self.requests)

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_len for r in self.requests)

    @property
    def prefill_seconds(self) -> float:
        return sum(s.seconds for s in self.steps if s.kind == "prefill")

    @property
    def peak_reserved(self) -> int:
        return max(s.reserved_tokens for s in self.steps)

    @property
    def peak_used(self) -> int:
        return max(s.used_tokens for s in self.steps)

    def summary(self) -> dict:
        ttft, tpot = self.ttft(), self.tpot()
        return dict(output_tokens_per_s=self.output_tokens_per_s,
                    mean_ttft_s=float(ttft.mean()), p90_ttft_s=float(np.percentile(ttft, 90)),
                    mean_tpot_s=float(tpot.mean()) if len(tpot) else math.nan,
                    mean_batch=float(np.mean([s.batch for s in self.steps
                                              if s.kind == "decode"] or [0])),
                    prefill_share_computed=self.prefill_tokens / self.prompt_tokens,
                    peak_used_tokens=self.peak_used, budget_tokens=self.budget_tokens)
