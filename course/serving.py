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

**2. V3 on paper** (`v3_decode`, `v3_prefill`): one H800 of DeepSeek's decode layout
(EP144: attention and shared expert data-parallel, 2 routed-expert slots per GPU) at a
batch of requests per GPU, with a roofline step time (weights and KV cache over HBM,
FP8 matmuls and BF16 attention over the tensor cores, the all-to-all over InfiniBand),
compared with the published ~14.8k output tokens/s per node; prefill against ~73.7k.

**3. Economics** (`PUBLISHED`, `daily_cost`, `daily_revenue`, `scenario`): DeepSeek's
"Day 6: DeepSeek-V3/R1 Inference System Overview" (open-source week, 2025-03-01).

Left out: sampling (greedy only), stop tokens (every request decodes its max length),
paged memory (a request's cache is its own buffer; the prefix is copied, not shared),
chunked prefill, and prefill/decode on separate machines (here one CPU does both, so a
prefill pauses the running batch: the interference disaggregation removes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from course import timing
from course.presets import preset
from course.timing import one_thread

# ----------------------------------------------------------------------------- requests


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


# -------------------------------------------------------------------- DeepSeek-V3 on paper

#: Day 6 overview: the decode and prefill deployment units.
DECODE_LAYOUT = dict(nodes=18, gpus=144, routed_slots_per_gpu=2, redundant=32)
PREFILL_LAYOUT = dict(nodes=4, gpus=32, routed_slots_per_gpu=9, redundant=32)


@dataclass(frozen=True)
class V3Step:
    """One decode step on one GPU of the decode unit, times in seconds."""

    batch: int  # requests on this GPU (data-parallel attention)
    context: int  # cached tokens per request
    weight_s: float  # non-routed weights + this GPU's routed experts, read once
    kv_s: float  # every request's latent cache, read once
    matmul_s: float  # 2 x active params x batch, FP8 tensor cores
    attention_s: float  # core MLA (absorbed) over the context, BF16 tensor cores
    comm_s: float  # all-to-all dispatch (FP8) + combine (BF16) over InfiniBand
    overlap: bool  # communication hidden behind computation (two micro-batches)

    @property
    def gpu_s(self) -> float:
        """Roofline of the GPU work: the slower of memory and compute."""
        return max(self.weight_s + self.kv_s, self.matmul_s + self.attention_s)

    @property
    def seconds(self) -> float:
        return max(self.gpu_s, self.comm_s) if self.overlap else self.gpu_s + self.comm_s

    @property
    def tokens_per_s_per_node(self) -> float:
        return 8 * self.batch / self.seconds

    @property
    def tokens_per_s_per_request(self) -> float:
        return 1 / self.seconds


@lru_cache(maxsize=4)
def _v3_parts(gpu_name: str, kv_dtype_bytes: float) -> dict:
    """DeepSeek-V3's per-GPU constants for the decode unit (cached: configs parse once)."""
    from course import kvcache
    from course.configs import gpu, load_config
    from course.memory import ffn_params, param_count

    cfg, spec = load_config("deepseek-v3"), gpu(gpu_name)
    pc = param_count(cfg)
    resident = sum(pc.by_part[k] for k in ("attention", "dense_mlp", "shared_experts",
                                           "router", "norms", "output_head"))
    routed = (DECODE_LAYOUT["routed_slots_per_gpu"] * cfg.n_moe_layers
              * ffn_params(cfg.hidden_size, cfg.moe_intermediate_size))
    return dict(cfg=cfg, resident=resident, routed=routed, hbm=spec.hbm_tb_s * 1e12,
                fp8=spec.peak_tflops("fp8") * 1e12, bf16=spec.peak_tflops("bf16") * 1e12,
                active=pc.active_without_embedding,
                kv_per_token=kvcache.kv_bytes_per_token(cfg, kv_dtype_bytes))


def v3_decode(batch: int, context: int = 4989, gpu_name: str = "H800", overlap: bool = False,
              weight_bytes: float = 1.0, kv_dtype_bytes: float = 2.0,
              ib_gb_s: float | None = None) -> V3Step:
    """A roofline decode step for one GPU of DeepSeek's decode unit (EP144, DP144).

    Assumes: every request at the same `context` (default: the published average KV
    length per output token, 4,989); the GPU holds all non-routed weights (attention,
    dense layers, shared expert, router, output head) and 2 routed-expert slots per MoE
    layer, all in FP8 (`weight_bytes`); the latent cache in BF16; datasheet peaks
    (FP8 for matmuls, BF16 for attention) and HBM bandwidth reached exactly; EPLB's
    perfect balance; each token's 8 routed experts on other nodes, dispatch 1 byte and
    combine 2 bytes per hidden value over `ib_gb_s` (50 GB/s per GPU, V3 report 3.2.2);
    no MTP speculation."""
    from course import kvcache
    from course.configs import DEEPSEEK_IB_GB_S

    if int(batch) != batch or batch < 1 or context < 1:
        raise ValueError("batch and context must be at least 1.")
    c = _v3_parts(gpu_name, float(kv_dtype_bytes))
    cfg = c["cfg"]
    attn = batch * kvcache.attention_flops_per_token(cfg, context, "absorbed")
    ib = (ib_gb_s or DEEPSEEK_IB_GB_S) * 1e9
    comm = cfg.n_moe_layers * batch * cfg.experts_per_token * cfg.hidden_size * (1 + 2) / ib
    return V3Step(int(batch), int(context), (c["resident"] + c["routed"]) * weight_bytes
                  / c["hbm"], batch * context * c["kv_per_token"] / c["hbm"],
                  2 * c["active"] * batch / c["fp8"], attn / c["bf16"], comm, overlap)


def v3_decode_curve(batches, **kw) -> dict:
    """Tokens/s per node and per request against requests per GPU, without and with
    overlap of the all-to-all."""
    out = {}
    for overlap in (False, True):
        steps = [v3_decode(int(b), overlap=overlap, **kw) for b in batches]
        out["overlap" if overlap else "serial"] = dict(
            per_node=[s.tokens_per_s_per_node for s in steps],
            per_request=[s.tokens_per_s_per_request for s in steps])
    out["batches"] = [int(b) for b in batches]
    return out


def v3_prefill(context: int = 2500, efficiency: float = 1.0, cache_hit: float | None = None,
               gpu_name: str = "H800") -> dict:
    """Input tokens/s per node in DeepSeek's prefill unit, compute-bound.

    A computed prompt token costs 2 x active params (FP8) plus attention over `context`
    earlier tokens (BF16, keys and values expanded per head as prefill does: the "mha"
    path of `course.kvcache`); the tensor cores run at `efficiency` x datasheet peak.
    Cache hits (`cache_hit`, default the published 56.3%) cost no compute but count as
    input tokens, as in the published ~73.7k. Returns the rates and the efficiency the
    published figure implies under the same assumptions."""
    from course import kvcache
    from course.configs import gpu, load_config
    from course.memory import param_count

    if context < 1 or not 0 < efficiency <= 1:
        raise ValueError("context must be at least 1 and efficiency in (0, 1].")
    hit = PUBLISHED["cache_hit_tokens"] / PUBLISHED["input_tokens"] if cache_hit is None \
        else cache_hit
    if not 0 <= hit < 1:
        raise ValueError(f"The cache-hit share must be in [0, 1), not {hit}.")
    cfg, spec = load_config("deepseek-v3"), gpu(gpu_name)
    matmul = 2 * param_count(cfg).active_without_embedding / (spec.peak_tflops("fp8") * 1e12)
    attn = kvcache.attention_flops_per_token(cfg, context, "mha") / (
        spec.peak_tflops("bf16") * 1e12)
    seconds = (matmul + attn) / efficiency  # per computed token, per GPU
    computed = 8 / seconds
    published_computed = PUBLISHED["prefill_tokens_per_s_per_node"] * (1 - hit)
    return dict(computed_per_node=computed, input_per_node=computed / (1 - hit),
                cache_hit=hit, matmul_s=matmul, attention_s=attn,
                implied_efficiency=published_computed * (matmul + attn) / 8)


# ----------------------------------------------------------------------------- economics

#: DeepSeek, "Day 6: One More Thing, DeepSeek-V3/R1 Inference System Overview" (2025-03-01),
#: one day from 2025-02-27 12:00 to 02-28 12:00 UTC+8, V3 and R1 together.
PUBLISHED = dict(
    peak_nodes=278, average_nodes=226.75, gpus_per_node=8, hours=24, gpu_hour_price=2.0,
    input_tokens=608e9, cache_hit_tokens=342e9, output_tokens=168e9,
    price_hit=0.14, price_miss=0.55, price_output=2.19,  # R1 API, $ per million tokens
    cost=87_072, revenue=562_027, cost_profit_margin_pct=545,
    tokens_per_s_per_request=(20, 22), kv_length_per_output_token=4989,
    prefill_tokens_per_s_per_node=73.7e3, decode_tokens_per_s_per_node=14.8e3,
)


def daily_cost(nodes: float = PUBLISHED["average_nodes"], price: float = 2.0,
               gpus_per_node: int = 8, hours: float = 24) -> float:
    """Dollars a day: nodes x GPUs per node x hours x price per GPU-hour."""
    if nodes < 0 or price < 0 or gpus_per_node < 1 or hours < 0:
        raise ValueError("Nodes, price and hours must not be negative.")
    return nodes * gpus_per_node * hours * price


def daily_revenue(cache_hit_tokens: float, cache_miss_tokens: float, output_tokens: float,
                  price_hit: float = 0.14, price_miss: float = 0.55,
                  price_output: float = 2.19) -> float:
    """Dollars a day if every token were billed, prices in $ per million tokens."""
    if min(cache_hit_tokens, cache_miss_tokens, output_tokens) < 0:
        raise ValueError("Token counts must not be negative.")
    return (cache_hit_tokens * price_hit + cache_miss_tokens * price_miss
            + output_tokens * price_output) / 1e6


def cost_profit_margin(revenue: float, cost: float) -> float:
    """DeepSeek's "cost profit margin": profit / cost (5.45 means 545%)."""
    if cost <= 0:
        raise ValueError("The cost must be positive.")
    return revenue / cost - 1


def revenue_margin(revenue: float, cost: float) -> float:
    """The margin as most accounts quote it: profit / revenue."""
    if revenue <= 0:
        raise ValueError("The revenue must be positive.")
    return (revenue - cost) / revenue


def published_revenue(rounding: bool = False):
    """Revenue from the published (rounded) token counts; with `rounding`, the (low, high)
    range every count within half a billion of its published value allows."""
    P = PUBLISHED
    hit, inp, out = P["cache_hit_tokens"], P["input_tokens"], P["output_tokens"]
    prices = (P["price_hit"], P["price_miss"], P["price_output"])
    if not rounding:
        return daily_revenue(hit, inp - hit, out, *prices)
    h = 0.5e9  # the miss price is higher, so fewer hits and more input give the most
    return (daily_revenue(hit + h, inp - h - (hit + h), out - h, *prices),
            daily_revenue(hit - h, inp + h - (hit - h), out + h, *prices))


def nodes_needed(input_tokens: float, output_tokens: float, prefill_per_node: float,
                 decode_per_node: float, seconds: float = 86_400) -> dict:
    """Average nodes busy all day to serve the tokens at the given per-node rates."""
    if prefill_per_node <= 0 or decode_per_node <= 0:
        raise ValueError("Tokens per second per node must be positive.")
    prefill = input_tokens / (prefill_per_node * seconds)
    decode = output_tokens / (decode_per_node * seconds)
    return dict(prefill=prefill, decode=decode, total=prefill + decode)


def scenario(price: float = 2.0, cache_hit: float = 0.5625, billed: float = 1.0,
             decode_per_node: float = 14.8e3, prefill_per_node: float = 73.7e3,
             idle: float = 0.0, price_scale: float = 1.0) -> dict:
    """The published day's tokens, served at your rates and prices.

    Nodes = the nodes the tokens keep busy at `decode_per_node` / `prefill_per_node`,
    plus `idle` (a share of capacity kept but unused: night-time slack, peaks);
    revenue = `billed` share of the tokens at R1 prices x `price_scale` with `cache_hit`
    of the input hitting the cache. Returns cost, revenue, both margins and the nodes."""
    P = PUBLISHED
    if not 0 <= cache_hit <= 1 or not 0 <= billed <= 1 or not 0 <= idle < 1:
        raise ValueError("cache_hit and billed must be in [0, 1], idle in [0, 1).")
    if price_scale < 0:
        raise ValueError("The price scale must not be negative.")
    busy = nodes_needed(P["input_tokens"], P["output_tokens"], prefill_per_node,
                        decode_per_node)
    nodes = busy["total"] / (1 - idle)
    cost = daily_cost(nodes, price)
    hit = P["input_tokens"] * cache_hit
    revenue = billed * price_scale * daily_revenue(
        hit, P["input_tokens"] - hit, P["output_tokens"], P["price_hit"], P["price_miss"],
        P["price_output"])
    return dict(nodes=nodes, busy=busy, cost=cost, revenue=revenue,
                profit=revenue - cost,
                cost_profit_margin=cost_profit_margin(revenue, cost) if cost else math.nan,
                revenue_margin=revenue_margin(revenue, cost) if revenue else math.nan)
