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
# # 06 · Communication
#
# > **You will** model how long GPUs take to exchange data inside a node (NVLink) and
# > across nodes (InfiniBand), time real collectives between processes on your machine,
# > count the bytes DeepSeek-V3's experts send per token, and train with 16× less
# > communication.
# > **Before this:** [04 · Parallelism](04_parallelism.ipynb),
# > [05 · How long does training take?](05_training_time.ipynb).
# > **Time:** about 25 minutes.

# %%
from course import checks, comms, compute, diloco
from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S, load_config
from course.memory import param_count, recipe
from course.plots import comms as plots
from course.presets import preset
from course.units import fmt_bytes, fmt_seconds

# %% [markdown]
# ## 1. Two kinds of wire
#
# Inside a node, 8 GPUs talk over **NVLink**; between nodes, each GPU has its own
# **InfiniBand** card. DeepSeek measured **160 GB/s** and **50 GB/s** of effective
# bandwidth: IB is 3.2× slower.
#
# Sending n bytes costs a fixed latency α plus n / bandwidth. The classic **ring**
# algorithms pass chunks around the ranks:
#
# | collective | what it does | time on p ranks |
# |---|---|---|
# | reduce-scatter | sum everyone's buffers, each rank keeps 1/p | (p−1)α + (p−1)/p · n/B |
# | all-gather | everyone gets everyone's piece | (p−1)α + (p−1)/p · n/B |
# | all-reduce | sum, and everyone gets the sum (= RS then AG) | 2(p−1)α + 2(p−1)/p · n/B |
# | all-to-all | each rank sends a different piece to each other rank | (p−1)α + (p−1)/p · n/B |
#
# On a cluster, reduce-scatter, all-gather and all-reduce run **hierarchically**: first
# inside each node over NVLink, then across nodes over IB with 1/8 of the data per GPU.
# All-to-all cannot be shrunk that way: every byte a GPU sends to another node is a
# different piece for a different GPU, so that whole share crosses IB, while the in-node
# share goes over NVLink at the same time (`comms.collective_time`).

# %%
print(f"NVLink {DEEPSEEK_NVLINK_GB_S:.0f} GB/s vs IB {DEEPSEEK_IB_GB_S:.0f} GB/s: "
      f"{DEEPSEEK_NVLINK_GB_S / DEEPSEEK_IB_GB_S:.1f}x")
times = [comms.collective_time(k, 1e9, gpus_per_node=8, nodes=16) for k in comms.KINDS]
for kind, t in zip(comms.KINDS, times):
    print(f"{kind:15s} 1 GB on 16 nodes x 8 GPUs: {fmt_seconds(t.total_s)}")
ar, rs, ag = (comms.ring_time(k, 1e9, 8, 0, 160) for k in comms.KINDS[:3])
checks.check_close("all-reduce = reduce-scatter + all-gather", ar, rs + ag)
by_kind = dict(zip(comms.KINDS, times))
checks.check_close("reduce-scatter crosses IB with 1/8 of the buffer",
                   by_kind["reduce_scatter"].inter_s,
                   comms.ring_time("reduce_scatter", 1e9 / 8, 16, comms.ALPHA_IB_S, 50))
checks.check_close("all-to-all crosses IB with the whole buffer",
                   by_kind["all_to_all"].inter_s,
                   comms.ring_time("all_to_all", 1e9, 16, comms.ALPHA_IB_S, 50))

# %%
fig = plots.collective_bars(comms.KINDS, [t.intra_s for t in times],
                            [t.inter_s for t in times],
                            title="1 GB per GPU on 16 nodes x 8 GPUs")
fig.show()

# %% [markdown]
# ## 2. Measured: real collectives on your machine
#
# Start a few CPU processes that talk through `torch.distributed` (the gloo backend, over
# the loopback network), time each collective over a range of message sizes, and fit α
# and B by least squares.

# %%
g = preset("gloo")
measured = comms.measure_gloo(world_size=g["world_size"], sizes=g["sizes"],
                              repeats=g["repeats"])
