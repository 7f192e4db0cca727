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
# # 05 · How long does training take?
#
# > **You will** count the FLOPs of a training run from a model's config, turn them into
# > days and dollars, rebuild DeepSeek-V3's published bill, build the roofline (is an
# > operation compute- or memory-bound?), separate MFU from HFU, and measure your own
# > machine's roofline and MFU.
# > **Before this:** [03 · How many GB do I need?](03_memory.ipynb) (active parameters).
# > **Time:** about 35 minutes.

# %%
from course import checks, compute, device
from course.configs import gpu
from course.memory import param_count
from course.plots import compute as plots
from course.presets import preset
from course.units import fmt_count, fmt_seconds

print(device.describe())

# %% [markdown]
# ## 1. Counting FLOPs: 6 · N · D, plus attention
#
# A matmul with a weight matrix costs **2 FLOPs per weight per token** (one multiply,
# one add). Training runs the forward pass once and the backward pass, which costs about
# twice as much (gradients for the inputs *and* for the weights). So each token costs
# about **6 · N** FLOPs, where N counts the weights that token actually multiplies by.
# For a mixture of experts that is the **active** parameters: the token only visits its
# 8 routed experts and the shared one.
#
# Attention adds one more term the 6 · N rule misses: comparing each query with the keys
# before it. We count both, and leave out the input embedding (a table lookup, not a
# matmul) and the small MTP module.

# %%
v3 = compute.DEEPSEEK_V3
per_token = compute.training_flops_per_token("deepseek-v3", seq_len=v3["seq_len"])
print(f"matmul weights per token: {fmt_count(per_token.matmul_params, 'params')}")
print(f"6·N part:  {per_token.matmul / 1e9:6.1f} GFLOPs per token")
print(f"attention: {per_token.attention / 1e9:6.1f} GFLOPs per token")
checks.check_close("training GFLOPs per token, vs ISCA '25's ~250",
                   per_token.total / 1e9, 250.0, rtol=0.02)

# %% [markdown]
# DeepSeek's "37 B active" counts the input embedding too (report abstract, "37B
# activated"; summed from `inference/model.py`'s shapes it is 37.55 B with the
# embedding); the matmuls only see 36.6 B of them. The difference is 2.5% of the bill:

# %%
active = param_count("deepseek-v3").active
checks.check_close("active params (with embedding), billions", active / 1e9, 37.55, rtol=1e-3)
assert per_token.matmul_params < active

# %% [markdown]
# ## 2. From FLOPs to days
#
# A GPU has a **peak** throughput (H800: 989.4 dense BF16 TFLOP/s, 1,978.9 dense FP8).
# No real training job reaches it: data movement, communication and idle pipeline stages
# eat some of it. The fraction that does useful model FLOPs is the **MFU** (model FLOPs
# utilisation):
#
# $$\text{time} = \frac{\text{FLOPs}}{\text{GPUs} \times \text{peak} \times \text{MFU}}$$

# %%
total_flops = per_token.total * v3["tokens"]
guess = compute.training_estimate("deepseek-v3", v3["tokens"], seq_len=v3["seq_len"],
                                  gpu_name="H800", n_gpus=2048, precision="bf16", mfu=0.40)
print(f"{total_flops:.2e} FLOPs -> {guess.days:.0f} days, "
      f"{fmt_count(guess.gpu_hours)} GPU-hours, ${fmt_count(guess.dollars)} at 40% MFU")
checks.check_close("days = FLOPs / (2048 x 989.4 TFLOP/s x 0.40) / 86,400 s", guess.days,
                   total_flops / (2048 * gpu("H800").peak_tflops("bf16") * 1e12 * 0.40) / 86_400)

# %% [markdown]
# ## 3. DeepSeek-V3's bill, rebuilt
#
# The report gives the bill, not the MFU: **2.664 M H800 GPU-hours** for pre-training on
# 14.8 T tokens (2.788 M with context extension and post-training, $5.576 M at $2 per
# GPU-hour). Work backwards: how many FLOP/s did each GPU actually deliver?

