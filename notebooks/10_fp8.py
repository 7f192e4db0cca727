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
# # 10 · FP8: quantisation error, fine-grained scaling and accumulation
#
# > **You will** round real tensors to 8-bit floats, see why one huge
# > activation ruins a whole tensor unless each small tile gets its own scale,
# > watch a long sum lose precision in a narrow accumulator (and how DeepSeek
# > fixed it), and train the course's model with FP8 linear layers.
# > **Before this:** [02 · Backprop](02_backprop.ipynb) (the three GEMMs of a
# > linear layer) and [03 · How many GB?](03_memory.ipynb).
# > **Time:** 35 minutes.

# %% [markdown]
# ## 1. Three formats on one number line
#
# A floating-point number is sign × 2^exponent × 1.mantissa. With 8 bits
# there is a choice: **E4M3** (4 exponent bits, 3 mantissa bits) is more
# precise, **E5M2** reaches further. BF16 has 16 bits: 8 exponent, 7
# mantissa. The course derives each format from its bits and checks the
# result against torch's own `torch.finfo`.

# %%
import torch

from course import checks, compute, fp8, fp8_accum, fp8_training, seeds
from course.configs import gpu
from course.plots import fp8 as plots
from course.presets import preset

for name in ("e4m3", "e5m2", "bf16"):
    s, info = fp8.format_spec(name), torch.finfo(fp8.DTYPES[name])
    print(f"{s.name:5} max {s.max:<9.4g} min normal {s.min_normal:<9.3g} "
          f"min subnormal {s.min_subnormal:<9.3g} step at 1: {s.eps}")
    checks.check_close(f"{s.name} from its bits = torch.finfo (max, min normal, step)",
                       (s.max, s.min_normal, s.eps),
                       (info.max, info.smallest_normal, info.eps))

# %% [markdown]
# Every tick below is a number the format can store (positive side only;
# BF16 goes on far beyond both edges). E4M3 has only **253** distinct
# values, eight per power of two: between 1 and 2 it can store 1, 1.125,
# 1.25, …, 1.875, so rounding costs up to 6% of a value.

# %%
values = {f.upper(): fp8.representable_values(f) for f in ("e4m3", "e5m2", "bf16")}
plots.number_line({k: v[v > 0] for k, v in values.items()}).show()
checks.check_close("E4M3 has 253 distinct finite values",
                   len(values["E4M3"]), 253)
checks.check_close("E4M3's largest value", values["E4M3"].max().item(), 448)

# %% [markdown]
# DeepSeek-V3 uses **E4M3 for every tensor**, gradients included (report
# §3.3.2). Its range, 2⁻⁹ to 448, is narrow, so each tensor is first
# **scaled**: divide by a scale so the largest entry lands on 448, round,
# and keep the scale in FP32 to multiply back later.

# %% [markdown]
# ## 2. One outlier, three ways to scale
#
# `fp8.quantize(x, "e4m3", block)` computes scale = max|x| / 448 for the
# whole tensor (`block=None`), for each **1×128 tile** (one token, 128
# channels: DeepSeek's choice for activations) or for each **128×128 block**
# (its choice for weights). LLM activations have rare, huge outliers. Here
# one entry among 131,072 is made larger and larger.

# %%
outliers = [10.0**e for e in range(7)]
results = [fp8.compare_scalings(o) for o in outliers]
errors = {k: [r[k]["rel_error"] for r in results] for k in fp8.SCALINGS}
plots.scaling_error(outliers, errors).show()
worst = results[5]  # outlier 100,000
checks.check_close("outlier 100,000: 1×128 tiles keep the typical error under 3%",
                   worst["1×128 tiles"]["rel_error"] < 0.03, True)
checks.check_close("outlier 100,000: one scale per tensor errs by more than 10%",
                   worst["per tensor"]["rel_error"] > 0.1, True)
print({k: f"{v['underflow']:.1%} flushed to zero" for k, v in worst.items()})

# %% [markdown]
# Up to an outlier of about 1,000 nothing happens: E4M3's own rounding
# (about 2% of a typical value) dominates. Beyond that, one scale for the
# whole tensor squeezes every ordinary entry into the subnormals, and then
# to zero. A tile keeps the damage inside its own 128 numbers; a 128×128
# block spreads it over 16,384. That is the case for **fine-grained
# scaling**.

