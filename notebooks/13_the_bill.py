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
# > check it against two published training runs, and compute what DeepSeek-V3's
# > efficiency buys in tokens per dollar.
# > **Before this:** notebooks [03](03_memory.ipynb), [04](04_parallelism.ipynb),
# > [05](05_training_time.ipynb) and [06](06_communication.ipynb).
# > **Time:** about 15 minutes.

# %%
from course import checks, compute, planner
from course.plots import planner as plots
from course.units import fmt_bytes, fmt_count

# %% [markdown]
# ## 1. Two real runs through the planner
#
# A **setup** names a model config, a GPU, a layout (DP × TP × PP, with EP carved out of
# DP), a precision recipe, an MFU for the maths alone, a token budget and a price. The
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
# DeepSeek-V3 report (pre-training) and the Llama 3.1 model card (its whole training).

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
# The DeepSeek estimate lands within a few percent because its MFU (20% of dense FP8) was
# derived from the same bill in notebook 05: what the planner adds is that this setup
# **fits** in 80 GB and that its communication can hide behind compute. Llama's card
# counts all training time, so its estimate falls short of it.
#
# ## 2. What overlapping communication buys
#
# If every byte had to be sent while the GPUs wait, each step would take compute +
# communication. DualPipe (notebook 07) overlaps them, so a step takes the larger of the two.

# %%
for name, p in plans.items():
    print(f"{name:15s} {p.days(overlap=True):.0f} days overlapped, "
          f"{p.days(overlap=False):.0f} days if not ({p.days(False) / p.days(True) - 1:.0%} more)")
assert v3.days(False) > 1.3 * v3.days(True)

# %%
fig = plots.step_bars(list(plans), [p.compute_s for p in plans.values()],
                      [p.comm_s for p in plans.values()])
fig.show()

# %% [markdown]
# DeepSeek-V3 sends more per step than Llama, relative to its compute: the expert
# all-to-all. That is the price of MoE, and why DeepSeek built DualPipe and node-limited
# routing (notebook 06) instead of accepting a ~40% longer run.
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
checks.check_close("Llama 405B / DeepSeek-V3 KV cache per token", kv_ratio, 7.34, rtol=0.01)

# %% [markdown]
# ## 4. The thesis: efficiency, in tokens per dollar
#
# The essay's closing point is that cost matters as much as quality. Here it is as
# numbers. **Training**: tokens seen per dollar of pre-training, both runs priced at
# $2 per GPU-hour. **Serving**: an upper bound on tokens generated per dollar if decoding
# were compute-bound at 40% of dense FP8 on the same GPU type (memory bandwidth and
# batching lower both numbers; the ratio is what matters).

# %%
train_tpd = {name: p.setup.tokens / (published[name] * 2.0) for name, p in plans.items()}
serve_tpd = {"DeepSeek-V3": planner.serving_tokens_per_dollar("deepseek-v3", "H800"),
             "Llama 3.1 405B": planner.serving_tokens_per_dollar("llama-3.1-405b", "H100 SXM")}
for name in plans:
    print(f"{name:15s} training {fmt_count(train_tpd[name])} tokens/$, "
          f"serving <= {fmt_count(serve_tpd[name])} tokens/$")
train_gain = train_tpd["DeepSeek-V3"] / train_tpd["Llama 3.1 405B"]
serve_gain = serve_tpd["DeepSeek-V3"] / serve_tpd["Llama 3.1 405B"]
print(f"DeepSeek-V3: {train_gain:.1f}x the training tokens per $, {serve_gain:.1f}x serving")
assert train_gain > 10 and serve_gain > 10

# %%
fig = plots.tokens_per_dollar(list(plans), list(train_tpd.values()), list(serve_tpd.values()))
fig.show()

# %% [markdown]
# Both gains come mostly from one place: each token touches 37 B of 671 B weights instead
# of all 405 B (the serving bound is exactly that ratio; both use FP8 there). The costs
# are the ones this course met along the way:
# all 671 B weights still have to live in memory, experts must be balanced (08–09), and
# the all-to-all must be hidden (06–07).
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
#   communication and overlap (06–07). For DeepSeek-V3 it reproduces the published bill
#   and shows the setup fits in 80 GB.
# * Hiding communication behind compute is worth ~40% of DeepSeek-V3's training time.
# * MoE + FP8 buy over 10× more tokens per dollar than a dense 405 B model, in training
#   and in serving; MLA cuts the KV cache per token 7×.
#
# **Next:** [14 · Build a tiny DeepSeek](14_tiny_deepseek.ipynb): every component in one model.