fits, fitted = {}, {}
for kind, secs in measured.items():
    fits[kind] = comms.fit_alpha_beta(kind, g["world_size"], g["sizes"], secs)
    fitted[kind] = [comms.ring_time(kind, n, g["world_size"], *fits[kind]) for n in g["sizes"]]
    print(f"{kind:15s} alpha = {fits[kind][0] * 1e6:7.1f} us, B = {fits[kind][1]:.2f} GB/s")
assert all(secs[-1] > secs[0] for secs in measured.values())  # big messages take longer

# %%
fig = plots.gloo_fit(g["sizes"], measured, fitted)
fig.show()

# %% [markdown]
# Processes on one CPU share memory bandwidth, so B here is a few GB/s at best and α is
# tens to hundreds of microseconds (noisy when the machine is busy). The shape is the
# lesson: **small messages pay latency, big ones pay bandwidth**. GPU collectives have
# the same shape with far better constants.
#
# ## 3. Experts on other GPUs: dispatch and combine
#
# DeepSeek-V3 spreads each MoE layer's 256 experts over 64 GPUs on 8 nodes (32 experts
# per node). Every token is **dispatched** to its 8 experts and their outputs are
# **combined** back, in every MoE layer, forward and backward. Dispatch is sent in FP8
# (1 byte per number plus one FP32 scale per 128 numbers); combine stays in BF16 (report
# §3.3.4). This is the course's one byte model of expert parallelism
# (`course.expert_traffic`): notebook 04's per-step traffic uses it too.

# %%
cfg = load_config("deepseek-v3")
d = cfg.hidden_size
print(f"dispatch one copy: {comms.dispatch_bytes_per_copy(d):,} bytes; "
      f"combine one copy: {comms.combine_bytes_per_copy(d):,} bytes")
checks.check_close("dispatch bytes per copy", comms.dispatch_bytes_per_copy(d), 7168 + 224)

# %% [markdown]
# How many copies cross InfiniBand? A token's experts live on some set of nodes. DeepSeek
# sends **one copy per remote node** over IB and forwards it to the right GPUs over
# NVLink, and caps the nodes per token at **M = 4** (node-limited routing: each node is
# scored by its best 2 experts, the best 4 nodes are kept). Route random tokens and count:

# %%
free = comms.simulate_routing(max_nodes=None)
limited = comms.simulate_routing(max_nodes=4)
print(f"no limit: {free.nodes_per_token:.2f} nodes/token, at most 4: "
      f"{limited.nodes_per_token:.2f}")
checks.check_close("random routing vs the hypergeometric closed form", free.nodes_per_token,
                   comms.expected_nodes_uniform(256, 8, 8), rtol=0.02)
per_expert = comms.ep_traffic(free.remote_experts, d)
per_node = comms.ep_traffic(limited.remote_nodes, d)
print(f"IB bytes per token per MoE layer (forward): one copy per expert "
      f"{fmt_bytes(per_expert.total_bytes)} -> one per node, M=4: "
      f"{fmt_bytes(per_node.total_bytes)}")
assert per_node.total_bytes < 0.55 * per_expert.total_bytes

# %%
fig = plots.nodes_histogram({"no limit": free.histogram, "at most 4 nodes": limited.histogram},
                            title="Nodes reached per token (random affinities, 256 experts)")
fig.show()

# %% [markdown]
# Notebook 04's per-step traffic bar is this model at training scale: the expected
# remote nodes of V3's group-limited routing (`ep_copies`), FP8 out and BF16 back,
# forward and backward (`TRAINING_PASSES` = 2), for every token of every micro-batch in
# the stage's MoE layers:

# %%
from course import parallel

ds, mb, seq = parallel.DEEPSEEK_V3_LAYOUT, parallel.v3_microbatches(), parallel.V3_BATCH["seq_len"]
link, copies = comms.ep_copies(cfg.n_routed_experts, cfg.experts_per_token, ds.ep,
                               n_group=cfg.n_group, topk_group=cfg.topk_group)
step = parallel.comm_per_step("deepseek-v3", ds, "deepseek-fp8", seq, microbatches=mb)
per_step = (comms.TRAINING_PASSES * comms.ep_traffic(copies, d).total_bytes
            * seq * mb * cfg.n_moe_layers / ds.pp)