# %% [markdown]
# ## 3. An FP8 linear layer: three GEMMs
#
# A linear layer does three matrix products per training step: **Fprop**
# y = x Wᵀ, **Dgrad** dx = dy W and **Wgrad** dW = dyᵀ x. DeepSeek runs all
# three in FP8 (report Fig. 6). `fp8.FP8Linear` quantises x and dy in 1×128
# tiles and W in 128×128 blocks. It then **dequantises** both operands (FP8
# value × its scale) and runs one FP32 matmul. The hardware instead sums each
# 128-wide slice of FP8 products and applies the scales to that partial sum
# (`fp8_accum.scaled_gemm`); every scale is constant over a slice, so the two
# are the same sum in a different order. Its master weight stays FP32.

# %%
torch.manual_seed(0)
x, w = torch.randn(64, 512), torch.randn(256, 512)
qx, sx = fp8.quantize(x, "e4m3", fp8.TILE)
qw, sw = fp8.quantize(w, "e4m3", fp8.BLOCK)
dequantised = fp8.fp8_matmul(qx, sx, qw, sw, fp8.TILE, fp8.BLOCK)
per_slice = fp8_accum.scaled_gemm(qx, sx, qw, sw, fp8.TILE, fp8.BLOCK)
checks.check_close("dequantise + one matmul vs scales per 128-slice (max difference / max)",
                   float((dequantised - per_slice).abs().max() / per_slice.abs().max()),
                   0.0, atol=1e-6)

# %%
gemm_errors = fp8_accum.linear_gemm_errors(256, 512, tokens=64)
for gemm, err in gemm_errors.items():
    print(f"{gemm}: {err:.2%} relative error vs FP32")
checks.check_close("all three GEMMs within 6% of FP32",
                   all(err < 0.06 for err in gemm_errors.values()), True)

# %% [markdown]
# > **Check the claim: "with FP8 the model weighs 1 byte per parameter."**
# > Only the weights *stored for inference* do. While training, DeepSeek-V3
# > keeps FP32 master weights and gradients and BF16 AdamW moments (report
# > §3.3.3): 12 bytes per parameter, before activations (notebook 03). FP8
# > copies of the weights are made for each GEMM.

# %%
per_param = sum(fp8.TRAINING_BYTES_PER_PARAM.values())
print(fp8.TRAINING_BYTES_PER_PARAM)
checks.check_close("training states, bytes per parameter", per_param, 12)
print(f"671B params: {671e9 / 1e12:.2f} TB in FP8, "
      f"{671e9 * per_param / 1e12:.2f} TB of training states")

# %% [markdown]
# ## 4. The accumulator: why DeepSeek promotes every 128 products
#
# Inside a GEMM each output is a sum of K products. The report (§3.3.2)
# found that the H800's FP8 tensor cores keep only **about 14 bits** while
# they add, and that for **K = 4096** the maximum relative error was
# **nearly 2%**. The fix: every **N_C = 128** products, copy the partial
# sum into an FP32 register on the CUDA cores and start again.
#
# NVIDIA does not publish the adder, so `fp8_accum.limited_accumulate`
# **emulates** it. Its assumptions:
# - products of two E4M3 numbers are exact;
# - 32 products at a time are aligned to the largest exponent among them
#   *and the accumulator*, and every bit below **14 fraction bits** of that
#   exponent is **cut off** (truncation, not rounding; report §3.5.2); the
#   accumulator register is just as narrow;
# - inputs are E4M3 values of uniform [0, 1) entries: all positive, so every
#   cut makes the sum smaller and the errors add up instead of cancelling.
#
# Its tests compare it with a slow transcription in exact fractions.

# %%
plain = fp8_accum.accumulation_error(4096, mant_bits=14)
fixed = fp8_accum.accumulation_error(4096, mant_bits=14, n_c=128)
print(f"K = 4096: max error {plain['max']:.2%} without promotion, "
      f"{fixed['max']:.4%} with N_C = 128")
checks.check_close('no promotion: between 1% and 5% (the report: "nearly 2%")',
                   0.01 < plain["max"] < 0.05, True)
checks.check_close("promotion every 128 cuts the error more than 50-fold",
                   fixed["max"] < plain["max"] / 50, True)

# %% [markdown]
# The emulation gives about **3%** where the report says nearly 2%: the same
# size, not the same number. The report does not say which random matrices
# it used or exactly how the hardware aligns; in this model the error grows
# like K × 2⁻ᵇⁱᵗˢ, so one more bit halves it (15 bits: about 1.4%). With
# zero-mean N(0, 1) inputs the cuts point both ways and largely cancel
# (about 0.1%). The figure shows the growth with K.

# %%
curves = fp8_accum.accumulation_curves(16384, 14, 128, size=8)
plots.accumulation_error(curves["ks"], {
    "14 bits, no promotion": curves["none"],
    "14 bits, promoted every 128": curves["promoted"]}).show()
