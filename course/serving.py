"""Serving (notebook 15): a real toy server over the tiny DeepSeek, the same trade-off at
DeepSeek-V3's scale on paper, and the economics of DeepSeek's published day of service.

**1. The toy server** (`serve`). The trained tiny DeepSeek of notebook 14 (MLA cache, MoE)
serves a seeded stream of requests (`workload`: Poisson arrivals, prompt and output
lengths from uniform distributions, a shared "system prompt" prefix on a chosen share).
Each loop: admit waiting requests while the batch cap and the KV-cache budget allow
(a request reserves its prompt plus its longest output, so memory can never overflow);
**prefill** each admitted prompt (one forward pass, which also gives its first token);
then one **decode step** for the whole running batch (continuous batching: requests join
and leave between steps). A **prefix cache** keeps the latent cache of the shared prefix
and copies it into a new request instead of recomputing it. Every step is timed on this
machine; a virtual clock adds the measured times (and jumps over idle gaps), so
time-to-first-token (TTFT) and time-per-output-token (TPOT) are measured, not modelled.

In a decode step each request's attention reads its own cache (`model.blocks[i].attn`
with that request's `MLACache`), while the norms, the MoE FFN and the output head run
once on the whole batch: the weights are read once per step, the caches once per request,
which is why batching pays. `decode_step` composes the model's own modules the way
`course.attention.Block.forward` does; the tests check the result token for token
against `course.model.generate`.

**2. V3 on paper** (`v3_decode`, `v3_prefill`) lives in `course.serving_v3`, **3. the
economics** of DeepSeek's published day of service (`PUBLISHED`, `daily_cost`, `scenario`,
...) in `course.serving_economics`, the requests and records (`workload`, `ServeResult`)
in `course.serving_requests`; all of them are re-exported here.

Left out: sampling (greedy only), stop tokens (every request decodes its max length),
paged memory (a request's cache is its own buffer; the prefix is copied, not shared),
chunked prefill, and prefill/decode on separate machines (here one CPU does both, so a
prefill pauses the running batch: the interference disaggregation removes).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from course import timing
from course.presets import preset
from course.serving_economics import (
    PUBLISHED,
    cost_profit_margin,
    daily_cost,
    daily_revenue,
    nodes_needed,
    published_revenue,
    revenue_margin,
    scenario,
)
from course.serving_requests import (
    Request,
    RequestStats,
    ServeResult,
    Step,
    system_prompt,
    workload,
)
from course.serving_v3 import (
    DECODE_LAYOUT,
    PREFILL_LAYOUT,
    V3Step,
    v3_decode,
    v3_decode_curve,
    v3_prefill,
)
from course.timing import one_thread

__all__ = ["DECODE_LAYOUT", "PREFILL_LAYOUT", "PUBLISHED", "PrefixStore", "Request",
           "RequestStats", "ServeResult", "Step", "V3Step", "batch_sweep", "cost_profit_margin",
           "daily_cost", "daily_revenue", "decode_step", "generate_alone", "nodes_needed",
           "prefill", "prefill_seconds", "published_revenue", "revenue_margin", "run",
           "scenario", "serve", "system_prompt", "toy_model", "v3_decode", "v3_decode_curve",
           "v3_prefill", "workload"]

# ------------------------------------------------------------------------ model steps


@torch.no_grad()
def prefill(model, tokens, cache) -> torch.Tensor:
    """Run the prompt `tokens` (a sequence of ids) through the model, filling `cache`
    (the model's per-layer cache list, possibly already holding a prefix); returns the
    logits (V,) of the last position."""
    idx = torch.tensor([list(tokens)], dtype=torch.long)
    return model(idx, cache=cache).logits[0, -1]


@torch.no_grad()
def decode_step(model, tokens, caches) -> torch.Tensor:
    """One decode step for a batch of requests at different positions.

    tokens: (B,) the newest token of each request; caches: B per-layer cache lists.
    Attention runs per request on its own cache (one `attn` call each); the norms, the FFN
    (MoE) and the head run once on the (B, 1, d) batch. Returns logits (B, V)."""
    x = model.embed(torch.as_tensor(tokens, dtype=torch.long)[:, None])
    for i, block in enumerate(model.blocks):  # as Block.forward, attention split by request
        h = block.attn_norm(x)
        x = x + torch.cat([block.attn(h[j:j + 1], caches[j][i]) for j in range(len(caches))])
        x = x + block.ffn(block.ffn_norm(x))
    return model.head(model.norm(x))[:, -1]


class PrefixStore:
    """Cached latents of shared prefixes: prefix tokens -> per-layer (latent, k^R) copies.
    Like DeepSeek's on-disk KV cache it lives outside the GPU budget."""

    def __init__(self):
        self.entries: dict[tuple, list] = {}

    def __contains__(self, prefix: tuple) -> bool:
        return prefix in self.entries

    def save(self, prefix: tuple, cache) -> None:
        n = len(prefix)
        self.entries[prefix] = [{k: buf[:, :n].clone() for k, buf in layer.buffers.items()}
                                for layer in cache]

    def load_into(self, prefix: tuple, cache, room: int = 64) -> None:
        """Copy the prefix into an empty cache, with `room` more positions reserved."""
        for layer, parts in zip(cache, self.entries[prefix]):
            first = next(iter(parts.values()))
            layer.reserve(1, len(prefix) + room, first.dtype, first.device)
            layer.append(**parts)


# ------------------------------------------------------------------------------ serving


def _check_serve(requests, max_batch: int, budget_tokens: int) -> None:
    if not requests:
        raise ValueError("There are no requests to serve.")
    if int(max_batch) != max_batch or max_batch < 1:
        raise ValueError(f"The batch cap must be a whole number of at least 1, not {max_batch}.")
    need = max(len(r.prompt) + r.max_new for r in requests)
    if budget_tokens < need:
        raise ValueError(f"The KV-cache budget ({budget_tokens} tokens) cannot hold the "
                         f"longest request ({need} tokens of prompt and output): raise it.")


def _timed(fn):
    """(fn(), its seconds): one run on `course.timing`'s clock, no warm-up (a server step
    happens once)."""
    out = []
    seconds = timing.times(lambda: out.append(fn()), repeats=1, warmup=0)[0]
    return out[0], seconds


def serve(model, requests, max_batch: int = 8, budget_tokens: int = 512,
          prefix_cache: bool = True, progress=None) -> ServeResult:
    """Serve `requests` greedily with continuous batching; see the module docstring.

    max_batch: most requests decoding together; budget_tokens: KV-cache tokens the running
    requests may hold (each reserves prompt + max_new at admission, FIFO, no overtaking);
    prefix_cache: reuse the cached latent of a shared prefix. `progress(done, total, text)`
    is called after every step. Returns a `ServeResult` with measured times."""
    from course.tiny_deepseek import kv_formula

    _check_serve(requests, max_batch, budget_tokens)
    model.eval()
    pending = sorted(requests, key=lambda r: (r.arrival, r.rid))
    stats = {r.rid: RequestStats(r.rid, r.arrival, len(r.prompt), r.max_new) for r in pending}
    store, waiting, running, steps = PrefixStore(), [], [], []
    clock, reserved, done, total = 0.0, 0, 0, len(pending)
    caches, last = {}, {}
    moe_layers = model.moe_layers()
    load = np.zeros((len(moe_layers), moe_layers[0].E)) if moe_layers else None

    def count_load():
        for i, m in enumerate(moe_layers):
            load[i] += m.last_load.numpy()

    def record(kind, start, seconds, batch):
        used = sum(len(caches[r.rid][0]) for r in running)
        steps.append(Step(kind, start, seconds, batch, used, reserved))

    def admit(r, store):
        """Prefill r (from the cached prefix when `store` has it): (tokens computed, first
        token)."""
        caches[r.rid] = cache = model.new_cache()
        prefix = r.prompt[: r.prefix_len]
        reuse = store is not None and r.prefix_len and prefix in store
        if reuse:
            store.load_into(prefix, cache)
        todo = r.prompt[r.prefix_len:] if reuse else r.prompt
        logits = prefill(model, todo, cache)
        if store is not None and r.prefix_len and not reuse:
            store.save(prefix, cache)
        return todo, int(logits.argmax())

    def decode(batch):
        """One decode step for the batch: each request's next token."""
        logits = decode_step(model, [last[r.rid] for r in batch],
                             [caches[r.rid] for r in batch])
        return logits.argmax(-1).tolist()

    def finish(r):
        nonlocal reserved, done
        stats[r.rid].finish = clock
        running.remove(r)
        reserved -= len(r.prompt) + r.max_new
        del caches[r.rid], last[r.rid]
        done += 1

    with one_thread():
        decode_step(model, [0], [model.new_cache()])  # warm-up, untimed: first calls are slow
        while pending or waiting or running:
            while pending and pending[0].arrival <= clock:
                waiting.append(pending.pop(0))
            if not waiting and not running:
                clock = pending[0].arrival  # idle: jump to the next arrival
                continue
            while (waiting and len(running) < max_batch
                   and reserved + len(waiting[0].prompt) + waiting[0].max_new <= budget_tokens):
                r = waiting.pop(0)
                reserved += len(r.prompt) + r.max_new
                running.append(r)
                stats[r.rid].admitted = clock
                (todo, last[r.rid]), seconds = _timed(
                    lambda r=r: admit(r, store if prefix_cache else None))
                count_load()
                stats[r.rid].prefill_tokens = len(todo)
                stats[r.rid].tokens.append(last[r.rid])
                record("prefill", clock, seconds, 1)
                clock += seconds
                stats[r.rid].first_token = clock
                if r.max_new == 1:
                    finish(r)
            batch = [r for r in running if len(stats[r.rid].tokens) < r.max_new]
            if batch:
                nxt, seconds = _timed(lambda b=batch: decode(b))
                count_load()
                record("decode", clock, seconds, len(batch))
                clock += seconds
                for r, t in zip(batch, nxt):
                    last[r.rid] = t
                    stats[r.rid].tokens.append(t)
                    if len(stats[r.rid].tokens) == r.max_new:
                        finish(r)
            if progress is not None:
                progress(done, total, f"serving: {done} of {total} requests done, "
                                      f"{len(running)} running, {len(waiting)} waiting")
    return ServeResult([stats[r.rid] for r in sorted(requests, key=lambda r: r.rid)], steps,
                       budget_tokens, max_batch, prefix_cache, kv_formula(model.cfg), load)


@torch.no_grad()
def prefill_seconds(model, request: Request, repeats: int = 9) -> dict:
    """Best-of-`repeats` seconds to prefill `request` whole and, with its shared prefix
    already cached, only the rest (the min is the least-disturbed run on a busy machine)."""
    if not request.prefix_len:
        raise ValueError("This request has no shared prefix to reuse.")
    model.eval()
    prefix = request.prompt[: request.prefix_len]
    store = PrefixStore()
    with one_thread():
        cache = model.new_cache()
        prefill(model, prefix, cache)
        store.save(prefix, cache)

        def whole():
            prefill(model, request.prompt, model.new_cache())

        def rest():
            cache = model.new_cache()
            store.load_into(prefix, cache)
            prefill(model, request.prompt[request.prefix_len:], cache)

        whole_s, rest_s = (timing.best_seconds(fn, repeats) for fn in (whole, rest))
    return dict(whole_s=whole_s, rest_s=rest_s, whole_tokens=len(request.prompt),
                rest_tokens=len(request.prompt) - request.prefix_len)


@torch.no_grad()
def generate_alone(model, request: Request) -> list:
    """The reference: `course.model.generate` on this one request, greedy, batch 1."""
    from course.model import generate

    with one_thread():
        idx = torch.tensor([list(request.prompt)])
        return generate(model, idx, request.max_new)[0, idx.shape[1]:].tolist()


@lru_cache(maxsize=1)
def toy_model():
    """The tiny DeepSeek of notebook 14 with FP32 linears (`tiny_deepseek.train("fp32")`:
    MLA, MoE with bias balancing, MTP; a few seconds to train, cached in memory). FP8 is
    emulated on a CPU and only slows serving down here, so the server uses this variant."""
    from course import tiny_deepseek as td

    return td.train("fp32").model.eval()


def run(max_batch: int | None = None, rate: float | None = None,
        budget_tokens: int | None = None, prefix_share: float | None = None,
        prefix_cache: bool = True, seed: int = 0, progress=None, model=None) -> ServeResult:
    """The default experiment: the "serving" preset's workload served by `toy_model()`."""
    p = preset("serving")
    model = model if model is not None else toy_model()
    requests = workload(rate=rate, prefix_share=prefix_share, seed=seed)
    return serve(model, requests, max_batch or p["max_batch"],
                 budget_tokens or p["budget_tokens"], prefix_cache, progress)


def batch_sweep(batches=(1, 2, 4, 8, 16), progress=None, model=None, **kw) -> list[dict]:
    """`run` at each batch cap: throughput against latency (one summary dict each)."""
    rows = []
    for i, b in enumerate(batches):
        if progress is not None:
            progress(i, len(batches), f"batch cap {b}: serving ({i + 1} of {len(batches)})")
        rows.append(dict(max_batch=b, **run(max_batch=b, model=model, **kw).summary()))
    if progress is not None:
        progress(len(batches), len(batches), "done")
    return rows
