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
# # 11 · The KV cache and Multi-head Latent Attention
#
# > **You will** see why a model that writes text keeps the keys and values of
# > every past token, measure how big that cache gets, and build DeepSeek's
# > answer: **Multi-head Latent Attention (MLA)**, which caches one small latent
# > vector per token instead of a key and a value for every head.
# > **Before this:** [01 · The transformer block](01_transformer_block.ipynb)
# > (attention, heads, RoPE) and [03 · How many GB?](03_memory.ipynb).
# > **Time:** 40 minutes.

# %% [markdown]
# ## 1. Why decoding keeps a cache
#
# A language model writes one token at a time. To pick token *t + 1*, every
# layer's attention compares the newest query with the **keys** of all earlier
# tokens and mixes their **values**. Those keys and values never change, so
# instead of recomputing them at each step the model stores them: the
# **KV cache**. Let us train the course's tiny model (notebook 01) and let it
# write with and without a cache.

# %%
import torch

from course import checks, data, kvcache, mla, rope
from course.configs import load_config
from course.device import seed_everything
from course.model import generate
from course.train import tiny_config, train_lm

seed_everything(0)
mha_run = train_lm(tiny_config(), steps=300, seed=0)
tok = data.tokenizer()
prompt = torch.tensor([tok.encode("babe ruth played")])
fast = generate(mha_run.model, prompt, 3, use_cache=True)
slow = generate(mha_run.model, prompt, 3, use_cache=False)
print(tok.decode(fast[0]))
assert torch.equal(fast, slow)  # the cache changes the work, not the answer

# %% [markdown]
# The cache holds, for each layer, one key and one value vector per head per
# token: **2 × heads × head width** numbers. Let us look inside.

