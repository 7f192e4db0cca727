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
# # 03 · How many GB do I need?
#
# > **You will** count a model's parameters from its config file, add up the bytes
# > that training keeps per parameter, measure what a real forward pass saves for
# > backward, and see why 671 B parameters need a hundred GPUs just to train.
# > **Before this:** [02 · Backprop and the training loop](02_backprop.ipynb)
# > (weights, gradients, optimizer states).
# > **Time:** 25 minutes.
#
# Training keeps four things in GPU memory: the **weights**, their **gradients**,
# the **optimizer states** (Adam keeps two running averages per weight) and the
# **activations** the forward pass saves so the backward pass can use them.

# %%
from course import activations, checks, memory
from course.configs import load_config
from course.plots import memory as plots
from course.units import fmt_bytes, fmt_count

cfg = load_config("deepseek-v3")
print(cfg.hidden_size, cfg.num_layers, cfg.n_routed_experts, cfg.attention_kind)

# %% [markdown]
# ## 1. Counting parameters from a config file
#
# A parameter count is not a number to look up: it follows from the shapes in
# `config.json`. Each linear layer of width `in → out` has `in × out` weights.
# DeepSeek-V3 has 61 layers: Multi-head Latent Attention in each, a dense FFN in
# the first 3, and in the other 58 a mixture of 256 routed experts, 1 shared
# expert and a router.

# %%
p = memory.param_count(cfg)
for part, n in p.by_part.items():
    print(f"{part:>15}: {n:>16,}  ({fmt_count(n)})")
checks.check_close("DeepSeek-V3 total parameters", p.total, 671_026_419_200)
plots.param_parts(p.by_part, p.active_by_part,
                  "DeepSeek-V3: all parameters vs those one token uses").show()

# %% [markdown]
# Routed experts are 97% of the model, but each token visits only **8 of 256**.
# So the parameters one token *uses* are far fewer. There are two ways to count
# them, and sources mix them up:
#
# - **with** the input embedding (a table lookup, not a matrix multiply):
#   37.55 B, the paper's "37B activated";
# - **without** it: 36.63 B.
#
# DeepSeek's own `README_WEIGHTS.md` says "36.7B (including 0.9B for Embedding and
# 0.9B for the output Head)" — that does not add up: counting both gives 37.55 B.
# Its 36.7 B is the count *without* the embedding.

# %%
checks.check_close("active per token, with the embedding", p.active,
                   37_552_297_472)
checks.check_close("active per token, without it",
                   p.active_without_embedding, 36_625_618_432)
print(f"active share: {p.active / p.total:.1%}")

# %% [markdown]
# The same counter, never told about these models, reproduces their published
# totals: Mistral's "46.7B total, 12.9B per token" for Mixtral-8x7B (which counts
# the embedding), and Meta's Llama 3 sizes.

# %%
published = {"mixtral-8x7b": (46.70e9, 12.88e9), "llama-3-8b": (8.03e9, 8.03e9),
             "llama-3-70b": (70.55e9, 70.55e9),
             "llama-3.1-405b": (405.85e9, 405.85e9)}
for name, (total, active) in published.items():
    q = memory.param_count(name)
    print(f"{name:>15}: {fmt_count(q.total):>8} total, "
          f"{fmt_count(q.active):>8} active")
    checks.check_close(f"{name} total", q.total, total, rtol=5e-4)
    checks.check_close(f"{name} active", q.active, active, rtol=5e-4)

# %% [markdown]
# **Why does Hugging Face say 685 B?** Its checkpoint also stores the multi-token
# prediction module (11.6 B, notebook 12), a second copy of the embedding and
# output head for it, and one FP32 scale per 128 × 128 block of every FP8 matrix
# (notebook 10). Counted from the shapes, that is exactly the total a dump of the
# checkpoint reports:

# %%
hf = memory.hf_checkpoint_params(cfg)
for part, n in hf.items():
    print(f"{part:>30}: {n:>16,}")
checks.check_close("HF checkpoint tensors", hf["total"], 684_531_386_000)

# %% [markdown]
# ## 2. Training memory: bytes per parameter
#
# How many bytes each parameter costs depends on the **precision recipe**:
#
# | recipe | weights | master copy | gradients | 2 Adam moments | total |
# |---|---|---|---|---|---|
# | FP32 | 4 | – | 4 | 4 + 4 | 16 |
# | BF16 mixed precision | 2 | 4 (FP32) | 2 | 4 + 4 | 16 |
# | DeepSeek-V3 (FP8 compute) | 1 (FP8) | 4 (FP32) | 4 (FP32) | 2 + 2 (BF16) | 13 |
#
# DeepSeek-V3's recipe is in its report (§3.3.3): FP8 matrix multiplies, FP32
# master weights and gradients, BF16 Adam moments.