# %%
achieved = compute.achieved_tflops(total_flops, v3["pretrain_gpu_hours"])
h800 = gpu("H800")
mfu_bf16 = achieved / h800.peak_tflops("bf16")
mfu_fp8 = achieved / h800.peak_tflops("fp8")
print(f"achieved {achieved:.0f} TFLOP/s per GPU: {mfu_bf16:.1%} of dense BF16, "
      f"{mfu_fp8:.1%} of dense FP8")
checks.check_close("achieved TFLOP/s per H800 (ISCA '25 route)", achieved, 386, rtol=0.01)

# %% [markdown]
# Most of the heavy matmuls ran in FP8, so the honest peak lies between the two: DeepSeek
# used somewhere between a fifth and two fifths of what the chips could do. The 6·N·D
# rule alone, with the report's 37 B active and no attention, gives less:

# %%
rule = compute.achieved_tflops(6 * 37e9 * v3["tokens"], v3["pretrain_gpu_hours"])
print(f"6 x 37 B x 14.8 T: {rule:.0f} TFLOP/s per GPU, {rule / h800.peak_tflops('bf16'):.0%} "
      f"of dense BF16, {rule / h800.peak_tflops('fp8'):.0%} of dense FP8")
assert rule < achieved  # the attention term and the embedding difference go the other way

# %% [markdown]
# The report's other numbers follow from the same arithmetic:

# %%
per_trillion_days = compute.wall_clock_days(v3["gpu_hours_per_trillion"], v3["n_gpus"])
run_days = compute.wall_clock_days(v3["pretrain_gpu_hours"], v3["n_gpus"])
checks.check_close("days per trillion tokens on 2048 GPUs", per_trillion_days, 3.7, rtol=0.02)
checks.check_close("GPU-hours per trillion x 14.8 T", v3["gpu_hours_per_trillion"] * 14.8,
                   v3["pretrain_gpu_hours"])
checks.check_close("pre-training days (< two months)", run_days, 54.2, rtol=0.01)
checks.check_close("the whole bill in $", v3["total_gpu_hours"] * v3["price_per_hour"],
                   v3["dollars"])

# %% [markdown]
# **Llama 3.1 405B for contrast.** A dense model: every token visits all 405 B weights.

# %%
llama = compute.LLAMA_31_405B
llama_flops = compute.training_flops("llama-3.1-405b", llama["tokens"],
                                     include_attention=False)
checks.check_close("Llama 3.1 405B FLOPs (6·N·D)", llama_flops, llama["flops"], rtol=0.01)
llama_tflops = compute.achieved_tflops(llama["flops"], llama["total_gpu_hours"])
h100_bf16 = gpu(llama["gpu"]).peak_tflops("bf16")
ratio_hours = llama["total_gpu_hours"] / v3["total_gpu_hours"]
ratio_flops = llama["flops"] / total_flops
print(f"Llama: {llama_tflops:.0f} TFLOP/s per H100 ({llama_tflops / h100_bf16:.0%} of BF16)")
print(f"GPU-hours ratio {ratio_hours:.1f}x, FLOPs ratio {ratio_flops:.1f}x")
assert ratio_flops > 0.8 * ratio_hours  # most of the gap is FLOPs, not utilisation

# %% [markdown]
# So DeepSeek-V3 was ~11× cheaper mainly because each token did ~10× fewer FLOPs
# (37 B active instead of 405 B), not because its GPUs ran faster. Llama's GPU-hours
# are the card's total and its MFU here ignores attention, so its bar is a lower bound.

# %%
fig = plots.mfu_bars(["DeepSeek-V3 vs BF16", "DeepSeek-V3 vs FP8", "Llama 405B vs BF16"],
                     [achieved, achieved, llama_tflops],
                     [h800.peak_tflops("bf16"), h800.peak_tflops("fp8"), h100_bf16])
fig.show()

# %% [markdown]
# > **Check the claim: "the H800 does 1,516 TFLOPs, 24% less than the H100's 1,979."**
# > 1,979 is the H100's BF16 figure **with 2:4 sparsity**, which LLM training does not
# > use; dense is 989.4. The H800 is the same chip with NVLink cut to 400 GB/s: its dense
# > tensor compute equals the H100 SXM's (third-party sources; NVIDIA
# > publishes no H800 datasheet).