normal = fp8_accum.accumulation_error(4096, 14, dist="normal")["max"]
print(f"N(0, 1) inputs, K = 4096, no promotion: {normal:.3%}")
checks.check_close("signed inputs: errors cancel, at least 5x smaller",
                   normal < plain["max"] / 5, True)

# %% [markdown]
# ## 5. Training the course's model in FP8
#
# The same model, the same data, the same seed, three times: every linear
# layer in FP32, in BF16, and as an `FP8Linear` (`precision="fp8"` in
# `course.model`). The embedding, the output head and the norms stay in
# higher precision, as in DeepSeek-V3. One seed is an anecdote, so
# `fp8_training.precisions_over_seeds` repeats this for three seeds: nine
# trainings, about a minute and a half of one CPU core (emulating FP8 on a
# CPU is slow), so the course ships their result
# (`assets/runs/fp8_precisions.json`, written by this same function; the
# tests retrain one seed and compare). `cache=False` reruns them all. The
# curves are seed 0's.

# %%
runs = fp8_training.precisions_over_seeds(seeds=(0, 1, 2))
gap = {p: runs["gap"][p].values[0] for p in fp8_training.PRECISIONS}  # seed 0
plots.loss_curves(runs["loss"], gap, title="The same model trained in three precisions "
                  "(seed 0)").show()
for p in ("fp32", "fp8"):
    print(f"{p} vs BF16: loss over the last 20 steps {runs['gap'][p].text('{:+.2%}')}, "
          f"validation loss {runs['val_gap'][p].text('{:+.2%}')}")

# %% [markdown]
# The three curves lie on top of each other. The gap is the mean loss over
# the last 20 steps against BF16's, computed here from seed 0's curves:

# %%
last20 = {p: float(curve[-20:].mean()) for p, curve in runs["loss"].items()}
fp8_gap = last20["fp8"] / last20["bf16"] - 1
print("mean loss over the last 20 steps: " + ", ".join(
    f"{p} {v:.4f}" for p, v in last20.items()) + f"; FP8 ends {fp8_gap:+.2%} vs BF16")
checks.check_close("the gap computed from the curves = the shipped gap of seed 0", fp8_gap,
                   runs["gap"]["fp8"].values[0], rtol=1e-6)
checks.check_close("FP8 within 3% of BF16 on every seed",
                   max(abs(g) for g in runs["gap"]["fp8"].values) < 0.03, True)

# %% [markdown]
# How big is "noise" here? FP32 against BF16 differs only in rounding, and
# its gap moves by about as much from seed to seed as FP8's does. The
# FP8 gap's range over the seeds overlaps FP32's: three toy seeds cannot
# tell FP8 from BF16. The report measured a relative loss gap **below
# 0.25%** against BF16, on 16B- and 230B-parameter models over about a
# trillion tokens; a 150-step toy run cannot measure something that small,
# but it shows the recipe trains. (In this model every linear is FP8 and the
# width, 64, is below one tile, so each token has a single scale.)

# %%
checks.check_close("FP8's and FP32's gaps overlap over the seeds (not told apart)",
                   seeds.differs(runs["gap"]["fp8"], runs["gap"]["fp32"]), False)

# %% [markdown]
# > **Check the claim.** The essay says DeepSeek "trains natively in FP8", the
# > first to do so. The report's own claim is narrower: it validates FP8
# > mixed-precision training "on an extremely large-scale model" for the first
# > time (V3 report §1 and §3.3); FP8 training had been shown before at smaller
# > scale. And "natively" is mixed precision: the linear layers' GEMMs run in FP8,
# > while the embedding, the output head, the MoE router, the norms and the
# > attention operators stay in BF16 or FP32 (§3.3.1), and the master weights,
# > gradients and optimizer moments are FP32/BF16 (notebook 03). How much of the
# > training compute is FP8, counted on DeepSeek-V3's config:

# %%
for seq_len in (4096, 32768):
    share = compute.fp8_training_flops_share("deepseek-v3", seq_len)
    print(f"sequences of {seq_len:>6,} tokens: {share['fp8_share']:.0%} of the training "
          f"FLOPs in FP8, {1 - share['fp8_share']:.0%} in BF16 (head, router, attention)")

# %% [markdown]
# At the 4K sequences V3 pre-trained on, most of the work is FP8; attention's
# share grows with the context, so at 32K about half of it is not.

