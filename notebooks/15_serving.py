# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 15 · Serving DeepSeek-V3
#
# > **You will** run a real (tiny) inference server: requests arrive, wait,
# > get prefilled, and decode together in one batch that requests join and
# > leave. You will measure what batching buys (tokens per second) and what it
# > costs (each token comes slower), then redo the trade-off on paper for
# > DeepSeek-V3 on H800s, balance its experts over 144 GPUs with DeepSeek's own
# > load balancer, and rebuild the "545% margin" of its published day of
# > service.
# > **Before this:** [11](11_kv_cache_mla.ipynb) (the KV cache and MLA),
# > [12](12_mtp.ipynb), [13](13_the_bill.ipynb) and
# > [14](14_tiny_deepseek.ipynb) (the tiny DeepSeek).
# > **Time:** about 25 minutes.

# %% [markdown]
# ## 1. Two phases: prefill and decode
#
# Serving a request has two very different phases:
#
# * **Prefill** runs the whole prompt through the model in one pass. Many
#   tokens share every weight read, so it is compute-bound. It fills the KV
#   cache and gives the first token.
# * **Decode** produces one token per forward pass, per request. One request
#   alone reads every weight to do a matrix–vector product, so it is
#   memory-bound ([notebook 11](11_kv_cache_mla.ipynb)). Decoding **many
#   requests together** shares the weight reads; only the KV cache is read per
#   request.
#
# DeepSeek runs the two phases on different machines ("DeepSeek-V3/R1
# Inference System Overview", open-source week day 6, 2025-03-01): a
# **prefill** unit of 4 nodes (32 H800s, each holding 9 routed experts and the
# shared one) and a **decode** unit of 18 nodes (144 H800s, 2 routed experts
# and the shared one each). Both add 32 **redundant** copies of busy experts.
# We meet each of these pieces below.

# %% [markdown]
# ## 2. A real toy server
#
# The server serves the tiny DeepSeek of [notebook 14](14_tiny_deepseek.ipynb)
# (MLA cache, mixture of experts), in its FP32 variant: a CPU has no FP8
# units, so FP8 would only slow serving down. It trains in a few seconds.

# %%
import ipywidgets as W
from IPython.display import display

from course import checks, data, serving
from course.plots import serving as plots

model = serving.toy_model()
requests = serving.workload()
tok = data.tokenizer()
print(f"{len(requests)} requests over {requests[-1].arrival:.2f} s; "
      f"{sum(1 for r in requests if r.prefix_len)} start with the shared "
      f"{requests[0].prefix_len}-token prefix")
r = requests[1]
print(f"request 1: prompt {tok.decode(r.prompt)!r}, wants {r.max_new} tokens")

# %% [markdown]
# The stream is seeded (`preset("serving")`): Poisson arrivals at 40 requests
# per second, each prompt the start of a corpus sentence, half of them behind a
# shared 32-token "system prompt", 4 to 20 new tokens each.
#
# The server loop (`serving.serve`), between two decode steps:
#
# 1. **admit** waiting requests, first come first served, while the batch cap
#    and the **KV-cache budget** allow (a request reserves its prompt plus its
#    longest answer, so memory can never run out half-way);
# 2. **prefill** each admitted prompt, reusing the cached latent of the shared
#    prefix when the **prefix cache** has it;
# 3. run **one decode step** for every running request, and retire the ones
#    that are done (**continuous batching**: requests join and leave between
#    steps).
#
# Every step is timed on this machine; the clock adds the measured times.

# %%
bar = W.IntProgress(max=len(requests), description="serving")
display(bar)
result = serving.serve(model, requests, max_batch=8, budget_tokens=512,
                       progress=lambda done, total, text: setattr(bar, "value", done))
s = result.summary()
print(f"{s['output_tokens_per_s']:,.0f} output tokens/s · time to first token "
      f"{1e3 * s['mean_ttft_s']:.0f} ms on average · {1e3 * s['mean_tpot_s']:.1f} ms per "
      f"output token · {s['mean_batch']:.1f} requests per decode step")
plots.server_timeline(result).show()

# %% [markdown]
# Grey is waiting, orange is the prefill, blue is decoding. The bottom panel
# shows the cache tokens held against the budget.
#
# Batching must not change *what* the model says, only *when*. Each request,
# generated alone with the plain `course.model.generate`, gives the same
# tokens:

# %%
alone = [serving.generate_alone(model, q) for q in requests]
same = sum(a == st.tokens for a, st in zip(alone, result.requests))
checks.check_close("requests whose batched tokens equal one-at-a-time generation",
                   same, len(requests))