# %%
h100 = gpu("H100 SXM")
print(f"H100 BF16: {h100.bf16_dense_tflops} dense, {h100.bf16_sparse_tflops:.1f} sparse")
print(f"H800 BF16: {h800.bf16_dense_tflops} dense; NVLink {h800.nvlink_gb_s:.0f} vs "
      f"{h100.nvlink_gb_s:.0f} GB/s")
assert h800.bf16_dense_tflops == h100.bf16_dense_tflops
checks.check_close("the claimed gap", 1 - 1516 / 1979, 0.234, rtol=0.01)

# %% [markdown]
# > **Check the claim: "FP8 doubles the peak to 3,032 TFLOPs."** FP8 does double the
# > tensor-core rate, but from the dense 989.4: dense FP8 is 1,978.9 TFLOP/s (3,957.8 with
# > sparsity). 3,032 is the essay's 1,516 doubled.

# %%
checks.check_close("dense FP8 / dense BF16", h800.fp8_dense_tflops / h800.bf16_dense_tflops,
                   2.0, rtol=1e-3)
print(f"H800 FP8: {h800.fp8_dense_tflops} dense, {h800.fp8_sparse_tflops:.1f} sparse; "
      f"the essay's 2 x 1516 = {2 * 1516}")

# %% [markdown]
# > **Check the claim: "MoE reduces prediction effort by 95%."** Compare DeepSeek-V3 with
# > the same 671 B weights all active. The matmul FLOPs shrink with the active share, but
# > attention does not, and all 671 B weights must still sit in memory.

# %%
pc = param_count("deepseek-v3")
as_dense = 6 * (pc.total - pc.by_part["embedding"]) + per_token.attention
saving = 1 - per_token.total / as_dense
print(f"{per_token.total / 1e9:.0f} vs {as_dense / 1e9:.0f} GFLOPs per token: "
      f"{saving:.1%} fewer FLOPs, 0% fewer weights in memory")
assert 0.92 < saving < 0.95

# %% [markdown]
# > **Check the claim: "on 64 GPUs it would take 33 years."** The essay does not say how
# > it got there. Start from DeepSeek's own numbers: the same FLOPs, at the MFU the bill
# > implies (section 3), on 64 H800s instead of 2,048.

# %%
on_64 = compute.training_estimate("deepseek-v3", v3["tokens"], seq_len=v3["seq_len"],
                                  gpu_name="H800", n_gpus=64, precision="bf16", mfu=mfu_bf16)
print(f"64 H800s at {mfu_bf16:.1%} MFU: {on_64.years:.2f} years")
checks.check_close("... = the same GPU-hours spread over 64 GPUs, in years", on_64.years,
                   compute.wall_clock_days(v3["pretrain_gpu_hours"], 64) / 365.25, rtol=1e-9)

# %% [markdown]
# Under five years. Which assumptions give 33? Time = FLOPs / (GPUs × peak × MFU), so fix
# 64 GPUs and 33 years and ask what MFU each FLOP count would need against each peak:
# the H800's dense BF16 and FP8 peaks, and the essay's own 3,032 TFLOP/s (checked above).

# %%
target = 33 * compute.SECONDS_PER_YEAR
flop_counts = {"6 x 37 B active x D": 6 * 37e9 * v3["tokens"],
               "6·N + attention (section 1)": total_flops,
               "6 x 671 B (every weight) x D": 6 * pc.total * v3["tokens"]}
print(f"{'MFU needed for 33 years on 64 GPUs':36s} {'BF16':>6s} {'FP8':>6s} {'3,032':>6s}")
for label, flops in flop_counts.items():
    needed = [compute.mfu_needed(flops, 64, target, "H800", p) for p in ("bf16", "fp8")]
    needed.append(compute.throughput_for(flops, 64, target) / 3032)
    print(f"{label:36s}" + "".join(f"{m:6.0%} " for m in needed))

