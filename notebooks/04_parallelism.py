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
# # 04 · Parallelism
#
# > **You will** split a model over many GPUs five ways (data, tensor, pipeline,
# > expert and sequence parallelism, plus ZeRO), work out what each GPU holds in
# > DeepSeek-V3's real layout, and run a real distributed training job on your
# > own CPU cores.
# > **Before this:** [03 · How many GB do I need?](03_memory.ipynb)
# > **Time:** 30 minutes.
#
# One DeepSeek-V3 replica needs about 9 TB to train (notebook 03). A GPU has
# 80 GB. So the model must be cut into pieces, and the pieces must talk.

# %%
from course import checks, parallel, parallel_run
from course.plots import parallel as plots

L = parallel.Layout
print(parallel.DEEPSEEK_V3_LAYOUT)

# %% [markdown]
# ## 1. Five ways to cut
#
# | name | what each GPU gets | what it must send |
# |---|---|---|
# | **DP** data parallel | the whole model, a slice of the batch | gradients (all-reduce) |
# | **ZeRO-1/2/3** | DP, but optimizer states (1), gradients (2), weights (3) sharded | gradients (reduce-scatter), updated weights (all-gather) |
# | **TP** tensor parallel | a slice of every matrix (by heads) | activations: all-reduces, 2 forward + 2 backward per layer |
# | **PP** pipeline parallel | a run of consecutive layers | activations to the next stage |
# | **EP** expert parallel | some of the experts | tokens to their experts (all-to-all) |
# | **SP** sequence parallel | with TP, a slice of the tokens in the norms | same bytes as TP |
#
# TP's count: each of a layer's two blocks (attention, MLP) sums its partial outputs
# after its last matmul in the forward pass, and its input gradients before its first
# matmul in the backward pass (Megatron-LM, Shoeybi et al. 2019, §3):

# %%
tp_ar = parallel.tp_all_reduces_per_layer()
print(f"TP all-reduces per layer: {tp_ar} -> {sum(tp_ar.values())} in all")

# %% [markdown]
# The GPUs multiply out as DP × TP × PP; EP groups are carved out of the DP ranks.
# A layout that does not fit the model gets a sentence, not a traceback:

# %%
tries = [(L(dp=4, pp=2), 16), (L(tp=3), 3), (L(pp=64), 64), (L(dp=8, ep=3), 8)]
for bad, gpus in tries:
    try:
        parallel.validate("deepseek-v3", bad, world_size=gpus)
    except ValueError as err:
        print(f"{gpus:>3} GPUs, {bad}:\n    {err}")
parallel.validate("deepseek-v3", L(dp=8, pp=2), world_size=16)  # this one is fine

# %% [markdown]
# ## 2. DeepSeek-V3's real layout
#
# 2,048 H800 GPUs: **16 pipeline stages** (PP16), and inside each stage **128
# data-parallel ranks** with ZeRO-1. The 128 ranks of a stage form two
# **expert-parallel groups of 64** GPUs spanning 8 nodes (EP64), each GPU holding
# 4 of the 256 experts of each of its layers. No tensor parallelism.

# %%
ds = parallel.DEEPSEEK_V3_LAYOUT
rep = parallel.replicas("deepseek-v3", ds)
for k, v in rep.items():
    print(f"{k:>17}: {v:g}")
assert ds.world == 2048 and rep["experts_per_gpu"] == 4
assert rep["dense_copies"] == 128 and rep["expert_copies"] == 2

# %% [markdown]
# ### How big is a step? Gradient accumulation and the global batch
#
# One optimizer step sums the gradients of a **global batch**. No GPU holds it at once:
# each data-parallel copy runs it as a series of **micro-batches** and accumulates their
# gradients before the update (with pipeline parallelism those micro-batches are what
# flows through the pipeline). So
#
# $$\text{global batch} = \text{micro-batch} \times \text{accumulation steps} \times
# \text{DP}.$$
#
# DeepSeek-V3's batch grew from **3,072 to 15,360 sequences** of 4K tokens over the first
# 469 B tokens, then stayed at 15,360 (report §4.2). The report does not give the
# micro-batch size; we take one sequence per micro-batch.