print(repr(tok.decode(requests[1].prompt)), "→", repr(tok.decode(result.requests[1].tokens)))

# %% [markdown]
# ## 3. Throughput against latency
#
# The batch cap is the knob. Serve the same stream with a cap of 1, 4 and 16:

# %%
caps = (1, 4, 16)
bar = W.IntProgress(max=len(caps), description="batch caps")
display(bar)
rows = serving.batch_sweep(caps, model=model,
                           progress=lambda done, total, text: setattr(bar, "value", done))
for row in rows:
    print(f"cap {row['max_batch']:2d}: {row['output_tokens_per_s']:5.0f} tokens/s, "
          f"{1e3 * row['mean_tpot_s']:5.1f} ms per token, "
          f"first token after {1e3 * row['mean_ttft_s']:5.0f} ms")
plots.tradeoff(rows).show()
checks.check_close("cap 16 serves more tokens per second than cap 1",
                   rows[-1]["output_tokens_per_s"] > rows[0]["output_tokens_per_s"], True)
checks.check_close("and each token comes more slowly",
                   rows[-1]["mean_tpot_s"] > rows[0]["mean_tpot_s"], True)

# %% [markdown]
# A bigger batch gives **more tokens per second for everyone together**, and
# **each request's tokens come more slowly**. With a cap of 1 the requests queue,
# so their first token waits. In a decode step the MoE, the norms and the
# output head run once for the whole batch, while attention runs once per
# request over its own cache. The shared part is what batching saves.
# DeepSeek makes the same trade: about 20–22 tokens per second per user, and
# as many users per GPU as that speed allows.
#
# **The prefix cache** skips the prompt tokens it already holds. Same stream,
# cache off:

# %%
plain = serving.serve(model, requests, max_batch=8, budget_tokens=512, prefix_cache=False)
same_tokens = [a.tokens for a in plain.requests] == [b.tokens for b in result.requests]
checks.check_close("the same tokens with the prefix cache off", same_tokens, True)
print(f"prompt tokens computed: {plain.prefill_tokens} without the prefix cache, "
      f"{result.prefill_tokens} with it ({1 - result.prefill_tokens / plain.prefill_tokens:.0%}"
      " fewer)")
shared = next(q for q in requests if q.prefix_len)
t = serving.prefill_seconds(model, shared)
print(f"one prefill: {t['whole_tokens']} tokens in {1e3 * t['whole_s']:.2f} ms; with the "
      f"prefix cached, {t['rest_tokens']} tokens in {1e3 * t['rest_s']:.2f} ms")

# %% [markdown]
# The tokens are the same. The *work* drops a lot, but the *time* drops much
# less: a toy forward pass costs mostly fixed overhead, whatever its length.
# At V3's size prefill is compute-bound, so time follows the tokens computed.
# DeepSeek's on-disk cache served 56.3% of a day's input tokens, and all that
# prefill compute was saved.
#
# **Try it.** Sliders re-run the server (a second or two each; the numbers are
# this machine's and move a little from run to run).
#
# - Batch cap 1, then 32: where do tokens/s and ms per token go?
# - Lower the KV budget to 64 tokens. How many requests fit at once now? Watch
#   the bottom panel: the reserved line never crosses the budget.
# - Arrivals at 2 per second: does batching still help when requests rarely
#   overlap?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets import serving as widgets

widgets.server(model, first=result)  # starts from the run above: same settings

# %% [markdown]
# ## 4. The same trade-off for DeepSeek-V3, on paper
#
# One H800 of the decode unit holds the attention, dense layers, shared expert
# and output head (data-parallel: its own requests), plus 2 routed-expert
# slots per MoE layer. A step with *B* requests per GPU, each with 4,989 cached
# tokens (the published average), costs (`serving.v3_decode`):
#
# * **HBM reads**: the resident weights in FP8, read once, plus *B* latent
#   caches (70,272 bytes per token, [notebook 11](11_kv_cache_mla.ipynb));
# * **tensor-core time**: 2 × 37 B FLOPs per token in FP8, and MLA's attention
#   over the context in BF16;
# * **all-to-all**: each token goes to 8 experts on other GPUs, sent point to
#   point over 50 GB/s InfiniBand (report §3.4.2), with the byte model of
#   notebooks 04 and 06: 1 byte out per hidden value plus a scale per 128 (FP8
#   dispatch) and 2 bytes back (BF16 combine), per MoE layer.
#
# This is a roofline: datasheet peaks reached exactly and perfect expert
# balance. Real kernels get less, so read it as an upper bound.