# %% [markdown]
# Counting only the weights a token uses, 33 years would mean an MFU of a few percent,
# far below any real run. Counting **every one of the 671 B weights** in every token needs
# MFUs that real runs report. Here is one reconstruction, with every assumption stated;
# it is one of several (the table shows others), not *the* essay's calculation:
#
# * FLOPs: 6 × 671 B × 14.8 T (every weight, no attention term);
# * GPU: 64 H800s at their dense FP8 peak, 1,978.9 TFLOP/s (the H100 SXM's, see above);
# * MFU: 45% of that FP8 peak: more than twice the ~20% V3 reached against it (section 3),
#   near what it reached against BF16.

# %%
every_weight = flop_counts["6 x 671 B (every weight) x D"]
years = compute.training_seconds(every_weight, 64, h800.peak_tflops("fp8"), 0.45)
print(f"{every_weight:.2e} FLOPs on 64 H800s, FP8 peak, 45% MFU: "
      f"{years / compute.SECONDS_PER_YEAR:.1f} years")
checks.check_close("this reconstruction, years", years / compute.SECONDS_PER_YEAR, 33, rtol=0.02)
print(f"share of the weights one token uses: {pc.active / pc.total:.1%}")

# %% [markdown]
# Every reconstruction that reaches 33 years at a plausible MFU counts all 671 B weights
# per token, and so forgets that a token uses only the share printed above. (64 GPUs also
# could not hold the training state: see notebook 03.)
#
# > **Check the claim: "DeepSeek trained V3 for $5.6 M."** $5.576 M is 2.788 M GPU-hours
# > times an assumed rental price of $2. The report itself says it excludes the research
# > and ablation runs before it; it also leaves out buying the 2,048 GPUs, data and staff.

# %%
print(f"pre-training ${v3['pretrain_gpu_hours'] * 2 / 1e6:.3f} M + context extension "
      f"${v3['context_gpu_hours'] * 2 / 1e6:.3f} M + post-training "
      f"${v3['post_gpu_hours'] * 2 / 1e6:.3f} M")
checks.check_close("sum of stages, M GPU-hours", (v3["pretrain_gpu_hours"]
                   + v3["context_gpu_hours"] + v3["post_gpu_hours"]) / 1e6, 2.788)

# %% [markdown]
# ## 4. The roofline: compute-bound or memory-bound?
#
# A GPU's peak counts only arithmetic. Every operation also has to **move data** between
# memory (HBM) and the chip, and the chip cannot compute on numbers it has not received.
# Two numbers describe an operation:
#
# * its **arithmetic intensity**: FLOPs per byte moved (FLOP/B);
# * and so, on a machine with peak P and memory bandwidth B, its best speed
#   $\min(P,\ \text{intensity} \times B)$: the **roofline** (Williams et al., CACM 2009).
#
# The two roofs meet at the **ridge point** P / B. Below it the chip waits for memory
# (memory-bound); above it, arithmetic is the limit (compute-bound). The peaks and
# bandwidths below are the datasheets' (H100 whitepaper Table 1; H200 and A100 datasheets).

# %%
from course import roofline
from course.plots import roofline as rplots

for name in ("H800", "H200", "A100"):
    spec = gpu(name)
    print(f"{name:5s} {spec.bf16_dense_tflops:6.1f} TFLOP/s / {spec.hbm_tb_s:5.3f} TB/s "
          f"= ridge {roofline.ridge(name):4.0f} FLOP/B")
checks.check_close("H800 ridge (989.4 TFLOP/s over 3.35 TB/s)", roofline.ridge("H800"), 295.3,
                   rtol=1e-3)

# %% [markdown]
# A matmul (m, k) @ (k, n) does 2·m·k·n FLOPs and, done well, reads each input once and
# writes the output once: (m·k + k·n + m·n) numbers. Multiply a batch of **tokens** by
# DeepSeek-V3's dense-FFN weight (7168 × 18432, BF16): the weight is read once however
# many tokens share it, so intensity grows with the tokens per matmul.

