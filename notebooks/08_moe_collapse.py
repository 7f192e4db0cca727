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
# # 08 · MoE routing collapse
#
# > **You will** train a tiny mixture-of-experts model with no balancing at all,
# > watch a few experts take most of the tokens (the rich get richer), and see
# > what that does to the GPUs that host the experts.
# > **Before this:** [01 · The transformer block](01_transformer_block.ipynb)
# > (the MLP) and [04 · Parallelism](04_parallelism.ipynb) (expert parallelism).
# > **Time:** 20 minutes.
#
# In a mixture-of-experts (MoE) layer the one big MLP is replaced by many small
# ones, the **experts**, and a small linear **router** picks a few of them for
# each token. DeepSeek-V3 has 256 routed experts per layer and uses 8 per token,
# plus one **shared** expert that every token uses; section 7 computes the share of
# the layer's expert parameters a token pays for.

# %%
import numpy as np
import torch

from course import checks, data, moe
from course.configs import load_config
from course.plots import moe as plots
from course.presets import preset

# %% [markdown]
# ## 1. A router picks experts
#
# The router is one matrix W (experts × width). For a token x it scores every
# expert, keeps the top k and weights their outputs. Two recipes:
#
# * **softmax** (GShard, Switch, Mixtral): probabilities over all experts.
#   Switch (top-1) uses the chosen expert's probability as its gate weight, and so
#   does `moe.route` (as DeepSeek-V2 did); GShard (top-2) and Mixtral renormalise
#   the chosen top-k probabilities to sum to 1 (checked below).
# * **sigmoid** (DeepSeek-V3): an independent score per expert; the chosen
#   scores are normalised to sum to 1, then multiplied by a route scale (2.5).

# %%
g = torch.Generator().manual_seed(0)
logits = torch.randn(4, 8, generator=g)  # 4 tokens, 8 experts
w_soft, idx_soft, _ = moe.route(logits, k=2, score_func="softmax")
w_sig, idx_sig, _ = moe.route(logits, k=2, score_func="sigmoid",
                              route_scale=2.5)
print("experts chosen:", idx_soft.tolist())
print("softmax gate weights:", np.round(w_soft.numpy(), 3).tolist())
print("sigmoid gate weights:", np.round(w_sig.numpy(), 3).tolist())
assert torch.equal(idx_soft, idx_sig)  # same order: both are monotone
assert torch.allclose(w_sig.sum(-1), torch.tensor(2.5))
mixtral = logits.gather(1, idx_soft).softmax(-1)  # softmax over the top-k logits only
renormalised = w_soft / w_soft.sum(-1, keepdim=True)  # GShard / Mixtral gate weights
checks.check_close("renormalised top-k probabilities = softmax over the top-k logits "
                   "(largest difference)", (renormalised - mixtral).abs().max().item(), 0.0,
                   atol=1e-6)

# %% [markdown]
# Both recipes choose the same experts here (softmax and sigmoid rank logits the
# same way); they differ in the weights. Nothing in the router asks it to spread
# tokens evenly. That is the problem of this notebook.
#
# ## 2. Train an MoE model with no balancing
#
# `moe.train` trains the course's one model (the transformer of notebook 01)
# with its second MLP replaced by an MoE layer, on the toy corpus. The toy
# setting: **16 experts, top-1 softmax routing (Switch-style), no shared
# expert**, 150 steps. Each row of `run.load` is one training batch: the share of
# routed tokens each expert received.

# %%
run = moe.train("none")
print(f"{len(run.loss)} steps in {run.seconds:.1f} s, held-out loss "
      f"{run.val_loss:.3f}; load shape {run.load.shape}")
assert np.allclose(run.load.sum(1), 1.0)
plots.load_heatmap(run.load, "No balancing: share of tokens per expert").show()

# %% [markdown]
# Read the heat map left to right. At step 1 the load is uneven but spread.
# Within about ten steps one expert's row turns dark: it takes most of the
# tokens. Later the language-model loss pulls some tokens back to other
# experts, but the winner keeps several times its fair share and a few
# experts stay almost idle for the whole run.
#
# ## 3. Measure it: MaxVio
#
# The loss-free balancing paper (Wang et al. 2024) measures imbalance with
# **MaxVio** = (max load − mean load) / mean load. 0 is perfect balance; with
# E experts, all tokens on one expert gives E − 1.

# %%
checks.check_close("MaxVio of loads (3, 1, 1, 1)", moe.max_vio([3, 1, 1, 1]),
                   (3 - 1.5) / 1.5)