# %%
step = serving.v3_decode(128)
print(f"128 requests per GPU: weights {1e3 * step.weight_s:.1f} ms + KV "
      f"{1e3 * step.kv_s:.1f} ms of HBM, matmuls {1e3 * step.matmul_s:.1f} ms + attention "
      f"{1e3 * step.attention_s:.1f} ms, all-to-all {1e3 * step.comm_s:.1f} ms")
print(f"step {1e3 * step.seconds:.1f} ms → {step.tokens_per_s_per_node:,.0f} tokens/s per "
      f"node, {step.tokens_per_s_per_request:.1f} per request (published: ~14.8k, 20–22)")
checks.check_close("decode tokens/s per node = 8 GPUs x batch / step",
                   step.tokens_per_s_per_node, 8 * 128 / step.seconds)

# %% [markdown]
# > **Check the claim: the KV cache "can grow larger than the model."** On one
# > decode GPU it already is: 128 requests of 4,989 cached tokens against the
# > GPU's share of the weights in FP8.

# %%
from course import kvcache
from course.configs import gpu

cache_bytes = 128 * 4989 * kvcache.kv_bytes_per_token("deepseek-v3")
weight_bytes = step.weight_s * gpu("H800").hbm_tb_s * 1e12
print(f"KV cache {cache_bytes / 1e9:.1f} GB vs weights on the GPU {weight_bytes / 1e9:.1f} GB;"
      f" together {(cache_bytes + weight_bytes) / 1e9:.0f} of the H800's 80 GB")
checks.check_close("the caches outweigh the weights, and both fit in 80 GB",
                   weight_bytes < cache_bytes and cache_bytes + weight_bytes < 80e9, True)

# %% [markdown]
# At the published speed per request (20–22 tokens/s) the roofline gives about
# 22k tokens/s per node, so the published 14.8k is about two thirds of the
# bound. At batch 1 the step is all weight reads and the GPU idles. If the
# all-to-all is hidden behind computation (DeepSeek splits each decode step
# into two micro-batches in a 5-stage pipeline), the bound nearly doubles (the
# widget's summary prints both).
# Move the sliders: a longer context makes the KV cache dominate, and an FP8
# cache halves that part.

# %%
# NBVAL_IGNORE_OUTPUT
widgets.v3_decode()

# %% [markdown]
# **Prefill** is compute-bound. A computed prompt token costs 2 × 37 B FLOPs
# plus attention over its context. Cache hits cost nothing but still count in
# the published ~73.7k input tokens/s per node. What share of the tensor cores'
# peak does that figure imply?

# %%
pre = serving.v3_prefill(context=2500)
print(f"cache hits {pre['cache_hit']:.2%} of input; at full peak a node would prefill "
      f"{pre['input_per_node']:,.0f} input tokens/s; the published 73.7k implies "
      f"{pre['implied_efficiency']:.0%} of peak")
checks.check_close("the published rate implies 10% to 30% of peak",
                   0.1 < pre["implied_efficiency"] < 0.3, True)

# %% [markdown]
# About a fifth of the datasheet peak, under our assumption of 2,500 earlier
# tokens per prompt token (an assumption; the average prompt length is not
# published). The all-to-all, BF16 attention and imbalance across GPUs all take
# their share.
#
# > **Check the claim: "GPUs aren't, on paper, the best option for
# > inference."** For one request, right: the step above at batch 1 spends
# > almost all its time reading weights. Serving is not one request. Batching
# > shares the weight reads over hundreds of requests per GPU, and expert
# > parallelism gives each expert tokens from 144 GPUs at once. That is why
# > DeepSeek spreads decode over 18 nodes.

# %% [markdown]
# ## 5. Balancing the experts: EPLB
#
# With expert parallelism a step waits for the GPU whose experts received the
# most tokens. DeepSeek's **EPLB** (deepseek-ai/EPLB) fixes this with spare
# slots:
#
# 1. **replicate**: each spare slot goes to the expert with the largest load
#    *per copy* (its tokens split evenly over its copies);
# 2. **pack**: copies sorted heaviest first, each onto the lightest GPU that
#    still has a free slot, so every GPU holds the same number.
#
# The **hierarchical** policy first packs whole expert groups onto nodes, so
# node-limited routing keeps a token's traffic inside its node. The **global**
# policy ignores groups. `course.eplb` implements both from that description.
# The repository's README example must come out exactly:

# %%
from course import eplb

