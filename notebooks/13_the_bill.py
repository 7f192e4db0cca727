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
# # 13 · The bill, and what it means
#
# > **You will** put memory, parallelism, FLOPs and communication together in one planner,
# > check it against two published training runs, and compute what each of DeepSeek-V3's
# > choices (MoE, FP8, MLA) buys in training and in serving.
# > **Before this:** notebooks [03](03_memory.ipynb), [04](04_parallelism.ipynb),
# > [05](05_training_time.ipynb) and [06](06_communication.ipynb).
# > **Time:** about 15 minutes.

# %%
from course import checks, compute, kvcache, planner
from course.plots import planner as plots
from course.units import fmt_bytes, fmt_count

# %% [markdown]
# ## 1. Two real runs through the planner
#
# A **setup** names a model config, a GPU, a layout (DP × TP × PP, with EP carved out of
# DP), a precision recipe, an MFU, a token budget and a price. The
# planner asks `course.parallel` what each GPU holds and sends, `course.compute` how many
# FLOPs a step costs, and turns bytes into seconds over NVLink (160 GB/s) and
# InfiniBand (50 GB/s).

# %%
plans = {name: planner.plan(setup) for name, setup in planner.PRESETS.items()}
for name, p in plans.items():
    s = p.setup
    print(f"{name}: {s.layout.world:,} x {s.gpu_name}, DP{s.layout.dp} TP{s.layout.tp} "
          f"PP{s.layout.pp} EP{s.layout.ep}, {s.recipe}")
    print(f"  {fmt_bytes(p.per_gpu_bytes)} per GPU ({'fits' if p.fits else 'DOES NOT FIT'}); "
          f"step {p.compute_s:.1f} s compute, {p.comm_s:.1f} s communication")
assert all(p.fits for p in plans.values())

# %%
fig = plots.memory_bars(list(plans), [p.memory for p in plans.values()],
                        [p.gpu_bytes for p in plans.values()])
fig.show()

# %% [markdown]
# Now the estimate beside the published figure. The published GPU-hours come from the
# DeepSeek-V3 report (Table 1, pre-training) and the Llama 3.1 model card (its whole
# training). DeepSeek-V3's MFU is not fitted to that bill: it is DeepSeek's own measurement
# of the cluster, 38.94% of the H800's dense BF16 peak (ISCA '25 paper, Table 4), which the
# planner restates against the FP8 peak its matmuls use:

# %%
checks.check_close("V3 MFU of the FP8 peak = measured MFU x BF16 peak / FP8 peak",
                   planner.PRESETS["DeepSeek-V3"].mfu,
                   compute.ISCA25_MFU["causal"] * 989.4 / 1978.9, rtol=1e-3)

# %%
v3, llama = plans["DeepSeek-V3"], plans["Llama 3.1 405B"]
published = {"DeepSeek-V3": compute.DEEPSEEK_V3["pretrain_gpu_hours"],
             "Llama 3.1 405B": compute.LLAMA_31_405B["total_gpu_hours"]}
for name, p in plans.items():
    print(f"{name:15s} estimate {fmt_count(p.gpu_hours())} GPU-hours, {p.days():.0f} days; "
          f"published {fmt_count(published[name])}")
checks.check_close("DeepSeek-V3 GPU-hours, estimate vs report", v3.gpu_hours(),
                   published["DeepSeek-V3"], rtol=0.05)
checks.check_close("Llama 3.1 405B GPU-hours, estimate vs card", llama.gpu_hours(),
                   published["Llama 3.1 405B"], rtol=0.15)

# %% [markdown]
# Both numbers describe the same run, so the agreement checks the planner's FLOPs count
# and arithmetic against DeepSeek's, not a forecast of an unseen run. What the planner
# adds is that this setup **fits** in 80 GB and that its communication can hide behind
# compute. Llama's MFU (40%) is an assumption, and its card counts all training time, so
# its estimate falls short of it.
#
# ## 2. What overlapping communication buys
#
# If every byte had to be sent while the GPUs wait, each step would take compute +
# communication. DualPipe (notebook 07) overlaps them, so a step takes the larger of the two.

# %%
for name, p in plans.items():
    print(f"{name:15s} {p.days(overlap=True):.0f} days overlapped, "
          f"{p.days(overlap=False):.0f} days if not ({p.days(False) / p.days(True) - 1:.0%} more)")

# %% [markdown]
# These step times leave out **pipeline bubbles**. DeepSeek-V3 runs DualPipe over PP = 16
# stages with 120 micro-batches per step; `course.pipeline` simulates that schedule
# with notebook 07's chunk times (B = 2F, W = F, a forward and a backward overlapped in
# 2.5F) and gives the idle share of a step:

# %%
bubble = v3.bubble_fraction()
print(f"DualPipe, PP {v3.setup.layout.pp}, {v3.microbatches} micro-batches: "
      f"{bubble:.1%} of each step idle")
print(f"V3 with that bubble on top: {v3.days(bubble=True):.0f} days, "
      f"{fmt_count(v3.gpu_hours(bubble=True))} GPU-hours")
checks.check_close("step with bubble = busy time / (1 - idle share)",
                   v3.step_s(bubble=True), v3.step_s() / (1 - bubble), rtol=1e-9)

# %% [markdown]
# The measured MFU already includes whatever bubbles and stalls the real run had, so
# adding the simulated bubble on top counts it twice: read the ~3% as what the bubble would
# cost, not a correction. Llama 3 trained with its own modified interleaved schedule (Llama 3
# paper §3.3.2), which the course does not reproduce, so its bubble is left out.

# %%
fig = plots.step_bars(list(plans), [p.compute_s for p in plans.values()],
                      [p.comm_s for p in plans.values()])
fig.show()
for name, p in plans.items():
    print(f"{name:15s} communication / compute = {p.comm_s / p.compute_s:.2f}, "
          f"{p.days(False) / p.days(True) - 1:.0%} longer without overlap")

# %% [markdown]
# Relative to its compute, DeepSeek-V3 sends about as much per step as the dense Llama
# (the ratios above), although an MoE adds the expert all-to-all. That is what
# node-limited routing and FP8 dispatch buy (notebook 06: each token's activations go
# once to each of at most 4 nodes, in one byte per value), and DualPipe (notebook 07)
# hides what is left instead of accepting the longer runs printed above.
#
# ## 3. Serving: memory per million tokens of context
#
# After training, the model serves. The weights sit in memory once; the KV cache grows
# with every token held in context (notebook 11).

# %%
for name, p in plans.items():
    parts = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in p.serving_bytes.items())
    print(f"{name:15s} {parts}")
kv_ratio = (llama.serving_bytes["KV cache, 1M tokens (BF16)"]
            / v3.serving_bytes["KV cache, 1M tokens (BF16)"])
mha_ratio = kvcache.mha_bytes_per_token("deepseek-v3") / kvcache.kv_bytes_per_token("deepseek-v3")
print(f"MLA cache per token: {kv_ratio:.2f}x smaller than Llama 405B's GQA-8, "
      f"{mha_ratio:.1f}x smaller than the same model with multi-head attention")
checks.check_close("Llama 405B / DeepSeek-V3 KV cache per token (ISCA '25 Table 1: "
                   "516.096 / 70.272 KB)", kv_ratio, 516.096 / 70.272, rtol=1e-3)
checks.check_close("V3 with MHA / V3 with MLA: 2 n_h d_h / (d_c + d_h^R)", mha_ratio,
                   2 * 128 * 128 / (512 + 64), rtol=1e-9)

# %% [markdown]
# Two baselines, two answers: 7.3× is against another model (whose GQA already shares each
# key-value head among 16 query heads); 57× is what MLA saves against the same model's
# plain multi-head attention (DeepSeek-V2 report §2.1.4).

# %% [markdown]
# ## 4. The thesis: efficiency, in tokens per dollar
#
# The essay's closing point is that cost matters as much as quality. **Training**, from
# the published bills: tokens seen per dollar of pre-training, both runs priced at
# $2 per GPU-hour.

# %%
train_tpd = {name: p.setup.tokens / (published[name] * 2.0) for name, p in plans.items()}
for name in plans:
    print(f"{name:15s} {fmt_count(train_tpd[name])} training tokens per $")
train_gain = train_tpd["DeepSeek-V3"] / train_tpd["Llama 3.1 405B"]
print(f"DeepSeek-V3: {train_gain:.1f}x the training tokens per $")
checks.check_close("ratio of the published bills", train_gain,
                   (14.8 / 2.664e6) / (15.6 / 30.84e6), rtol=0.01)

# %% [markdown]
# That ratio mixes two different models and GPUs. To see what each of DeepSeek-V3's choices
# buys, switch **one** off at a time and ask how much more training compute per token
# V3 would need at the same MFU (`planner.training_gains`): MoE off = every routed expert
# active; FP8 off = the dense BF16 peak; MLA off = plain multi-head attention, same heads.

# %%
train_x = planner.training_gains("deepseek-v3")
for factor, x in train_x.items():
    print(f"without {factor}: {x:5.2f}x the training time")
checks.check_close("MoE: 6 FLOPs per extra expert weight per token",
                   train_x["MoE"] * v3.flops_per_token - v3.flops_per_token,
                   6 * 58 * 248 * 3 * 7168 * 2048, rtol=1e-6)