print(f"{copies:.2f} copies per token over {link}: {fmt_bytes(per_step)} per GPU per step")
checks.check_close("notebook 04's EP bar", step[f"EP all-to-all ({link})"], per_step)
checks.check_close("same remote nodes as the simulation above", copies,
                   limited.remote_nodes, rtol=0.03)

# %% [markdown]
# Why 4 nodes and 8 experts? While one copy crosses IB at 50 GB/s, NVLink can forward it
# to 160/50 = **3.2 GPUs** inside the node. So a token can use about 3.2 experts per node
# for the price of one IB transfer, and up to 4 × 3.2 ≈ 13 experts at the same IB cost.

# %%
per_node_free = DEEPSEEK_NVLINK_GB_S / DEEPSEEK_IB_GB_S
checks.check_close("experts per node at no extra cost", per_node_free, 3.2)
print(f"4 nodes x {per_node_free} = {4 * per_node_free:.1f} experts")

# %% [markdown]
# **Compute against communication.** Each token's 9 experts (8 routed, 1 shared) cost
# ~0.8 GFLOPs per MoE layer. How long that takes depends on the matmul rate assumed. At
# the **~386 TFLOP/s per GPU achieved on average** (the bill's FLOPs over its GPU-hours,
# notebook 05; 39% of the H800's dense BF16 peak), it takes about as long as moving the
# token's bytes over IB: a ratio near **1:1**, the figure DeepSeek gives (report §3.2.1). Communication that long cannot just be waited for; DualPipe (notebook 07)
# hides it behind the computation of another micro-batch.

# %%
moe_flops = comms.expert_flops_per_token(d, cfg.moe_intermediate_size,
                                         cfg.experts_per_token + cfg.n_shared_experts)
v3 = compute.DEEPSEEK_V3
achieved = compute.achieved_tflops(compute.training_flops("deepseek-v3", v3["tokens"]),
                                   v3["pretrain_gpu_hours"])
ratio = comms.compute_to_comm_ratio(moe_flops, achieved, per_node.total_bytes)
print(f"at {achieved:.0f} TFLOP/s: expert compute {moe_flops / achieved / 1e12 * 1e6:.2f} us "
      f"vs IB {per_node.total_bytes / 50e9 * 1e6:.2f} us per token: ratio {ratio:.2f}")
assert 0.5 < ratio < 2
for name, rate in (("dense BF16 peak", 989.4), ("dense FP8 peak", 1978.9)):
    r = comms.compute_to_comm_ratio(moe_flops, rate, per_node.total_bytes)
    print(f"at the {name} ({rate} TFLOP/s): ratio {r:.2f}")

# %% [markdown]
# The faster the matmuls, the more the all-to-all dominates: at the FP8 peak the
# experts would finish in a fraction of the transfer time. That is why overlapping
# it matters more, not less, as compute gets faster.

# %% [markdown]
# ## 4. Synchronising replicas
#
# > **Check the claim: "the clusters do an all dispatch, then a reduce, across 32
# > clusters".** Replicas exchange gradients with real collectives: an **all-reduce** in
# > plain data parallelism, or a **reduce-scatter then all-gather** with ZeRO-1 (each GPU
# > updates only its slice of the optimizer state). In DeepSeek-V3's PP16 × EP64 layout
# > the counts follow from 2,048 GPUs:

# %%
p = param_count("deepseek-v3")
fp8_recipe = recipe("deepseek-fp8")  # the bytes notebook 04 counts: FP32 grads, FP8 weights
sync = comms.layout_sync(p.total, p.by_part["routed_experts"], 2048, pp=16, ep=64,
                         grad_bytes=fp8_recipe.grads, param_bytes=fp8_recipe.weights)
print(f"{2048 // 64} EP groups of 64 GPUs; each non-expert weight has {sync.dense_dp} "
      f"replicas, each expert {sync.expert_dp}")
batch_tokens = 15360 * 4096  # final batch size (report 4.2) x 4K sequence
step_s = batch_tokens * compute.training_flops_per_token(cfg).total / (2048 * achieved * 1e12)
print(f"ZeRO-1 sync {fmt_seconds(sync.seconds)} per step vs a {fmt_seconds(step_s)} step: "
      f"{sync.seconds / step_s:.1%} of it, with a batch of {batch_tokens / 1e6:.0f} M tokens")