# %%
b = parallel.V3_BATCH
m_v3 = parallel.v3_microbatches()  # at the full batch of 15,360 sequences
m_start = parallel.v3_microbatches(b["start"])
print(f"{b['end']:,} sequences = {parallel.V3_MICRO_BATCH} x {m_v3} micro-batches x "
      f"{ds.dp} pipelines; at the start of the ramp, {m_start} micro-batches each")
checks.check_close("global batch = micro-batch x accumulation x DP",
                   parallel.global_batch(parallel.V3_MICRO_BATCH, m_v3, ds.dp), b["end"])
steps = parallel.v3_steps()
print(f"{b['end'] * b['seq_len'] / 1e6:.1f} M tokens per step; ~{steps['ramp']:,.0f} steps "
      f"in the ramp (if linear), ~{steps['total']:,.0f} steps in all")

# %% [markdown]
# So each of the 128 pipelines runs **120 micro-batches per step** at the full batch:
# the number the per-step traffic below uses, and the one notebook 07 uses for
# DualPipe's bubble. At the ramp's start a pipeline had only 24, fewer than the 2 × 16 =
# 32 a 16-stage DualPipe needs (notebook 07): the report does not say how those first
# steps were split. The step count assumes a linear ramp (the report gives only its end
# points).

# %% [markdown]
# > **Check the claim.** The essay pictures DeepSeek-V3 as "32 clusters of 64
# > GPUs", each a replica that syncs gradients with the others. The count is right
# > — 2,048 / 64 = 32 EP groups — but none of them is a replica: each holds only
# > 1/16 of the layers (one pipeline stage). Each attention and dense weight
# > exists in **128** copies (the DP ranks of its stage), and each expert in only
# > **2**. With ZeRO-1 the gradients are reduce-scattered (each rank gets the sum of
# > its slice), each rank updates its slice of the weights, and the **updated weights**
# > are all-gathered, in groups of 128 for dense weights and of 2 for experts (the
# > bars `DP reduce-scatter (… grads)` and `DP all-gather (… weights)` below).

# %%
assert rep["ep_groups"] == 32
mem = parallel.per_gpu_memory("deepseek-v3", ds, "deepseek-fp8", seq_len=4096,
                              recompute="selective", microbatches=m_v3)
comm = parallel.comm_per_step("deepseek-v3", ds, "deepseek-fp8", seq_len=4096,
                              microbatches=m_v3)
for k, v in mem.items():
    print(f"{k:>12}: {v / 1e9:6.1f} GB")
assert sum(mem.values()) < 80e9  # it fits on an 80 GB H800
plots.per_gpu(mem, comm, 80, "DeepSeek-V3, one GPU of 2,048").show()

# %% [markdown]
# The same model without expert parallelism (EP1, experts replicated everywhere)
# does not come close to fitting:

# %%
no_ep = parallel.per_gpu_memory("deepseek-v3", L(dp=128, pp=16, zero=1),
                                "deepseek-fp8", recompute="selective",
                                microbatches=m_v3)
print(f"EP1: {sum(no_ep.values()) / 1e9:,.0f} GB per GPU")
assert sum(no_ep.values()) > 4 * sum(mem.values())

# %% [markdown]
# The traffic above is dominated by the **all-to-all** of expert parallelism. Every
# MoE layer sends each token to its 8 experts on up to 4 of the EP group's 8 nodes:
# one FP8 copy per remote node crosses InfiniBand (1 byte per value plus a scale per
# 128) and is forwarded inside the node over NVLink; the experts' outputs come back in
# BF16 (2 bytes); the backward pass does both again (report §3.2.2, §3.3.4). The bar
# counts the InfiniBand bytes, with the same model as notebook 06
# (`course.expert_traffic`). That is why DeepSeek-V3 limits each token to 4 nodes and
# overlaps communication with compute (notebooks 06 and 07).