mv = run.max_vio  # one value per training batch
tail = run.load[-20:].mean(0)  # load over the last 20 steps
print(f"MaxVio: first 3 steps {mv[:3].mean():.2f}, steps 5-30 "
      f"{mv[5:30].mean():.2f}, last 20 steps {mv[-20:].mean():.2f}, "
      f"held-out set {run.val_max_vio:.2f}")
print(f"busiest expert at the end: {tail.max():.0%} of tokens (fair: 1/16)")
assert mv[5:30].mean() > 2 * mv[:3].mean()  # an early rush to one expert
assert tail.max() > 3 / 16 and (tail < 0.25 / 16).sum() >= 2
plots.lines({"no balancing": mv}, "MaxVio per batch", "MaxVio",
            smooth=5).show()

# %% [markdown]
# Why the rush? An expert that gets tokens gets gradient, so it improves; the
# router is trained to favour experts that lower the loss, so it sends that
# expert more tokens, which improve it further. Starved experts get no
# gradient and never catch up. Early in training, when every weight moves
# fast, this loop runs away.
#
# ## 4. What drives collapse at this scale (honestly)
#
# Two things in this toy are *not* the rich-get-richer loop:
#
# * **Word frequencies.** The corpus has only a few words, and the most
#   frequent one ("." ends every sentence) is a large share of the tokens
#   (printed below). A router that looked only at the word would send every
#   copy of it to the same expert: with top-1 over 16 experts that alone is a
#   MaxVio of 16 × share − 1.
# * **A common direction at initialisation.** Before training, the hidden
#   states of different tokens share a large common component, so a random
#   router already prefers some experts (the MaxVio of the first 3 steps,
#   printed in section 3).
#
# The loop takes MaxVio well past both. The settings that make it easy to
# see are **few experts, top-1, softmax, no shared expert**. DeepSeek-V3's
# recipe (sigmoid scores, several experts per token, a shared expert) is
# gentler at this scale, but not balanced. Both after 60 steps, at seeds 0, 1 and 2
# (shipped as `assets/runs/moe_routers.json`; seed 0 of the Switch-style router is
# the first 60 steps of the run above):

# %%
counts = torch.bincount(data.split()[0])
top = int(counts.argmax())
share = float(counts[top] / counts.sum())
floor = moe.word_router_floor(counts, n_experts=16, k=1)
print(f"{data.tokenizer().vocab_size} words; the most frequent, "
      f"{data.tokenizer().words[top]!r}, is {share:.1%} of the training tokens")
checks.check_close("word-only router floor = 16 × share − 1", floor, 16 * share - 1)
routers = moe.router_spread({"Switch-style": ("none", {}), "DeepSeek-style": (
    "none", dict(top_k=2, score_func="sigmoid", n_shared=1))}, seeds=(0, 1, 2), steps=60)
vio = {name: routers[name]["val_max_vio"] for name in routers.methods}
print(f"held-out MaxVio after {routers.steps} steps, from {routers.source}: "
      f"word-only router floor (top-1) {floor:.2f}")
for name, spread in vio.items():
    print(f"{name:>14}: {spread.text('{:.2f}')}")
checks.check_close("seed 0 = the first 60 steps of the run above",
                   vio["Switch-style"].values[0], moe.train("none", steps=60).val_max_vio,
                   rtol=1e-4)
print(moe.compare_text(vio["DeepSeek-style"], vio["Switch-style"], "DeepSeek-style",
                       "Switch-style", "Held-out MaxVio"))

# %% [markdown]
# The router's initial scale matters too: try the "router init std" slider in
# section 8. At DeepSeek-V3's scale (256 experts, 14.8T tokens)
# nobody can afford to find out: every large MoE run balances its experts
# (notebook 09).
#
# ## 5. What collapse costs on GPUs
#
# With **expert parallelism** (EP) each GPU hosts a slice of the experts
# (DeepSeek's code puts experts r·E/R … (r+1)·E/R − 1 on rank r). Every GPU
# waits for the busiest one, so step time follows the maximum, not the mean.

# %%
recent = run.load[-10:].mean(0)  # load over the last 10 steps
ep = moe.ep_ranks(recent, n_ranks=4)
print(f"tokens per GPU (shares): {np.round(ep.tokens_per_rank, 3)}")
print(f"busiest GPU does {ep.slowdown:.2f}x its fair share; "
      f"average utilisation {ep.utilisation:.0%}")