readme = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
placement = eplb.rebalance(readme, num_replicas=16, num_groups=4, num_nodes=2, num_gpus=8)
print(placement.policy, placement.phy2log.tolist())
checks.check_close("EPLB README example, layer 0", placement.phy2log[0].tolist(),
                   [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1])

# %% [markdown]
# **A measured load.** [Notebook 08](08_moe_collapse.ipynb)'s toy MoE without
# balancing collapses onto a few experts within a few dozen steps. Train it
# for 40, take its routing over the last 10 steps (EPLB is fed such moving
# averages) and spread its 16 experts over 2 nodes × 2 GPUs:

# %%
from course import moe

run = moe.train("none", steps=40)
measured = run.load[-10:].mean(0, keepdims=True)
static = eplb.static_placement(measured, num_gpus=4)
for extra in (0, 4, 8):
    p = eplb.rebalance(measured, 16 + extra, num_groups=4, num_nodes=2, num_gpus=4)
    print(f"{extra} redundant: busiest GPU {p.imbalance[0]:.2f}x the average "
          f"(one copy per expert, in order: {static.imbalance[0]:.2f}x)")
plots.gpu_loads(static.gpu_load[0], p.gpu_load[0], "Toy MoE of notebook 08, 4 GPUs").show()

# %% [markdown]
# **V3's shape.** DeepSeek has not published its live expert loads, so the
# next load is *synthetic*: 256 experts per layer with log-normal shares,
# seeded. The decode unit puts 288 slots on 144 GPUs: 8 groups do not divide
# over 18 nodes, so EPLB uses the global policy there. The prefill unit has 4
# nodes, so it uses the hierarchical one.

# %%
v3_load = eplb.skewed_load(layers=58, experts=256, skew=1.0, seed=0)
decode = eplb.rebalance(v3_load, 288, num_groups=8, num_nodes=18, num_gpus=144)
prefill = eplb.rebalance(v3_load, 288, num_groups=8, num_nodes=4, num_gpus=32)
flat = eplb.rebalance(v3_load, 288, num_groups=8, num_nodes=4, num_gpus=32, policy="global")
print(f"decode ({decode.policy}): {decode.imbalance.mean():.3f}x · prefill "
      f"({prefill.policy}): {prefill.imbalance.mean():.3f}x · prefill with the global "
      f"policy: {flat.imbalance.mean():.3f}x · one copy per expert on 32 GPUs: "
      f"{eplb.static_placement(v3_load, 32).imbalance.mean():.2f}x")

# %% [markdown]
# The hierarchical policy leaves more imbalance. No copy inside a node can move
# load *between* nodes, so it can never beat its packing of groups onto nodes.
# It pays that price to keep each token's expert traffic on fast NVLink.
# Change the layout, the spare slots and the skew:

# %%
# NBVAL_IGNORE_OUTPUT
widgets.eplb_v3()

# %% [markdown]
# ## 6. The economics, rebuilt
#
# DeepSeek's published day (2025-02-27 12:00 to 02-28 12:00, UTC+8, V3 and R1
# together): on average **226.75 nodes** of 8 H800s (peak 278), at $2 per
# GPU-hour. Input was **608 B tokens**, of which **342 B** hit the on-disk KV
# cache; output was **168 B tokens**. Billed at R1's prices ($0.14 per million
# for cache hits, $0.55 for misses, $2.19 for output) that is **$562,027**,
# against a cost of **$87,072**: "a cost profit margin of 545%".

# %%
P = serving.PUBLISHED
cost = serving.daily_cost(P["average_nodes"], P["gpu_hour_price"])
checks.check_close("daily cost = 226.75 nodes x 8 GPUs x 24 h x $2", cost, 87_072)
revenue = serving.published_revenue()
low, high = serving.published_revenue(rounding=True)
print(f"revenue from the rounded token counts: ${revenue:,.0f} (published $562,027; "
      f"counts within ±0.5 B allow ${low:,.0f} to ${high:,.0f})")
checks.check_close("the published revenue lies within what rounded counts allow",
                   low < P["revenue"] < high, True)

# %% [markdown]
# The token counts are rounded to the nearest billion, so they give $562,100,
# not exactly $562,027. An output count of 167.97 B tokens, which rounds to
# 168 B, gives $562,027 exactly. Now the margin, both ways:

# %%
margin = serving.cost_profit_margin(P["revenue"], P["cost"])
on_revenue = serving.revenue_margin(P["revenue"], P["cost"])
checks.check_close("profit / cost ('cost profit margin', %)", round(100 * margin), 545)
print(f"profit / revenue: {on_revenue:.1%}")