# %% [markdown]
# MoE is the big one. FP8's 2× is a ceiling, the ratio of the dense peaks: DeepSeek
# published no BF16 run of V3, and its measured rate (38.94% of the *BF16* peak) is what
# good BF16 runs reach, so how much of the 2× the run really got cannot be read off the
# published numbers. MLA buys training compute too, because its low-rank projections
# hold fewer weights than multi-head attention's four d × n_h d_h matrices.
#
# **Serving.** Decoding reads every weight a step touches and the whole KV cache for a
# handful of FLOPs per byte, so it is **memory-bound** (notebook 11). On that roofline
# (`planner.decode_gains`, one H800, 4K tokens of context each) the factors buy different
# amounts at different batch sizes:

# %%
for batch in (1, 32, 256):
    g = planner.decode_gains("deepseek-v3", context=4096, batch=batch)
    experts = 256 * (1 - (1 - 8 / 256) ** batch)  # distinct experts per layer, uniform routing
    print(f"batch {batch:3d} ({g['bound']}-bound, ~{experts:.0f} experts touched): without MoE "
          f"{g['MoE']:5.2f}x slower, without FP8 {g['FP8']:.2f}x, without MLA {g['MLA']:.2f}x")
g1 = planner.decode_gains("deepseek-v3", batch=1)
checks.check_close("batch 1, MoE: all weights / one token's weights",
                   g1["MoE"], kvcache.weights_touched("deepseek-v3", 10**9)
                   / kvcache.weights_touched("deepseek-v3", 1), rtol=0.05)

# %% [markdown]
# * **MoE** saves bytes only while a step's tokens leave most experts idle: at batch 1 a
#   token reads 37 B of 671 B weights (18×), but 32 tokens already touch ~160 of 256
#   experts and 256 tokens touch nearly all of them. What MoE buys at serving scale is
#   compute per token, which matters once batches are big enough to be compute-bound.
# * **FP8** weights halve the weight bytes: close to 2× while weights dominate the reads.
# * **MLA** matters more as the batch grows, because the cache, not the weights, becomes
#   most of the bytes read.
#
# The costs are the ones this course met along the way: all 671 B weights still have to
# live in memory, experts must be balanced (08–09), and the all-to-all must be hidden
# (06–07).
#
# ## 5. Try it yourself
#
# * Halve PP to 8 and double DP to 256: does V3 still fit? Why did memory change?
# * Switch the matmuls to BF16 and the recipe to `bf16-mixed`. How much does the bill grow?
# * Pick `llama-3.1-405b` with EP 64. What does the planner say, and how do you fix it?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.planner import planner_widget

live = planner_widget()
live

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("13.step_seconds"))` reveals a solution.
#
# **1.** Write `step_seconds(compute_s, comm_s, overlap)`: the time of one step.

# %%
def step_seconds(compute_s, comm_s, overlap):
    raise NotImplementedError  # your code here


step_seconds = checks.check_exercise("13.step_seconds", step_seconds)
assert step_seconds(v3.compute_s, v3.comm_s, True) == v3.step_s(overlap=True)

# %% [markdown]
# **2.** Write `fits(memory, gpu_gb)`: does a dict of per-GPU bytes fit in a GPU of
# `gpu_gb` decimal gigabytes?

# %%
def fits(memory, gpu_gb):
    raise NotImplementedError  # your code here


fits = checks.check_exercise("13.fits", fits)
assert fits(v3.memory, v3.gpu_bytes / 1e9) == v3.fits

# %% [markdown]
# **3.** At what price per GPU-hour would DeepSeek-V3's 2.788 M GPU-hours cost $10 M?

# %%
answer = ...
passed = checks.check_answer("13.price_for_10m", answer)

# %% [markdown]
# ## Summary
#
# * One planner, four ingredients: memory per GPU (03–04), FLOPs and MFU (05),
#   communication and overlap (06–07). With DeepSeek's measured MFU it agrees with the
#   published bill and shows the setup fits in 80 GB. Pipeline bubbles (DualPipe: ~3% of
#   a step) are outside the step time unless added.
# * Hiding communication behind compute saves DeepSeek-V3 the extra run time printed in
#   section 2 (communication that could not overlap would add to every step).
# * Per the published bills, V3 trained ~11× more tokens per dollar than Llama 3.1 405B.
#   Switched off one at a time: MoE ~16× the training compute, FP8 at most 2×, MLA ~1.4×.
#   In memory-bound decoding MoE saves 18× at batch 1 and almost nothing at batch 256,
#   FP8 ~2×, MLA more as the batch grows.
# * MLA's cache per token is 7.3× smaller than Llama 405B's GQA-8 and 57× smaller than
#   the same model with multi-head attention.
#
# **Next:** [14 · Build a tiny DeepSeek](14_tiny_deepseek.ipynb): every component in one model.