# %%
for tokens in (1, 16, 256, 4096):
    op = roofline.matmul(tokens, 7168, 18432, dtype_bytes=2)
    print(f"{tokens:>5} tokens: {op.intensity:7.1f} FLOP/B -> at most "
          f"{roofline.attainable_tflops(op, 'H800'):5.0f} TFLOP/s on an H800, "
          f"{roofline.bound(op, 'H800')}-bound")
assert roofline.bound(roofline.matmul(1, 7168, 18432), "H800") == "memory"
assert roofline.bound(roofline.matmul(4096, 7168, 18432), "H800") == "compute"

# %% [markdown]
# **Your machine's roofline, measured.** `roofline.measure_machine()` times a few square
# matmuls (the best is this machine's peak) and a large copy (its bandwidth), then times
# matmuls of growing token count against one large weight: the crosses. They sit under
# the line, the matrix–vector one close to the sloped roof: a model you can check.

# %%
mine = roofline.measure_machine()
print(f"{mine.name}: peak {mine.tflops * 1e3:.1f} GFLOP/s, {mine.tb_s * 1e3:.1f} GB/s, "
      f"ridge {mine.ridge:.1f} FLOP/B")
crosses = [(op.intensity, roofline.measured_tflops((op, s)), op.name) for op, s in mine.points]
for x, y, label in crosses:
    print(f"  {label:24s} {x:6.1f} FLOP/B: measured {y * 1e3:6.2f} GFLOP/s")
rplots.roofline([mine], measured=crosses, title="Your machine: measured matmuls "
                "against its roofline").show()

# %% [markdown]
# **Try it.** The widget places four of DeepSeek-V3's operations on a roofline: an FFN
# matmul (drag *tokens per matmul*), one routed expert (*tokens per expert*), attention
# over a prefill and one decode step's MLA attention (*sequence length*). The letter marks
# each point; the legend and the table say which roof limits it.
#
# * Drag *tokens per matmul* to 1 (one decode token): how far below the peak?
# * One 4K sequence sends each of the 256 experts 4096 × 8 / 256 = 128 tokens. Expert
#   parallelism over 64 GPUs gathers 64 times more. Set 128, then 8192.
# * Switch to the H200: the same chip with faster memory. What moves, and why?
# * Pick *this machine (measured)*: the crosses are your measurements.

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.roofline import roofline_explorer

explorer = roofline_explorer(mine)
explorer

# %% [markdown]
# ## 5. MFU against the roofline, and MFU vs HFU
#
# The roofline's flat roof is the dense peak, so **MFU is the share of that roof a run
# reaches on average**, counting only the model's own FLOPs. ISCA '25 (Zhao et al.,
# Table 4) measured DeepSeek-V3's MFU on 2,048 H800s at 38.94% (causal attention): our
# bill-based figure agrees.
#
# The GPU also executes FLOPs the model does not need: **recomputation**. Notebook 03
# traded memory for compute by recomputing activations in the backward pass. Counting
# them gives the **hardware FLOPs utilisation** (HFU), always ≥ MFU. DeepSeek-V3
# recomputes only RMSNorm, SwiGLU's output and MLA's up-projections (report §3.2.3).

# %%
mfu_v3 = compute.mfu_against_roofline(achieved, "H800")
checks.check_close("MFU vs the flat roof, and ISCA '25's measured 38.94%", mfu_v3,
                   compute.ISCA25_MFU["causal"], rtol=0.02)
for option in ("none", "selective", "full"):
    extra = compute.recompute_flops_per_token("deepseek-v3", 4096, option)
    print(f"recompute {option:9s}: +{extra / 1e9:5.1f} GFLOPs per token -> "
          f"HFU {compute.hfu(mfu_v3, 'deepseek-v3', 4096, option):.1%}")

# %% [markdown]
# DeepSeek's selective recomputation costs about one point of HFU. Full recomputation
# would have shown a much higher HFU at the **same** speed: HFU flatters a run that
# redoes work, which is why MFU is the figure to compare runs by.
#
# **Where does the other 61% go?** Start with what even perfect kernels lose. One MoE
# layer's forward on one GPU of DeepSeek-V3's layout (4,096 tokens; EP64 gathers 8,192
# tokens for each of its 4 experts), every operation at its roofline time:

# %%
layer = roofline.moe_layer_ops("deepseek-v3", tokens=4096, seq_len=4096, ep=64)
shares = roofline.time_shares(layer, "H800")
ceiling = roofline.roofline_mfu(layer, "H800")
no_ep = roofline.roofline_mfu(roofline.moe_layer_ops("deepseek-v3", ep=1), "H800")
print(f"best MFU with perfect kernels: {ceiling:.1%} with EP64, {no_ep:.1%} without EP")
rplots.layer_shares(shares).show()
memory_bound = [s for s in shares if s["bound"] == "memory"]
print(f"memory-bound ops: {sum(s['flops_share'] for s in memory_bound):.2%} of the FLOPs, "
      f"{sum(s['time_share'] for s in memory_bound):.1%} of the time")

# %% [markdown]
# Every big matmul of the layer is compute-bound at these sizes: the norms, residual adds
# and SwiGLU gates do almost no FLOPs but still take a few percent of the time. Without
# expert parallelism each expert would see only 128 tokens and the ceiling would drop to
# the figure above: gathering tokens for experts is what keeps them on the flat roof.
#
# Now the step as a whole: model FLOPs at the peak (the MFU), recomputation, the roofline
# loss, and the DualPipe bubble at 16 stages with V3's micro-batches per pipeline
# (notebook 04: 15,360 sequences / 128 pipelines = 120, one sequence each, and
# notebook 07's chunk times):

# %%
from course import parallel, pipeline

m_v3 = parallel.v3_microbatches()
bubble = pipeline.simulate("dualpipe", 16, m_v3, f=1.0, b=2.0, w=1.0, fb=2.5).bubble_fraction
budget = compute.time_budget(mfu_v3, "deepseek-v3", recompute="selective",
                             bubble_share=bubble, roofline_ceiling=ceiling)
for part, share in budget.items():
    print(f"{part:30s} {share:6.1%}")
rplots.time_budget(budget, f"DeepSeek-V3 at {mfu_v3:.0%} MFU: where the step goes").show()
assert budget["everything else"] > 0.5

# %% [markdown]
# What the roofline, recomputation and the bubble explain is small. **Over half of the
# step is "everything else"**: communication not fully hidden behind compute (notebook
# 06), real kernels below their roofline (attention, FP8 quantisation and scaling),
# uneven expert load and stragglers. The report gives no finer breakdown; the point is
# that the matmuls themselves are not what holds V3 near 40%. (These shares count against
# the BF16 roof; V3's FP8 matmuls have a roof twice as high, so the real losses are larger.)
#
# %% [markdown]
# ## 6. MFU on your own machine
#
# The roofline's flat roof is this machine's peak: the best of the square matmuls
# `measure_machine` timed above (the best case: pure multiply-adds). Time a real training
# step of a small MLP, count its FLOPs by hand, and divide. On a GPU at realistic size we
# also compare the peak with the datasheet's.

# %%
import torch

sizes = preset("matmul")
dev = device.device()
dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
peak = mine.tflops  # the roofline's peak, measured in section 4
step = compute.measure_mlp_step(sizes["d_model"], sizes["d_ff"], sizes["n_layers"],
                                sizes["tokens"], peak, dtype=dtype, device=dev)
print(f"roofline peak {peak * 1e3:.1f} GFLOP/s; training step "
      f"{fmt_seconds(step.seconds)}, {step.tflops * 1e3:.1f} GFLOP/s -> MFU {step.mfu:.0%}")
sheet = compute.datasheet_gpu(device.gpu_name())
if sheet:
    print(f"vs {sheet} datasheet BF16: {peak / gpu(sheet).bf16_dense_tflops:.0%}")
assert 0 < step.mfu and step.flops == compute.mlp_step_flops(
    sizes["d_model"], sizes["d_ff"], sizes["n_layers"], sizes["tokens"])

# %%
fig = plots.mfu_bars(["your matmul", "your training step"], [peak, step.tflops],
                     [peak, peak], title="Your machine: TFLOP/s vs its own matmul peak")