# %% [markdown]
# ## 6. The real thing: FP8 tensor cores
#
# On a GPU with FP8 tensor cores (H100, H200, H800, Ada) the next cell times
# an n × n × n GEMM with `torch._scaled_mm` in FP8 against a BF16 matmul,
# at the preset size (n = 8192). **On a CPU it cannot run**: there are no
# FP8 tensor cores to measure, and the cell says so.

# %%
if fp8_accum.fp8_gemm_supported():
    p = preset("fp8_gemm")
    bench = fp8_accum.gemm_benchmark(p["n"], p["repeats"])
    spec = gpu("H100 SXM")
    plots.gemm_bars(bench, {"bf16": spec.bf16_dense_tflops,
                            "fp8": spec.fp8_dense_tflops}).show()
    print(f"speed-up {bench['speedup']:.2f}x; error vs FP32: FP8 "
          f"{bench['fp8_error']:.2%}, BF16 {bench['bf16_error']:.2%}")
else:
    print("No CUDA GPU with FP8 tensor cores here: this measurement needs "
          "one (e.g. H100/H200). Everything above ran on the CPU.")

# %% [markdown]
# > **Check the claim.** The essay says FP8 doubles the peak to "3,032 FLOPs"
# > (its words; it means TFLOP/s). Doubling is
# > right; the number is not. The H100 and H800 do **989.4** dense BF16
# > TFLOP/s and **1,978.9** dense FP8 (3,957.8 only with 2:4 sparsity,
# > which training does not use). 3,032 is none of these.

# %%
h800 = gpu("H800")
checks.check_close("H800 dense FP8 / dense BF16",
                   h800.fp8_dense_tflops / h800.bf16_dense_tflops, 2.0, rtol=1e-3)
checks.check_close("H800 dense FP8 peak, TFLOP/s", h800.fp8_dense_tflops, 1978.9)

# %% [markdown]
# ## 7. Try it yourself
#
# **Scaling.** Slide the outlier from 1 to a million and switch between
# E4M3 and E5M2.
# - At what outlier does per-tensor scaling start to hurt in E4M3? In E5M2?
# - Why does E5M2 do worse than E4M3 when there is no outlier?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.fp8 import accumulation_widget, scaling_widget

scaling = scaling_widget()
scaling

# %% [markdown]
# **Accumulation.** Change K, the accumulator width and N_C.
# - How many bits would the accumulator need for 0.1% error at K = 4096
#   without promotion?
# - Does promoting every 32 products help much more than every 128? What
#   would it cost on a real GPU?
# - Switch the inputs to `normal`: why is the error so much smaller?

# %%
# NBVAL_IGNORE_OUTPUT
accumulation = accumulation_widget()
accumulation

# %% [markdown]
# ## 8. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("10.quantize_by_hand"))` reveals a solution.
#
# **Exercise 1.** Quantise a vector by hand: one scale for the whole
# tensor so that its largest entry becomes 448, round with
# `fp8.round_to(values, "e4m3")`, and scale back.

# %%
def my_quantize_by_hand(x):
    # x: a 1-D float tensor -> the dequantised tensor, same shape
    raise NotImplementedError


my_quantize_by_hand = checks.check_exercise("10.quantize_by_hand", my_quantize_by_hand)

# %% [markdown]
# **Exercise 2.** Predict before you compute: 256 tokens × 512 channels of
# N(0, 1) activations with one entry of 100,000. Which scaling gives the
# smallest typical error: `"per tensor"`, `"1×128 tiles"` or
# `"128×128 blocks"`?

# %%
answer = None  # one of the three names above
passed = checks.check_answer("10.best_scaling", answer)

# %% [markdown]
# **Exercise 3.** DeepSeek-V3 has 671B parameters. How many TB (10¹² bytes)
# do its FP32 master weights, FP32 gradients and two BF16 AdamW moments take?

# %%
answer = None  # a number, in TB
passed = checks.check_answer("10.training_tb", answer)

# %% [markdown]
# ## Summary
#
# - E4M3 stores 253 values between −448 and 448 with 3 mantissa bits;
#   scaling makes that range fit, and a scale per 1×128 tile (activations)
#   or 128×128 block (weights) keeps one outlier from ruining everything.
# - All three GEMMs of a linear layer can run in FP8 with a few per cent of
#   error per product, while master weights, gradients and optimizer states
#   stay in FP32/BF16: FP8 is not "1 byte per parameter" for training.
# - A narrow tensor-core accumulator loses per cents over K = 4096;
#   promoting partial sums to FP32 every 128 products removes the loss.
#
# **Next:** [11 · The KV cache and Multi-head Latent Attention](11_kv_cache_mla.ipynb).