checks.check_close("utilisation = mean / max", ep.utilisation,
                   ep.tokens_per_rank.mean() / ep.tokens_per_rank.max())
plots.ep_bars(ep.tokens_per_rank, "Share of tokens each GPU must process").show()
V3_GPUS = 2048  # H800s of V3's training run (V3 report §3.1)
print(f"at this utilisation, {(1 - ep.utilisation) * V3_GPUS:.0f} of {V3_GPUS} GPUs' "
      "time would be paid for and idle")

# %% [markdown]
# A step takes as long as the busiest GPU, so the idle share of the cluster is
# 1 − utilisation. Carried over to V3's 2048 GPUs (a stretch: 4 toy GPUs are
# not 64 EP ranks), the toy's collapse would idle the number of GPUs printed
# above.
#
# ## 6. Capacity factors: drop the overflow, or balance
#
# GShard and Switch Transformer bound the busiest expert another way: each
# expert takes at most **capacity = factor × tokens × k / E** routing slots of a
# batch (Lepikhin et al. 2020 §2.2; Fedus et al. 2021 §2.2) and the overflow is
# **dropped**: the token skips that expert and passes through the residual
# only. Factor 1 is exactly the balanced share. `moe.capacity_mask` keeps each
# expert's first arrivals (every token's first choice before any second one).

# %%
idx = torch.tensor([[0], [0], [0], [1], [1], [2], [3], [0]])  # 8 tokens, 4 experts
cap = moe.expert_capacity(tokens=8, n_experts=4, k=1, factor=1.5)
kept = moe.capacity_mask(idx, n_experts=4, capacity=cap)
print(f"capacity {cap} per expert; kept: {kept.flatten().tolist()}")
checks.check_close("slots dropped: expert 0 got 4, keeps 3", int((~kept).sum()), 1)
load = moe.expert_counts(idx, 4)
checks.check_close("smallest factor that drops nothing = max / mean = 1 + MaxVio",
                   float(load.max() / load.float().mean()), 1 + moe.max_vio(load.numpy()))

# %% [markdown]
# Now cap the trained routers after the fact (no retraining): held-out text in
# batches of the training size, for the collapsed router and for the same router
# trained with notebook 09's bias balancing, each at seeds 0, 1 and 2. Training the
# five runs not already above would double this notebook's time, so the result ships
# with the course (`assets/runs/moe_capacity.json`, checked by the tests;
# `cache=False` retrains). Seed 0 of "no balancing" is the run above.

# %%
caps = moe.capacity_over_seeds(seeds=(0, 1, 2))
print(f"{len(caps.seeds)} seeds of {caps.steps} steps, from {caps.source}")
checks.check_close("seed 0 = the run above (factor that drops nothing)",
                   caps.sweeps["no balancing"][0].no_drop_factor,
                   moe.capacity_sweep(run, [1.25]).no_drop_factor, rtol=1e-4)
for name in caps.methods:
    print(f"{name:>14}: factor 1.25 drops "
          f"{caps.spread(name, 'dropped', 1.25).text('{:.0%}')} of slots and gives up "
          f"{caps.spread(name, 'loss_share_lost', 1.25).text('{:.0%}')} of the experts' "
          f"loss gain; nothing dropped from factor "
          f"{caps.spread(name, 'no_drop_factor').text('{:.2f}')}")
print(moe.compare_text(caps.spread("bias balancing", "no_drop_factor"),
                       caps.spread("no balancing", "no_drop_factor"), "bias balancing",
                       "no balancing", "Factor that drops nothing"))
seed0 = {name: caps.sweeps[name][0] for name in caps.methods}
plots.capacity_curves(seed0, "Capacity factor, seed 0: what is dropped, what it costs").show()

# %% [markdown]
# The dotted lines mark the factor at which nothing is dropped: the busiest
# expert's load over the mean in the worst held-out batch. Without balancing it
# is several times the balanced share (printed above, mean and range over the
# seeds), so a drop-free layer must leave room (buffer memory, and time on the
# slowest GPU) for that many times the balanced load; capped at the factors
# Switch trains with (1.0 to 2.0), it drops a large share of the slots instead.
# Balancing shrinks both. That is why the two go together: DeepSeek-V3 balances
# well enough to drop **no** token, in training or in inference (V3 report §2.1.2, "No
# Token-Dropping"), and pays for a little headroom instead.
#
# Honestly, at toy size dropping costs little loss: the held-out losses with
# every routed slot dropped and with none dropped differ by a few hundredths
# (printed next), because the dense layer and attention carry most of this tiny
# corpus. So the right panel shows the *share* of the experts' gain given up.