# %%
from course import expert_traffic
from course.configs import load_config

top = max(comm, key=comm.get)
print(f"largest: {top}, {comm[top] / 1e9:.0f} GB per GPU per step of {m_v3} micro-batches")
assert top == "EP all-to-all (IB)"
v3 = load_config("deepseek-v3")
link, copies = expert_traffic.ep_copies(v3.n_routed_experts, v3.experts_per_token, ds.ep,
                                        n_group=v3.n_group, topk_group=v3.topk_group)
per_token = (expert_traffic.TRAINING_PASSES
             * expert_traffic.ep_traffic(copies, v3.hidden_size).total_bytes)
print(f"{copies:.2f} remote nodes per token (random routing, at most {v3.topk_group} nodes): "
      f"{per_token / 1e3:.0f} KB over {link} per token per MoE layer, forward + backward")
checks.check_close("EP bar = tokens x MoE layers per stage x bytes per token", comm[top],
                   4096 * m_v3 * v3.n_moe_layers / ds.pp * per_token)

# %% [markdown]
# ## 3. A real distributed run
#
# Now for real: `parallel_run.run_all(2)` starts **two processes** on this
# machine that talk through `torch.distributed` (the gloo backend over the
# loopback network; NCCL on GPUs). They train a small MLP for 5 steps three ways:
#
# - **DP**: each process takes half the batch; gradients are all-reduced.
# - **ZeRO-1**: gradients are reduce-scattered, each process updates *its half*
#   of the weights with *its half* of the AdamW states, then the halves are
#   all-gathered.
# - **EP**: a forward pass of a 4-expert MoE layer, 2 experts per process:
#   tokens travel to their expert by all-to-all and come back the same way.
#
# DP's all-reduce and ZeRO-1's reduce-scatter and all-gather are not torch's
# built-in calls here: `course.ring` runs them as a **ring of point-to-point
# sends**, chunk by chunk, and counts the bytes each process hands to `send`
# (the EP all-to-all counts the rows that leave the process). (This takes a few
# seconds: two Python processes start up.)

# %%
runs = parallel_run.run_all(world=2)
reference = parallel_run.train_single()["params"].numpy()
for strategy in ("dp", "zero1"):
    for rank, out in enumerate(runs[strategy]):
        gap = abs(out["params"] - reference).max()
        checks.check_close(f"{strategy} rank {rank} = one-process training",
                           gap, 0.0, atol=1e-6)

# %% [markdown]
# Both give the same weights as training in one process, to float rounding: the
# hand-made rings sum the gradients and gather the weights correctly
# (`tests/test_ring.py` also checks them against torch's own collectives on 3
# processes). What ZeRO-1 saves is memory: each process keeps only its shard of the
# optimizer.

# %%
dp_opt = runs["dp"][0]["memory"]["optimizer"]
z1_opt = runs["zero1"][0]["memory"]["optimizer"]
print(f"AdamW states per process: DP {dp_opt:,} bytes, ZeRO-1 {z1_opt:,} bytes")
checks.check_close("ZeRO-1 keeps 1/2 of the optimizer state", z1_opt / dp_opt,
                   0.5, rtol=1e-3)

# %% [markdown]
# And the bytes each process really sent, next to `course.parallel`'s prediction:
# the ring formula 2(p−1)/p · n for an all-reduce and (p−1)/p · n for a reduce-scatter
# or an all-gather (for EP, the rows whose expert lives on the other process, from the
# routing recomputed here). The counts come from the sends themselves, so a ring that
# sent a chunk too many, or a flat buffer of the wrong size, would fail this check:

# %%
rows = [(f"{s}: {what}", got, pred) for s in parallel_run.STRATEGIES
        for what, got, pred in parallel_run.compare(s, world=2)]
for label, got, pred in rows:
    checks.check_close(label, got, pred)
plots.bytes_measured_vs_predicted(rows).show()