assert (sync.dense_dp, sync.expert_dp) == (128, 2) and sync.seconds < 0.02 * step_s

# %% [markdown]
# So "32" is the number of 64-GPU expert-parallel groups, and the per-step gradient sync
# is the small share of a step printed above: with a batch that large, syncing once per
# step is cheap. The expensive talk is the all-to-all inside every MoE layer (section 3).
#
# ## 5. Talking less: local steps, then sync (DiLoCo)
#
# Across data centres, even one sync per step is too much. **DiLoCo** lets each replica
# take H steps alone, then averages how far the replicas moved and applies that with an
# outer momentum step. Four replicas learn a small regression task; we plot held-out loss
# against the bytes each replica sent.

# %%
kw = preset("diloco")
runs = diloco.compare(hs=(8, 16, 60), **kw)
for run in runs:
    print(f"{run.label:15s} loss {run.loss[-1]:.5f}  sent {fmt_bytes(run.bytes_sent[-1])}")
dp, h16 = runs[0], runs[2]
checks.check_close("bytes saved with H=16", dp.bytes_sent[-1] / h16.bytes_sent[-1], 16.0)
assert h16.loss[-1] < 2 * dp.loss[-1]

# %%
fig = plots.diloco_runs(runs)
fig.show()

# %% [markdown]
# With H = 16 the replicas reach the same loss as synchronous training while sending
# 16× fewer bytes. Very large H starts to cost accuracy; very small H does not suit the
# paper's outer momentum (its outer learning rate and momentum are tuned for many local
# steps): with H = 2 the same run does not converge.

# %%
h2 = diloco.train_diloco(2, **kw)
print(f"H = 2: loss {h2.loss[-1]:.4f} vs H = 16: {h16.loss[-1]:.5f}")
assert h2.loss[-1] > 10 * h16.loss[-1]

# %% [markdown]
# ## 6. Try it yourself
#
# * With 1 node, which link limits the collectives? With 16 nodes?
# * Set IB to 25 GB/s. Which collective suffers most?
# * In the routing widget: what do 1 and 8 nodes per token cost in IB bytes? What does a
#   router whose experts specialise by node ("locality") do?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.comms import collectives_widget, routing_widget

live = collectives_widget()
live

# %%
# NBVAL_IGNORE_OUTPUT
route_live = routing_widget()
route_live

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("06.ring_all_reduce"))` reveals a solution.
#
# **1.** Write `ring_all_reduce(n_bytes, p, alpha_s, gb_s)`: seconds for a ring all-reduce.

# %%
def ring_all_reduce(n_bytes, p, alpha_s, gb_s):
    raise NotImplementedError  # your code here


ring_all_reduce = checks.check_exercise("06.ring_all_reduce", ring_all_reduce)

# %% [markdown]
# **2.** Write `ib_bytes(remote_nodes, hidden)`: IB bytes per token per MoE layer when one
# FP8 dispatch copy (1 byte + a 4-byte scale per 128) and one BF16 combine copy cross IB
# for each remote node.

# %%
def ib_bytes(remote_nodes, hidden):
    raise NotImplementedError  # your code here


ib_bytes = checks.check_exercise("06.ib_bytes", ib_bytes)

# %% [markdown]
# **3.** A DiLoCo run with H = 60 and 240 steps: how many times do the replicas talk?

# %%
answer = ...
passed = checks.check_answer("06.syncs_h60", answer)

# %% [markdown]
# ## Summary
#
# * A collective costs latency plus bytes / bandwidth; all-reduce = reduce-scatter +
#   all-gather; inter-node IB (50 GB/s) is the bottleneck, 3.2× slower than NVLink.
# * MoE dispatch/combine costs ~75 KB of IB per token per MoE layer forward (twice that
#   with the backward) for DeepSeek-V3 with node-limited routing, about as long as the
#   experts' compute: hence DualPipe. Notebook 04's traffic uses the same byte model.
# * Gradient sync is once per step and cheap at DeepSeek's batch size; DiLoCo-style local
#   steps cut it further, 16× here at no loss.
#
# **Next:** [07 · DualPipe and pipeline bubbles](07_dualpipe.ipynb).