# %% [markdown]
# Do the published throughputs fit the node count? 608 B input tokens at
# 73.7k per node-second, plus 168 B output tokens at 14.8k, over one day:

# %%
busy = serving.nodes_needed(P["input_tokens"], P["output_tokens"],
                            P["prefill_tokens_per_s_per_node"],
                            P["decode_tokens_per_s_per_node"])
print(f"{busy['prefill']:.1f} prefill + {busy['decode']:.1f} decode = "
      f"{busy['total']:.1f} nodes busy all day (published average: 226.75)")
checks.check_close("nodes the published rates need", busy["total"], 226.75, rtol=1e-3)

# %% [markdown]
# They agree to 0.05%. The published rates, token counts and node count tell
# one consistent story.
#
# > **Check the claim: "545% profit margin."** It is **profit ÷ cost**, which
# > DeepSeek calls a "cost profit margin". As a margin on revenue, the way most
# > companies quote it, the same day is **84.5%**. And the revenue is
# > theoretical. It leaves out that web and app use is free, that V3 is priced
# > lower than R1, and that night-time use gets discounts (DeepSeek names all
# > three). The cost leaves out training, research, staff and the nodes'
# > purchase beyond the $2/GPU-hour rental price. It counts GPUs only.
#
# **Your scenario.** Change the price of a GPU-hour, how much of the traffic
# is billed, the cache-hit share, the per-node rates (the decode slider is the
# batch trade-off of sections 3–4), or keep idle capacity for peaks:

# %%
# NBVAL_IGNORE_OUTPUT
widgets.economics_widget()

# %% [markdown]
# ## 7. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("15.revenue"))` reveals a solution.
#
# **Exercise 1.** A day's revenue from cache-hit input, cache-miss input and
# output tokens at R1's prices ($0.14, $0.55, $2.19 per million).

# %%
def my_revenue(hit_tokens, miss_tokens, output_tokens):
    # token counts (floats); return dollars
    raise NotImplementedError


my_revenue = checks.check_exercise("15.revenue", my_revenue)

# %% [markdown]
# **Exercise 2.** Output tokens per second of an 8-GPU node whose GPUs each
# decode `batch_per_gpu` requests in steps of `step_seconds`.

# %%
def my_decode_rate(step_seconds, batch_per_gpu):
    raise NotImplementedError


my_decode_rate = checks.check_exercise("15.decode_rate", my_decode_rate)

# %% [markdown]
# **Exercise 3.** The fewest physical expert slots (a multiple of the GPU
# count, at least the number of experts) whose EPLB placement keeps the
# busiest GPU within `target` × the average, averaged over layers, or `None`
# when even 4 × the experts is not enough (the hierarchical policy has a
# floor). Use `eplb.rebalance(load, slots, num_groups, num_nodes,
# num_gpus).imbalance`.

# %%
def my_replicas_needed(load, target, num_groups, num_nodes, num_gpus):
    raise NotImplementedError


my_replicas_needed = checks.check_exercise("15.replicas_needed", my_replicas_needed)

# %% [markdown]
# **Exercise 4.** DeepSeek's 545% is profit over cost. What is it as a margin
# on revenue (profit ÷ revenue, a number between 0 and 1)?

# %%
margin_on_revenue = None  # a number
passed = checks.check_answer("15.revenue_margin", margin_on_revenue)

# %% [markdown]
# ## Summary
#
# - A server alternates **prefill** (the prompt, compute-bound) and **decode**
#   (one token per request per step). **Continuous batching** lets requests
#   join and leave between steps, the **KV budget** decides who gets in, and a
#   **prefix cache** skips prompt tokens it has seen. None of them changes a
#   single output token.
# - Batching trades speed per request for throughput. The toy server measures
#   it; on paper, a V3 decode GPU at the published 20–22 tokens/s per request
#   has a roofline bound near 22k tokens/s per node, and DeepSeek reports 14.8k.
# - **EPLB** replicates the busiest experts into spare slots and packs the
#   copies so every GPU works about equally. The hierarchical policy keeps
#   groups on one node and pays for it with less balance.
# - The published day is consistent: 226.75 nodes × 8 × 24 h × $2 = $87,072;
#   the tokens at R1 prices give $562,027 (to rounding); 545% is profit over
#   *cost*, an 84.5% margin on revenue, on theoretical revenue.
#
# **Next:** [16 · Imitation and reinforcement](16_rl.ipynb): from V3 to R1,
# the tiny model fine-tuned on demonstrations and reinforced with GRPO.