# %%
for name in caps.methods:
    print(f"{name:>14}: held-out loss {caps.spread(name, 'val_loss_no_drop').text()} with "
          f"no drop, {caps.spread(name, 'val_loss_all_dropped').text()} with every routed "
          "slot dropped")

# %% [markdown]
# ## 7. The real router, at full size
#
# DeepSeek-V3's router scores **256 experts** from a **7168**-wide token,
# restricts each token to **4 of 8 expert groups** (the top-2 scores of each
# group decide) and keeps **8 experts**. `moe.time_layer()` builds that router
# and one MoE layer (with a shared expert) and times a forward pass over a big
# batch. On a CPU it runs the toy preset; on a GPU the real widths in BF16.

# %%
v3 = load_config("deepseek-v3")
assert (v3.n_routed_experts, v3.experts_per_token, v3.n_group, v3.topk_group,
        v3.hidden_size) == (256, 8, 8, 4, 7168)
timing = moe.time_layer()
print(f"{timing.tokens} tokens on {timing.device} ({timing.dtype}): router "
      f"{timing.router_seconds * 1e3:.1f} ms, whole layer "
      f"{timing.layer_seconds * 1e3:.1f} ms, "
      f"{timing.tokens_per_s:,.0f} tokens/s; MaxVio "
      f"{moe.max_vio(timing.load):.2f}")
assert timing.load.sum() == timing.tokens * preset("moe_layer")["top_k"]
used = v3.experts_per_token + v3.n_shared_experts  # all experts have the same size
share = used / (v3.n_routed_experts + v3.n_shared_experts)
print(f"a token runs {used} of the {v3.n_routed_experts + v3.n_shared_experts} expert "
      f"MLPs of a V3 layer: {share:.1%} of its expert parameters")

# %% [markdown]
# With a random router and random tokens the load is nearly even: collapse is
# something *training* does.
#
# ## 8. Try it yourself
#
# Each change trains a fresh model (a few seconds; runs are cached).
#
# * Raise **top-k** from 1 to 2. Is there still an early rush to one expert?
# * Make the **router init std** large (0.5) or tiny (0.001). Which start is
#   more unequal, and which ends more unequal?
# * Switch to 8 experts, then 32. How does MaxVio compare with E − 1, its
#   worst case?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.moe import collapse_explorer

live = collapse_explorer()
live

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("08.max_vio"))` reveals a solution.
#
# **1.** Write `max_vio(load)` for a 1-D array of tokens per expert.

# %%
def max_vio(load):
    raise NotImplementedError  # your code here


max_vio = checks.check_exercise("08.max_vio", max_vio)

# %% [markdown]
# **2.** 16 experts on 4 GPUs (4 each), loads per expert below. What fraction
# of the time is the average GPU busy? Replace `...` with a number.

# %%
load = np.array([40, 5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 5, 5, 5, 5])
answer = ...
passed = checks.check_answer("08.ep_utilisation", answer)

# %% [markdown]
# **3.** All tokens of a batch go to one expert out of E = 16 (top-1). What is
# MaxVio? Replace `...`.

# %%
answer = ...
passed = checks.check_answer("08.max_vio_collapse", answer)

# %% [markdown]
# **4.** Count the dropped slots: `indices` (T, k) are the experts each token
# chose, every expert takes at most `capacity` slots, first choices of all
# tokens go before second choices, tokens in order. Return how many slots are
# dropped. (Does the order change how many, or only which?)

# %%
def dropped_slots(indices, n_experts, capacity):
    raise NotImplementedError  # your code here


dropped_slots = checks.check_exercise("08.dropped_slots", dropped_slots)

# %% [markdown]
# ## Summary
#
# * A router trained only for the loss rushes towards a few experts: the
#   experts that get tokens improve and get more tokens. MaxVio measures it.
# * At toy scale part of the imbalance is the data (a few very frequent words)
#   and the router's start; top-1 softmax with few experts and no shared
#   expert collapses most.
# * With expert parallelism the busiest GPU sets the step time, so imbalance
#   is idle hardware.
# * A capacity factor bounds the busiest expert by dropping its overflow; the
#   factor that drops nothing is 1 + MaxVio. Balancing keeps that factor small,
#   which is what lets DeepSeek-V3 drop no token at all.
#
# **Next:** [09 · Balancing without an auxiliary loss](09_balancing.ipynb):
# an auxiliary loss, and DeepSeek's bias that balances without one.