# %%
recipes = ["fp32", "bf16-mixed", "deepseek-fp8"]
per_param = {r: sum(memory.state_bytes(1, r).values()) for r in recipes}
print(per_param)
assert per_param == {"fp32": 16, "bf16-mixed": 16, "deepseek-fp8": 13}
scenarios = {memory.recipe(r).name.split(" (")[0]:
             memory.training_memory(cfg, r, seq_len=4096, recompute="selective")
             for r in recipes}
plots.stacked_gb(scenarios, "DeepSeek-V3: one training replica").show()

# %% [markdown]
# > **Check the claim.** *"Only 5% of the weights activate per token, so the
# > gradients to compute and store fall by 95%."* False. One token uses 8 experts,
# > but a batch has millions of tokens, and over a batch **every expert** receives
# > tokens and so a gradient. Gradient memory is sized for **all** parameters.

#
# Watch it on real `.grad` tensors: one backward pass through a small DeepSeek-style MoE
# layer (64 routed experts, top-4, one shared expert), first for one token, then for a
# batch of 256, counting the experts whose gradient is not all zero.

# %%
from course.expert_grads import experts_with_gradient

for n_tokens in (1, 256):
    g = experts_with_gradient(n_tokens, n_experts=64, top_k=4)
    print(f"{n_tokens:3d} token(s): {g['experts_with_grad']:2d} of {g['n_experts']} experts "
          f"have a gradient; .grad buffers {g['grad_bytes']:,} B for "
          f"{g['param_bytes']:,} B of weights")
    assert g["grad_bytes"] == g["param_bytes"]  # stored full-size either way
assert experts_with_gradient(1)["experts_with_grad"] == 4
assert experts_with_gradient(256)["experts_with_grad"] == 64

# %% [markdown]
# So even the single token's step stores a gradient for every weight (most of it zeros),
# and a real batch fills all of it. DeepSeek-V3's gradients are sized for all 671 B
# parameters:

# %%
train = memory.training_memory(cfg, "deepseek-fp8", seq_len=4096)
print(f"gradients: {train['gradients'] / 1e9:,.0f} GB "
      f"({memory.recipe('deepseek-fp8').grads} B x {p.total / 1e9:.0f} B parameters)")

# %% [markdown]
# ## 3. Activations: measured, not only computed
#
# The rule: each operation saves what its backward pass needs. A linear layer
# saves its **input** (the weight gradient is input × output gradient); GELU
# saves its input. PyTorch lets us watch every tensor autograd saves with
# `torch.autograd.graph.saved_tensors_hooks`. We train one step of a small MLP,
# measure everything from torch, and compare with the calculator.

# %%
import torch

d, hidden, blocks, batch = 64, 256, 3, 32
model = activations.toy_mlp(d, hidden, blocks, seed=0)
g = torch.Generator().manual_seed(0)
x, y = torch.randn(batch, d, generator=g), torch.randn(batch, d, generator=g)
measured = activations.measure_training_step(model, x, y)
n = activations.toy_mlp_params(d, hidden, blocks)
predicted = memory.state_bytes(n, "fp32", "adamw")
predicted["activations"] = activations.toy_mlp_saved_bytes(d, hidden, blocks,
                                                           batch)
for k, v in predicted.items():
    checks.check_close(f"toy {k} bytes: measured = predicted", measured[k], v)
plots.measured_vs_predicted(measured, predicted).show()

# %% [markdown]
# (AdamW also keeps one 4-byte step counter per tensor:
# `measured["optimizer_step_counters"]` bytes, too few to matter.)
#
# For a transformer the same rule gives the saved tensors per token and layer.
# With a fused ("flash") attention kernel nothing is quadratic, so activations grow
# **linearly** with sequence length and micro-batch. **Recomputation** trades
# compute for memory: DeepSeek-V3 recomputes RMSNorm and the MLA up-projections
# in backward ("selective"); "full" keeps only each layer's input.

# %%
seq_lens = [1024, 2048, 4096, 8192, 16384]
series = {r: [activations.activation_bytes(cfg, t, 1, r) for t in seq_lens]
          for r in activations.RECOMPUTE}
assert series["none"][1] == 2 * series["none"][0]  # linear in tokens
assert series["full"][2] < series["selective"][2] < series["none"][2]
plots.activations_vs_seq(seq_lens, series,
                         "DeepSeek-V3: activations of one sequence").show()

# %% [markdown]
# The same check on a piece of the real thing: **one MoE layer** shaped like
# DeepSeek-V3's (router, top-k routed SwiGLU experts, a shared expert). Its
# saved tensors are exactly the calculator's MoE terms plus a few integer
# indices. On a CPU it runs at toy width; on a CUDA GPU at DeepSeek-V3's width
# (7168, experts of 2048, top-8; 16 of the 256 experts, to fit one GPU), where
# `torch.cuda.max_memory_allocated` also records the peak of the whole step.

# %%
from course import moe_memory
from course.device import device
from course.presets import preset