# %% [markdown]
# And expert parallelism computed the same outputs as one process running all 4
# experts:

# %%
import numpy as np

ep = np.concatenate([r["output"] for r in runs["ep"]])
ref = parallel_run.moe_reference({**parallel_run.SIZES, "world": 2})["output"]
checks.check_close("EP output = one-process MoE", abs(ep - ref.numpy()).max(),
                   0.0, atol=1e-6)

# %% [markdown]
# **On a real cluster**, the same job runs under `torchrun` (gloo on CPUs, NCCL on
# GPUs), one process per GPU:
#
# ```
# torchrun --nproc-per-node 8 -m course.parallel_run --strategy zero1
# ```

# %% [markdown]
# ## 4. Try it yourself
#
# Pick a model, a cluster and a layout: DP is what is left after TP × PP. The
# left bar is one GPU's memory against its capacity; the right bars are what it
# sends per step. The button runs the real gloo job for a strategy and shows
# measured bytes beside the prediction.
#
# - Starting from DeepSeek-V3's layout, set EP to 8. Does it still fit?
# - Set PP to 64. What does the widget say? (DeepSeek-V3 has 61 layers.)
# - Llama 3.1 405B has no experts: which TP × PP makes it fit on 2,048 H100s?
# - Switch ZeRO from 1 to 3: which bar shrinks, and what happens to traffic?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.parallel import parallel_widget

live = parallel_widget()
live

# %% [markdown]
# ## 5. Exercises
#
# Stuck? `print(checks.solution("04.ring_all_reduce_bytes"))`.
#
# **Exercise 1.** In a ring all-reduce each rank sends its tensor in `world`
# chunks, twice around the ring. How many bytes does one rank send?

# %%
def my_all_reduce_bytes(n_bytes, world):
    # n_bytes: tensor size in bytes; world: ranks; return bytes sent per rank
    raise NotImplementedError


my_all_reduce_bytes = checks.check_exercise("04.ring_all_reduce_bytes",
                                      my_all_reduce_bytes)

# %% [markdown]
# **Exercise 2.** Under ZeRO-1 with FP32 master weights and two FP32 Adam
# moments, how many optimizer bytes does one GPU keep for `n_params` over `dp`
# data-parallel copies?

# %%
def my_zero1_optimizer_bytes(n_params, dp):
    # return bytes per GPU
    raise NotImplementedError


my_zero1_optimizer_bytes = checks.check_exercise("04.zero1_optimizer_bytes",
                                           my_zero1_optimizer_bytes)

# %% [markdown]
# **Exercise 3.** In DeepSeek-V3's layout, how many GPUs hold a copy of any one
# expert (of one layer)?

# %%
answer = None  # an int
passed = checks.check_answer("04.expert_copies", answer)

# %% [markdown]
# **Exercise 4.** Write `accumulation(global_sequences, micro_batch, dp)`: how many
# micro-batches each data-parallel copy runs per optimizer step.

# %%
def my_accumulation(global_sequences, micro_batch, dp):
    raise NotImplementedError


my_accumulation = checks.check_exercise("04.accumulation", my_accumulation)

# %% [markdown]
# ## Summary
#
# - DP copies the model, TP cuts matrices, PP cuts layers, EP spreads experts,
#   ZeRO shards optimizer states (then gradients, then weights) over DP copies.
# - DeepSeek-V3: PP16 × DP128 on 2,048 GPUs, EP64 inside each stage: dense
#   weights exist 128 times, each expert twice, 4 experts per GPU.
# - Global batch = micro-batch × accumulation × DP: DeepSeek-V3's 15,360 sequences are
#   120 micro-batches per pipeline per step (one sequence each, assumed).
# - A real two-process run gives the same weights with DP and ZeRO-1 as one
#   process, ZeRO-1 halves the optimizer, and the bytes its ring sends match the
#   ring formula.
#
# **Next:** [05 · How long does training take?](05_training_time.ipynb)