fig.show()

# %% [markdown]
# The step loses to the bare matmul because of the GELU, the residual adds, the optimizer
# and smaller matrices: the same kinds of losses that keep a 2,048-GPU run near 40%.
#
# ## 7. Try it yourself
#
# Pick a model, a sequence length, a token budget and a cluster. The line shows days
# against GPU count at your settings; the dots are the two published runs. The FLOPs are
# section 1's count (`compute.training_flops_per_token`: 6·N plus attention), so at V3's
# settings and the MFU of section 3 the widget gives section 3's days.
#
# * At DeepSeek-V3, 14.8 T tokens and its MFU, how many days on 2,048 H800s? On 1,024?
# * Set Llama 3.1 405B (sequence length 8,192, 15.6 T, H100 SXM, 16,384 GPUs). What MFU
#   puts the line on its dot?
# * Raise the sequence length to 131,072: how much of the bill is attention now?
# * Switch to FP8 on an A100. What does the widget say, and why?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.compute import training_bill

live = training_bill(mfu=round(mfu_bf16, 2))
checks.check_close("the widget's days at V3's settings vs section 3's", live.result["estimate"].days,
                   run_days, rtol=0.01)
live

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("05.days_on"))` reveals a solution.
#
# **1.** Write `days_on(gpu_hours, n_gpus)`: wall-clock days for a job of `gpu_hours`
# spread over `n_gpus`.

# %%
def days_on(gpu_hours, n_gpus):
    raise NotImplementedError  # your code here


days_on = checks.check_exercise("05.days_on", days_on)

# %% [markdown]
# **2.** Write `mfu(flops, gpu_hours, peak_tflops)`: the utilisation a run must have had.

# %%
def mfu(flops, gpu_hours, peak_tflops):
    raise NotImplementedError  # your code here


mfu = checks.check_exercise("05.mfu", mfu)

# %% [markdown]
# **3.** At DeepSeek-V3's MFU, how many days would its pre-training take on 16,384 H800s
# (Llama's cluster size)? Replace `...` with a number.

# %%
answer = ...
passed = checks.check_answer("05.v3_on_16384_days", answer)

# %% [markdown]
# **4.** Write `intensity(m, k, n, dtype_bytes)`: the arithmetic intensity (FLOP/B) of an
# (m, k) @ (k, n) matmul that reads each input once and writes its output once.

# %%
def intensity(m, k, n, dtype_bytes):
    raise NotImplementedError  # your code here


intensity = checks.check_exercise("05.intensity", intensity)

# %% [markdown]
# **5.** How many tokens per matmul does DeepSeek-V3's FFN weight (7168 × 18432, BF16)
# need before the matmul is compute-bound on an H800? Replace `...` with a number.

# %%
answer = ...
passed = checks.check_answer("05.tokens_to_ridge", answer)

# %% [markdown]
# ## Summary
#
# * Training costs about 6 FLOPs per active weight per token, plus attention:
#   ~250 GFLOPs per token for DeepSeek-V3, ~2,450 for Llama 3.1 405B.
# * Time = FLOPs / (GPUs × peak × MFU). DeepSeek-V3's bill implies ~386 TFLOP/s per H800:
#   39% of dense BF16, 20% of dense FP8.
# * The ~11× cost gap to Llama 3.1 405B is mostly fewer FLOPs per token (MoE), not faster GPUs.
# * The roofline: attainable FLOP/s = min(peak, intensity × bandwidth). An H800's ridge is
#   ~295 FLOP/B; a matmul needs a few hundred tokens sharing its weight to reach it, which
#   is why expert parallelism gathers tokens for each expert.
# * HFU counts recomputation too, so HFU ≥ MFU; V3's selective recomputation adds ~1
#   point. Of V3's step, the roofline, recomputation and the DualPipe bubble explain a
#   few percent; over half goes to communication, imperfect kernels and imbalance.
#
# **Next:** [06 · Communication](06_communication.ipynb): what thousands of GPUs must say
# to each other, and how long that takes.