sizes = preset("moe_memory")
step = moe_memory.measure_step(**sizes, device=str(device()))
expected = moe_memory.predicted_saved_bytes(**sizes)
checks.check_close("MoE layer saved bytes: measured = predicted",
                   step["activations"], expected)
states = step["weights"] + step["gradients"] + step["optimizer"]
print(f"states {fmt_bytes(states)}, activations {fmt_bytes(expected)}")
if "peak_allocated" in step:  # CUDA: the allocator's peak holds at least the states
    print(f"peak allocated {fmt_bytes(step['peak_allocated'])}")
    assert step["peak_allocated"] >= states

# %% [markdown]
# ## 4. Check the claim: "5,120 GB, or 64 GPUs"
#
# > The essay says one training replica of DeepSeek-V3 fits on **64 GPUs**
# > (64 × 80 GB = 5,120 GB). Which assumptions give that? 5,120 GB over 671 B
# > parameters is **7.6 bytes per parameter**, and nothing left for activations.
# > Only an all-BF16 recipe without a master copy (2 + 2 + 2 + 2 = 8 bytes),
# > counting "80 GB" as 80 GiB, squeezes in. DeepSeek-V3's own recipe needs 13
# > bytes per parameter plus activations: well over 100 GPUs.

# %%
print(f"bytes per parameter in 5,120 GB: {5120e9 / p.total:.2f}")
for r in ["bf16-pure", "deepseek-fp8", "bf16-mixed"]:
    states = sum(memory.state_bytes(p.total, r).values())
    print(f"{memory.recipe(r).name:>52}: {states / 1e9:>6,.0f} GB "
          f"= {states / 2**30:>6,.0f} GiB -> {memory.gpus_needed(states)} GPUs")
assert p.total * 8 / 2**30 <= 64 * 80  # 8 B/param only fits as GiB
assert memory.gpus_needed(sum(train.values())) > 100

# %% [markdown]
# ## 5. Inference: weights plus the KV cache
#
# Serving needs no gradients and no optimizer: the weights at the serving
# precision, plus the **KV cache** of every sequence in flight (notebook 11).
# DeepSeek-V3 serves its weights in FP8, one byte each.

# %%
for tokens in (4096, 131072):
    inf = memory.inference_memory(cfg, weight_bytes=1, seq_len=tokens, batch=8)
    print(f"8 sequences of {tokens:>6} tokens: weights "
          f"{inf['weights'] / 1e9:,.0f} GB, KV cache {inf['kv_cache'] / 1e9:,.1f} GB"
          f" -> {memory.gpus_needed(sum(inf.values()))} GPUs of 80 GB")
assert inf["kv_cache"] == 70_272 * 131072 * 8  # 68.6 KiB per token, linear

# %% [markdown]
# ## 6. Try it yourself
#
# Pick a model, a precision recipe, an optimizer, the sequence length, the
# micro-batch and the recomputation policy. Choose **custom** to build your own
# model with the last three sliders (they stay greyed out until you do).
#
# - How many GPUs does Llama 3 70B need to train in BF16 mixed precision?
# - What does full recomputation save at 32K tokens? What does it cost?
# - Make a custom MoE with 64 experts: which bar grows, and which does not?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.memory import memory_widget

live = memory_widget()
live

# %% [markdown]
# ## 7. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("03.swiglu_params"))` reveals a solution.
#
# **Exercise 1.** Count the parameters of one SwiGLU FFN of width `d` and inner
# width `inter` (no biases).

# %%
def my_swiglu_params(d, inter):
    # d, inter: ints; return an int
    raise NotImplementedError


my_swiglu_params = checks.check_exercise("03.swiglu_params", my_swiglu_params)

# %% [markdown]
# **Exercise 2.** GB (1e9 bytes) of weights, gradients and AdamW states for
# `n_params` parameters in BF16 mixed precision.

# %%
def my_mixed_precision_gb(n_params):
    # n_params: int; return a float in GB
    raise NotImplementedError


my_mixed_precision_gb = checks.check_exercise("03.mixed_precision_gb",
                                        my_mixed_precision_gb)

# %% [markdown]
# **Exercise 3.** How many 80 GB GPUs hold Llama 3.1 405B's weights in BF16 for
# serving, ignoring the KV cache?

# %%
answer = None  # an int
passed = checks.check_answer("03.gpus_405b_inference", answer)

# %% [markdown]
# ## Summary
#
# - Parameter counts follow from the config's shapes: DeepSeek-V3 has 671.0 B,
#   of which 37.55 B (36.63 B without the embedding) work on each token.
# - Training keeps 13–16 bytes per parameter (weights, gradients, optimizer)
#   for **all** parameters, plus activations that grow with tokens in flight.
# - Activation memory is what autograd saves; recomputation trades it for compute.
#
# **Next:** [04 · Parallelism](04_parallelism.ipynb) — splitting those
# gigabytes over 2,048 GPUs.