# %%
cache = mha_run.model.new_cache()
mha_run.model(prompt, cache=cache)
cfg = mha_run.model.cfg
print("layer 0 keys:", tuple(cache[0].k.shape), "(batch, heads, tokens, width)")
per_token = 2 * cfg.n_heads * (cfg.d_model // cfg.n_heads) * 4  # FP32 bytes
checks.check_close("cache bytes = 2 x heads x head width x tokens x 4 B",
                   sum(c.nbytes for c in cache),
                   cfg.n_layers * per_token * prompt.shape[1])
print("what one layer's cache holds:", sorted(vars(cache[0])))

# %% [markdown]
# > **Check the claim: "attention between two words … is cached."** The cache holds
# > keys and values, nothing else: no table of token-to-token weights. Each attention
# > weight belongs to one *query*: row t of the softmax is token t's query against the
# > keys so far. A new token brings a new query, so its row is new and is computed at
# > this step, from that query and the cached keys. The earlier rows do not change
# > (the causal mask), and no later step needs them: storing them would save nothing.
# > `kvcache.attention_rows` runs one head of the trained model twice on the 6 tokens
# > written above: the first 5 into a cache and then the 6th, and all 6 at once.

# %%
rows = kvcache.attention_rows(mha_run.model, fast, layer=1, head=0)
T = rows.before.shape[0]
print(f"rows of the first {T} tokens (computed before the new token):")
print(rows.before.numpy().round(2))
print(f"the new token's row, from its query and the {T + 1} cached keys:",
      rows.step.numpy().round(2))
checks.check_close("the cached step gives the full forward's last row", rows.step_error,
                   0.0, atol=1e-6)
checks.check_close("the old rows are unchanged", rows.old_rows_change, 0.0, atol=1e-6)
print(f"over the same {T} old tokens (rescaled to sum to 1), no old row matches it: the "
      f"closest still differs by {rows.nearest_old_row:.2f} in one weight")
assert rows.nearest_old_row > 0.01

# %% [markdown]
# > **Check the claim: "the KV cache grows quadratically with sequence
# > length."** It does not. Each token adds a fixed number of bytes, so the
# > cache grows **linearly**. What grows quadratically is attention *compute*
# > over a whole generation: token *t* reads all *t* cached tokens, and
# > 1 + 2 + … + N ≈ N²/2.

# %%
one = kvcache.kv_cache_bytes("deepseek-v3", 16_384)
two = kvcache.kv_cache_bytes("deepseek-v3", 32_768)
checks.check_close("twice the tokens, twice the cache", two / one, 2.0)
v3 = load_config("deepseek-v3")
work = [sum(kvcache.attention_flops_per_token(v3, t) for t in range(1, n + 1))
        for n in (2_000, 4_000)]
checks.check_close("twice the tokens, ~4x the attention FLOPs",
                   work[1] / work[0], 4.0, rtol=1e-3)

# %% [markdown]
# ## 2. Bytes per token: MHA, GQA, MQA, MLA
#
# Per token and layer the cache holds (DeepSeek-V2 paper, Table 1):
#
# | attention | cached numbers per token and layer |
# |---|---|
# | multi-head (MHA) | 2 · heads · d_h |
# | grouped-query (GQA) | 2 · KV groups · d_h |
# | multi-query (MQA) | 2 · d_h |
# | multi-head latent (MLA) | d_c + d_h^R |
#
# For DeepSeek-V3, d_c = 512 (the latent) and d_h^R = 64 (one RoPE key
# **shared by all 128 heads**): 576 numbers per layer, 61 layers, 2 bytes.

# %%
from course.plots import kvcache as kvplots

models = ["deepseek-v3", "llama-3-8b", "llama-3-70b", "llama-3.1-405b",
          "mixtral-8x7b"]
per_tok = {m: kvcache.kv_bytes_per_token(m) for m in models}
checks.check_close("DeepSeek-V3 cache per token (ISCA'25: 70.272 KB)",
                   per_tok["deepseek-v3"], 70_272)
for m in models[1:4]:
    print(f"{m:>15}: {per_tok[m]:,} / {per_tok['deepseek-v3']:,} = "
          f"{per_tok[m] / per_tok['deepseek-v3']:.2f}x DeepSeek-V3")
kvplots.per_token_bars(models, [b / 1024 for b in per_tok.values()],
                       "KV cache per token in BF16").show()

# %% [markdown]
# The ISCA'25 paper's table prints 7.28× for Llama-3.1-405B against DeepSeek-V3; the
# division above gives a little more.
#
# ## 3. MLA in torch: cache the latent, not the heads
#
# MLA (`course/mla.py`) compresses each token's hidden state into a latent
# c = kv_norm(W_DKV h) of width d_c. Each head's key and value are
# **up-projections** of it: k_i = W_UK,i c and v_i = W_UV,i c. Position enters
# through a separate small key k^R = RoPE(W_KR h), one for all heads. Only c and
# k^R go into the cache. The course's model switches to MLA with one setting:

# %%
mla_run = train_lm(tiny_config(attention="mla"), steps=300, seed=0)
layer = mla_run.model.blocks[0].attn
print(f"val loss: MHA {mha_run.val_loss:.3f}, MLA {mla_run.val_loss:.3f}")
mla_cache = mla_run.model.new_cache()
mla_run.model(prompt, cache=mla_cache)
print({k: tuple(v[:, :len(mla_cache[0])].shape)
       for k, v in mla_cache[0].buffers.items()})
c = mla_run.model.cfg
checks.check_close("MLA cache bytes = (d_c + d_h^R) x tokens x layers x 4 B",
                   sum(x.nbytes for x in mla_cache),
                   (c.kv_lora_rank + c.qk_rope_head_dim) * 3 * c.n_layers * 4)

# %% [markdown]
# Two ways to decode from that cache:
#
# * **naive:** at every step, up-project every cached latent back to per-head
#   K and V, then attend as usual. Small cache, but lots of repeated work.
# * **absorbed:** a score is q · (W_UK c) = (W_UKᵀ q) · c. Multiply the query by
#   W_UK **once**, and compare it with the latents directly. Likewise
#   Σ a_s W_UV c_s = W_UV (Σ a_s c_s). Attention runs in the d_c-wide latent
#   space and per-head keys are never formed. This is just re-associating matrix
#   products, so the outputs are the same.

# %%
x = torch.randn(2, 12, c.d_model, dtype=torch.float64)
layer64 = mla.MLAttention(c).double()
full = layer64(x)  # no cache: plain causal attention
for path in ("naive", "absorbed"):
    layer64.path = path
    cache64 = layer64.new_cache()
    steps = [layer64(x[:, t:t + 1], cache64) for t in range(12)]
    diff = (torch.cat(steps, 1) - full).abs().max().item()
    checks.check_close(f"{path} decode = full forward", diff, 0.0, atol=1e-12)

# %% [markdown]
# The trained MLA model writes the same words with or without its cache, on
# either path:

# %%
outs = []
for path in ("naive", "absorbed"):
    for block in mla_run.model.blocks:
        block.attn.path = path
    outs.append(generate(mla_run.model, prompt, 3, use_cache=True))
outs.append(generate(mla_run.model, prompt, 3, use_cache=False))
print(tok.decode(outs[0][0]))
assert all(torch.equal(o, outs[0]) for o in outs)

# %% [markdown]
# ### Why the RoPE key is separate: RoPE blocks absorption
#
# Why does MLA carry a separate RoPE key k^R instead of rotating the keys it
# already has? DeepSeek-V2 (§2.1.3) answers with absorption. If RoPE rotated
# the content key, k_n = R(n) W_UK c_n, and the query, q_m → R(m) q_m, a score
# would be q_mᵀ [R(m)ᵀ R(n) W_UK] c_n. The matrix in the brackets depends on
# the positions, so there is no one matrix to fold into the query: the newest
# query would need a different one for every cached token, which is the work of
# forming the keys again. `rope.rope_absorption` computes it on one head of the
# layer above (12 positions):

# %%
ra = rope.rope_absorption(layer64, x, head=0)
print("matrix to fold per (query m, key n):", tuple(ra.fold.shape))
print("||R(m)^T R(n) W_UK - W_UK|| / ||W_UK||, for m, n = 0..4:")
print(ra.fold_distance[:5, :5].numpy().round(2))
checks.check_close("coupled: folding R(m)^T R(n) W_UK gives the rotated scores",
                   ra.coupled_fold_error, 0.0, atol=1e-9)
checks.check_close("that matrix depends on n - m only (constant diagonals)",
                   ra.by_offset_spread, 0.0, atol=1e-5)
print(f"folding the one fixed W_UK instead: scores off by {ra.coupled_fixed_error:.0%} "
      "of the largest")

# %% [markdown]
# Zero on the diagonal, constant along each diagonal, different elsewhere: one
# matrix per distance n − m, so a query at position m needs m + 1 of them. The
# layer as built avoids this: the content key is never rotated, position lives
# in the small key k^R (one per token, shared by all heads, cached beside c),
# and q^R · k^R is computed as it is. Absorption is then exact:

# %%
checks.check_close("decoupled RoPE key: absorbed scores = full scores",
                   ra.decoupled_error, 0.0, atol=1e-12)
print(f"largest score {ra.score_scale:.2f}, largest difference {ra.decoupled_error:.1e}; "
      f"the price: {c.qk_rope_head_dim} extra cached numbers per token "
      f"beside the latent's {c.kv_lora_rank}")

# %% [markdown]
# ## 4. Check the claim: "95% smaller"
#
# > Reductions need a baseline. Three are in circulation, and they measure
# > different things:
# >
# > * **98.2%**: DeepSeek-V3's cache against *its own* shapes with plain MHA
# >   (2 × 128 heads × 128 × 61 layers). Pure arithmetic on the config.
# > * **98.6%**: against caching the per-head K (192 wide) and V (128) that MLA
# >   actually produces.
# > * **93.3%**: DeepSeek-V2's headline against DeepSeek 67B (GQA, 8 KV heads,
# >   95 layers). The architecture alone gives 82.2%; the rest comes from V2
# >   storing its cache at about **6 bits** per number instead of 16.

# %%
checks.check_close("V3 vs its own MHA", kvcache.reduction("deepseek-v3"),
                   0.982, atol=5e-4)
checks.check_close("V3 vs its materialised K and V",
                   kvcache.reduction("deepseek-v3", materialised=True),
                   0.986, atol=5e-4)
v2, old = kvcache.DEEPSEEK_V2, kvcache.DEEPSEEK_67B
arch = 1 - kvcache.kv_bytes_per_token(v2) / kvcache.kv_bytes_per_token(old)
six_bit = 1 - (kvcache.kv_bytes_per_token(v2, dtype_bytes=6 / 8)
               / kvcache.kv_bytes_per_token(old, dtype_bytes=2))
checks.check_close("V2 vs 67B, architecture alone", arch, 0.822, atol=5e-4)
checks.check_close("V2 (6-bit cache) vs 67B (16-bit)", six_bit, 0.933,
                   atol=5e-4)

# %% [markdown]
# ## 5. What does compression cost? Measured on real keys and values
#
# Is a narrow latent enough? Take the keys and values that the trained MHA
# model computes on held-out sentences, and ask how well the best rank-r
# matrix reproduces them (the SVD gives the answer exactly).
#
# Note one thing first: **before RoPE**, K and V are both linear in the same d-wide
# input, so side by side, [K V] has rank at most d however many heads there are (the
# curves below use the keys before RoPE). That is why a shared latent can stand in for
# both.

# %%
import numpy as np

_, val = data.split()
idx = val[: 32 * 16].view(16, 32)
ranks = np.arange(0, cfg.d_model + 1)
curves = kvcache.kv_rank_curves(mha_run.model, idx, ranks)
print(f"d = {cfg.d_model} here ({v3.hidden_size} for DeepSeek-V3); [K V] is "
      f"{2 * cfg.d_model} wide")
assert curves["K and V together"][cfg.d_model] < 1e-6  # rank <= d
assert np.all(np.diff(curves["K"]) <= 1e-9)  # more rank, less error
d_c = c.kv_lora_rank  # the toy MLA's latent width
print({k: f"{100 * v[d_c]:.1f}%" for k, v in curves.items()}, f"at rank {d_c}")
kvplots.rank_errors(ranks, curves, marker=d_c).show()

# %% [markdown]
# After RoPE the bound is gone: RoPE turns each token's key by an angle set by its
# position, a different linear map for every token, so the rotated keys leave the
# d-dimensional space. The same holds inside MLA, where every head's key and value is
# made from the d_c-wide latent. `rope.latent_ranks` stacks the per-head keys and values
# of the toy MLA layer (section 3) for 96 tokens and measures the rank:

# %%
lr = rope.latent_ranks(layer64, torch.randn(1, 96, c.d_model, dtype=torch.float64,
                                            generator=torch.Generator().manual_seed(0)))
print(f"[K V] of all {c.n_heads} heads: {lr.tokens} tokens x {lr.width} numbers")
print(f"  rank before RoPE: {lr.before_rope}   (d_c = {lr.d_c})")
print(f"  RoPE on the content keys: {lr.content_rotated}")
print(f"  as built, content keys + the shared RoPE key: {lr.with_rope_key}   "
      f"(d_c + d_h^R = {lr.d_c + lr.d_rope}, what the cache holds)")
assert lr.before_rope <= lr.d_c < lr.d_c + lr.d_rope < lr.content_rotated
assert lr.with_rope_key <= lr.d_c + lr.d_rope

# %% [markdown]
# Real K and V are far from random: a latent as wide as the toy MLA's d_c already
# keeps most of them. MLA does not compress a trained MHA model,
# though: it is *trained* with the bottleneck, so the model learns to put what
# matters into d_c numbers. And RoPE is applied to the small separate key
# because a position-dependent rotation would not survive absorption: W_UK
# could no longer be folded into the query.
#
# ## 6. Decoding is matrix–vector work
#
# One decode step reads **every weight** and **the whole cache** to produce one
# token per sequence. Its arithmetic intensity (FLOPs per byte read) is tiny at
# batch 1, so the GPU waits on memory; batching shares each weight read across
# sequences. An H200 needs about 206 FLOPs per byte to be compute-bound.
# (Times below are lower bounds as if one GPU held the whole model; spread over
# G GPUs, FLOPs and bytes both divide by G and the intensity stays the same.)

# %%
for batch in (1, 64):
    for path in ("mha", "absorbed"):
        cost = kvcache.decode_step_cost("deepseek-v3", 32_768, batch, path)
        r = kvcache.roofline_seconds(cost, "H200")
        print(f"batch {batch:>3}, {path:>8}: {cost.intensity:6.1f} FLOP/B, "
              f"{r['bound']}-bound, >= {1e3 * r['seconds']:.1f} ms")
c1 = kvcache.decode_step_cost("llama-3-8b", 4096, 1)
assert c1.intensity < kvcache.ridge_intensity("H200") / 50
att = {p: kvcache.decode_step_cost("deepseek-v3", 32_768, 1, p)
       for p in ("mha", "absorbed")}
att = {p: c.attention_flops / c.cache_bytes for p, c in att.items()}
print(f"attention alone: {att['mha']:.1f} vs {att['absorbed']:.0f} FLOP/B")
assert att["absorbed"] > 200 * att["mha"]

# %% [markdown]
# ### Prefill vs decode on the roofline
#
# Notebook 05 built the roofline: attainable FLOP/s = min(peak, intensity × bandwidth),
# with the ridge at peak / bandwidth (H800: 295 FLOP/B, H200: 206, from the datasheets).
# **Prefill** pushes a whole prompt through each weight at once: thousands of tokens per
# weight read. **Decode** pushes one token per sequence. Both on one chart (points placed
# on the H800; the H200's roof is the dashed line):

# %%
from course import roofline
from course.plots import roofline as rplots

V3 = "deepseek-v3"
ops = [roofline.prefill_step(V3, 4096, batch=4).scaled(1, "prefill, 4 × 4K tokens"),
       roofline.decode_step(V3, 32_768, 1).scaled(1, "decode step, batch 1"),
       roofline.decode_step(V3, 32_768, 256).scaled(1, "decode step, batch 256"),
       roofline.attention_decode(V3, 32_768, path="absorbed").scaled(1, "MLA attention, absorbed"),
       roofline.attention_decode(V3, 32_768, path="mha").scaled(1, "attention as MHA")]
machines = [roofline.machine("H800"), roofline.machine("H200")]
rplots.roofline(machines, [roofline.placed(op, "H800") for op in ops],
                title="DeepSeek-V3 on the H800 and H200 rooflines (32k context)").show()
for op in ops:
    print(f"{op.name:26s} {op.intensity:8.1f} FLOP/B: H800 {roofline.bound(op, 'H800')}-bound, "
          f"H200 {roofline.bound(op, 'H200')}-bound")
assert roofline.bound(ops[0], "H800") == "compute" and roofline.bound(ops[1], "H800") == "memory"
one = roofline.prefill_step(V3, 4096)
print(f"(one 4K sequence alone: {one.intensity:.0f} FLOP/B, {roofline.bound(one, 'H800')}-bound)")

# %% [markdown]
# Prefill is compute-bound, decode memory-bound. One caveat for a mixture of experts: a
# single 4K prompt gives each of the 256 experts only 4096 × 8 / 256 = 128 tokens, so its
# prefill sits just under the H800's ridge; prefill servers batch several prompts, and
# DeepSeek's gathers tokens for its experts over 32 GPUs (EP32: "DeepSeek-V3/R1 Inference
# System Overview", 2025; notebook 15).
#
# The absorbed MLA attention sits at about 242 FLOP/B: **above the H200's ridge, below
# the H800's**. Same tensor cores; the H200's faster memory moves the ridge left past it.
# It also bounds decode: as the batch grows, the weights' bytes are shared by more
# sequences and vanish, but every sequence still reads its own cache, so a decode step's
# intensity levels off at (FLOPs per token) / (cache bytes per sequence).

# %%
for path in ("absorbed", "mha"):
    steps = {b: roofline.decode_step(V3, 32_768, b, path) for b in (1, 16, 256, 4096)}
    limit = roofline.decode_intensity_limit(V3, 32_768, path)
    print(f"{path:8s}: " + ", ".join(f"batch {b}: {op.intensity:5.1f}"
                                     for b, op in steps.items()) + f" -> limit {limit:.1f}")
limit = roofline.decode_intensity_limit(V3, 32_768)
assert roofline.ridge("H200") < limit < roofline.ridge("H800")
share = roofline.placed(ops[1], "H800")["share_of_peak"]
print(f"one request alone reaches at most {share:.1%} of an H800's peak")
assert ops[1].intensity < 10 and share < 0.035  # the box below quotes these

# %% [markdown]
# > **Check the claim: "GPUs aren't, on paper, the best option for inference."** For one
# > request, right: decode is matrix–vector work at under 10 FLOP/B, so an H800 can use
# > about 3% of its peak (printed above) and is really a memory-bandwidth machine. Serving
# > is not one request. **Batching** shares each weight read across sequences (intensity
# > grows with the batch); **expert parallelism** gathers many tokens for each expert
# > (notebook 05's widget: tokens per expert); and **MLA** lets the cache carry ~242
# > FLOPs per byte instead of MHA's 1, so the large-batch limit sits near the ridge
# > instead of at 1–2 FLOP/B. With all three, decode climbs to near the ridge, and on an
# > H200 past it: the GPU's compute is no longer wasted.
#
# **Try it.** The roofline widget of notebook 05, set for decode on an H200: one token
# per matmul, a 32k context, one token per expert. Drag the tokens up and watch the
# matmuls cross the ridge; the MLA attention point stays where it is (its intensity does
# not depend on the batch).

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.roofline import roofline_explorer

decode_roofline = roofline_explorer(gpu_name="H200", tokens=1, seq_len=32_768,
                                    tokens_per_expert=1)
decode_roofline

# %% [markdown]
# With the cache in latent form, all 128 heads read the **same** 576 numbers
# per token, so MLA's attention alone does over 200× more work per byte than
# MHA's (one FLOP per byte): like MQA, it shares one cache across heads.
#
# A smaller cache also means more sequences fit beside the weights. Mind the formats:
# the roofline above read **BF16** weights (2 bytes per parameter); here the weights
# are **FP8** (1 byte), and the cache is shown in BF16 and in FP8 side by side:

# %%
from course.configs import gpu
from course.params import param_count

h200 = gpu("H200").memory_gb
print(f"8 x H200 ({h200:g} GB each), FP8 weights ({param_count(V3).total / 1e9:,.0f} GB):")
fits = {}
for fmt, b in (("BF16", 2), ("FP8", 1)):
    fits[fmt] = {kind: kvcache.tokens_that_fit(V3, gpu_gb=h200, n_gpus=8, weight_bytes=1,
                                               kv_dtype_bytes=b, mha=kind == "MHA")
                 for kind in ("MLA", "MHA")}
    print(f"  {fmt} cache, {kvcache.kv_bytes_per_token(V3, b):,} B per token: "
          f"{fits[fmt]['MLA']:,} tokens ({fits[fmt]['MLA'] // 32_768} sequences of 32k); "
          f"as MHA {fits[fmt]['MHA']:,}")
assert fits["BF16"]["MLA"] / fits["BF16"]["MHA"] > 50
checks.check_close("FP8 cache: twice the tokens", fits["FP8"]["MLA"] / fits["BF16"]["MLA"],
                   2.0, rtol=1e-6)

# %% [markdown]
# > **Check the claim: the KV cache "can grow larger than the model."** It can: the
# > cache grows with context × batch, the weights do not. The question is where it
# > crosses them. `kvcache.tokens_to_outweigh` gives the fewest cached tokens (summed
# > over all sequences) whose cache outweighs the weights, here with weights and cache
# > both in BF16 (in one shared format the crossing does not move; FP8 weights beside
# > a BF16 cache halve it). Counted in sequences of 128K tokens, the longest context
# > both models were extended to (DeepSeek-V3 report §4.3; Llama-3.1's config.json):

# %%
ctx = load_config("llama-3.1-405b").max_position_embeddings
cross = {}
for name, mha in ((V3, False), ("llama-3.1-405b", False), (V3, True)):
    label = name + (" as MHA" if mha else "")
    cross[label] = kvcache.tokens_to_outweigh(name, weight_bytes=2, kv_dtype_bytes=2, mha=mha)
    print(f"{label:>18}: weights {2 * param_count(name).total / 1e9:,.0f} GB, passed at "
          f"{cross[label]:,} tokens = {cross[label] / ctx:.1f} sequences of {ctx:,}")
print(f"FP8 weights, BF16 cache: DeepSeek-V3 at "
      f"{kvcache.tokens_to_outweigh(V3, weight_bytes=1):,} tokens")
assert kvcache.kv_cache_bytes(V3, cross[V3]) > 2 * param_count(V3).total  # it does
seqs = {k: n / ctx for k, n in cross.items()}  # the sentence below quotes these
assert 10 < seqs["llama-3.1-405b"] < 15 and seqs[V3] > 100 and seqs[V3 + " as MHA"] < 3

# %% [markdown]
# True for both models, at very different sizes. Llama-3.1-405B's GQA cache passes its
# weights with about a dozen long requests; DeepSeek-V3, with more weights and a cache
# 7× smaller, needs over a hundred, and the same model with MHA would need fewer than
# three. A serving GPU holds only a share of the weights, so there the cache outweighs
# them much sooner (notebook 15).

# %% [markdown]
# ## 7. Measured: one decode step on this machine
#
# Now real timings of one MLA layer: the MHA-style cache, the naive path and
# the absorbed path, against context length. On a CPU the sizes are toy
# (`preset("mla_decode")`); on a CUDA GPU the layer has DeepSeek-V3's shapes in
# BF16 and the context reaches 32k. Timings on a shared machine are noisy: we
# keep the best of several runs.

# %%
from course.presets import preset

timed = mla.measure_decode()
print(timed["device"], timed["dtype"], "batch", timed["batch"])
for path, secs in timed["seconds"].items():
    print(f"{path:>9}: " + ", ".join(f"{1e3 * s:.2f} ms" for s in secs))
kvplots.decode_times(timed["contexts"], timed["seconds"],
                     "One MLA layer, one decode step").show()
assert all(s > 0 for v in timed["seconds"].values() for s in v)
assert timed["contexts"] == tuple(preset("mla_decode")["contexts"])

# %% [markdown]
# What to look for: the naive path redoes the up-projection of the whole cache
# at every step, so it slows fastest as the context grows; the absorbed path
# reads the small cache once. At toy size on a CPU the differences are small
# and noisy. At DeepSeek-V3's size the naive path's re-expansion is the whole cost: per
# layer (what the timing above measures on a GPU), and for the whole model:

# %%
peak = gpu("H200").peak_tflops("bf16") * 1e12
for path in ("naive", "absorbed"):
    flops = kvcache.attention_flops_per_token(V3, 32_768, path)
    print(f"{path:>9}: {flops / v3.num_layers / 1e12:.3f} TFLOP per layer, "
          f"{flops / 1e12:.1f} TFLOP for all {v3.num_layers} layers, per token at 32k "
          f"(>= {1e3 * flops / peak:.1f} ms at the H200's BF16 peak)")
naive, absorbed = (kvcache.attention_flops_per_token(V3, 32_768, p) for p in ("naive",
                                                                             "absorbed"))
assert naive / v3.num_layers > 1e12 and absorbed < naive / 100  # quoted below

# %% [markdown]
# Over a TFLOP **per layer** for each new token on the naive path, and 61 times that
# for the model: tens of milliseconds of an H200's whole BF16 peak, for one token of one
# sequence. The absorbed path needs less than a hundredth of it.
#
# ## 8. Try it yourself
#
# - How long a context fits on one 80 GB GPU for Llama-3-70B at batch 8?
# - Switch DeepSeek-V3's cache to FP8. How many 32k-token sequences of cache alone
#   fit in one H200's 141 GB (the weights left aside)?
# - Mixtral uses GQA with 8 KV heads: where does it land against DeepSeek-V3?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.kvcache import kv_cache_calculator

live = kv_cache_calculator()
live

# %% [markdown]
# The latent rank of the toy model: slide it and watch the cache shrink and
# the reconstruction error of the trained model's K and V rise.

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.kvcache import latent_rank

rank_live = latent_rank(mha_run.model, idx)
rank_live

# %% [markdown]
# Measured decode time for another batch size (each batch is measured once,
# then cached):

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.kvcache import measured_decode

decode_live = measured_decode()
decode_live

# %% [markdown]
# ## 9. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("11.gqa_bytes_per_token"))` reveals a solution.
#
# **Exercise 1.** KV cache bytes per token of a GQA model with `layers` layers,
# `kv_heads` KV heads of width `head_dim`, at `dtype_bytes` bytes per number.

# %%
def my_gqa_bytes_per_token(layers, kv_heads, head_dim, dtype_bytes):
    # all numbers; return the bytes per token (all layers)
    raise NotImplementedError


my_gqa_bytes_per_token = checks.check_exercise("11.gqa_bytes_per_token",
                                         my_gqa_bytes_per_token)

# %% [markdown]
# **Exercise 2.** Llama-3-70B (80 layers, 64 heads, 8 KV heads of 128): how
# many KiB of cache per token in BF16?

# %%
answer = None  # a number, in KiB
passed = checks.check_answer("11.llama70b_kib_per_token", answer)

# %% [markdown]
# **Exercise 3.** Why is absorption allowed? Write one head's scores against
# all cached latents without forming any key: `q_nope` (T, d_h) queries,
# `w_uk` (d_h, d_c) the head's slice of W_UK, `latent` (S, d_c) the cache.
# Return the (T, S) scores q · (W_UK c_s).

# %%
def my_absorbed_scores(q_nope, w_uk, latent):
    # (T, d_h), (d_h, d_c), (S, d_c) -> (T, S)
    raise NotImplementedError


my_absorbed_scores = checks.check_exercise("11.absorbed_scores", my_absorbed_scores)

# %% [markdown]
# **Exercise 4.** Write the arithmetic intensity of absorbed MLA decode attention:
# `n_heads` query heads, a cache of `d_c` latent and `d_rope` RoPE numbers per token,
# `dtype_bytes` per number. (DeepSeek-V3: 128, 512, 64, 2 gives the ~242 above.)

# %%
def my_mla_decode_intensity(n_heads, d_c, d_rope, dtype_bytes):
    raise NotImplementedError


my_mla_decode_intensity = checks.check_exercise("11.mla_decode_intensity",
                                                my_mla_decode_intensity)

# %% [markdown]
# **Exercise 5.** Why does RoPE block absorption? Write the matrix that sits
# between a query at position `m` and a latent at position `n` when RoPE
# rotates the content key: `w_uk` (d_h, d_c) a head's W_UK, in float64. Build a
# rotation R(p) by rotating the identity with `course.attention.apply_rope`.

# %%
def my_coupled_fold(w_uk, m, n):
    # (d_h, d_c), position, position -> (d_h, d_c)
    raise NotImplementedError


my_coupled_fold = checks.check_exercise("11.coupled_rope_fold", my_coupled_fold)

# %% [markdown]
# ## Summary
#
# - Decoding caches each token's keys and values, not attention weights: each new
#   query makes a new softmax row. The cache grows **linearly** with context and
#   batch; attention compute over a generation grows quadratically.
# - The cache outweighs the model past a context × batch computed above: a dozen 128K
#   requests for Llama-3.1-405B's GQA, over a hundred for DeepSeek-V3's MLA.
# - MLA caches a d_c-wide latent plus one shared RoPE key: 70,272 bytes per
#   token for DeepSeek-V3 in BF16 (half in FP8), 98.2% less than its own shapes with
#   MHA (and the V2 paper's 93.3% also counts a 6-bit cache).
# - Before RoPE every head's keys and values have rank ≤ d_c, so one latent holds them;
#   rotated by position they do not, which is why RoPE gets its own small key.
# - Absorbing W_UK into the query and W_UV into the output gives the same
#   outputs while attending in latent space; decode is memory-bound, and a
#   smaller cache means more sequences per GPU.
# - RoPE on the content key would put R(m)ᵀR(n) between query and latent, a
#   different matrix for every cached position, so MLA rotates only a small
#   separate key k^R (DeepSeek-V2 §2.1.3); with it, absorption is exact.
# - On the roofline, prefill is compute-bound and decode of one request is
#   memory-bound (a few % of the peak); batching, expert parallelism and MLA's
#   ~242 FLOP/B cache lift decode towards the ridge (H800 295, H200 206 FLOP/B).
#
# **Next:** [12 · Multi-token prediction](12_mtp.ipynb) —
# writing more than one token per step.
