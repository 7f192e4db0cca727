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
# # 14 · Build a tiny DeepSeek
#
# > **You will** switch on every component the course has built — Multi-head
# > Latent Attention, a mixture of experts balanced by a bias, FP8 linear
# > layers and a multi-token-prediction head — train that tiny DeepSeek on a
# > CPU, then switch the components off one at a time and **measure** what each
# > one buys. Where a component does not pay at this size, we say so, and use
# > the course's calculators to show why it pays at DeepSeek-V3's size.
# > **Before this:** [08](08_moe_collapse.ipynb), [09](09_balancing.ipynb),
# > [10](10_fp8.ipynb), [11](11_kv_cache_mla.ipynb) and [12](12_mtp.ipynb).
# > **Time:** 25 minutes (about a minute and a half of training).

# %% [markdown]
# ## 1. One config, every switch on
#
# The course has one model class (`course.model.TinyLM`); a config with
# switches decides what goes inside. The tiny DeepSeek turns them all on.

# %%
import math

import torch

from course import checks, data, memory
from course import tiny_deepseek as td
from course.plots import tiny_deepseek as plots

cfg = td.full_config()
print({k: getattr(cfg, k) for k in ("attention", "ffn", "balance", "precision",
                                     "mtp_depth", "n_routed_experts",
                                     "experts_per_token", "n_shared_experts")})
assert (cfg.attention, cfg.ffn, cfg.balance, cfg.precision) == (
    "mla", "moe", "bias", "fp8") and cfg.mtp_depth == 1

# %% [markdown]
# How big is it? We count parameters on the model itself. *Active* means the
# parameters one token actually runs through: the attention, the router, the
# shared expert and only its top-2 of the 8 routed experts. DeepSeek-V3 is
# counted the same way (671 B total, 37 B active), so the course's calculator
# `memory.param_count`, fed the same shapes, must agree exactly.

# %%
from course.model import TinyLM

total, active = td.count_params(TinyLM(cfg))
ref = memory.param_count(td.hf_config(cfg))
print(f"total {total:,} · active {active:,} ({active / total:.0%})")
checks.check_close("counted on the model = course.memory.param_count",
                   (total, active), (ref.total, ref.active))

# %% [markdown]
# ## 2. Train it
#
# A CPU emulates FP8 (every matmul operand is rounded to E4M3 with one scale
# per 1×128 tile or 128×128 block), which is several times slower than
# plain FP32 here. So training is short: **100 steps of 8 × 32 tokens**
# (`preset("tiny_deepseek")`), enough to learn much of the corpus, not all.

# %%
import ipywidgets as W
from IPython.display import HTML, display

steps = td.settings()[1]["steps"]
bar = W.IntProgress(max=steps, description="training")
display(bar)
run = td.train("full", on_step=lambda step, loss: setattr(bar, "value", step + 1))
bar.value = steps  # also when the run came from the cache
print(f"validation loss {run.val_loss:.3f} nats (uniform guessing: "
      f"{math.log(cfg.vocab_size):.2f}) · {run.tokens_per_s:,.0f} tokens/s")
assert run.val_loss < 0.5 * math.log(cfg.vocab_size)
plots.training_curve(run.loss, run.lm_loss).show()

# %% [markdown]
# Does it know anything? Greedy continuations of two prompts:

# %%
from course.model import generate

tok = data.tokenizer()
for prompt in ("babe ruth played", "the green forest has"):
    idx = torch.tensor([tok.encode(prompt)])
    print(tok.decode(generate(run.model, idx, 4)[0]))

# %% [markdown]
# ## 3. Save it, load it back
#
# `course.model.save` writes the weights and the config to a folder
# (`checkpoints/` is ignored by git); `load` refuses a checkpoint trained with
# another config, with a sentence that says which settings differ.

# %%
from course.model import load, save

folder = save(run.model, td.CHECKPOINTS / "tiny_deepseek")
back = load(folder, cfg)
probe = torch.tensor([tok.encode("the cat says")])
assert torch.equal(back(probe).logits, run.model(probe).logits)
try:
    load(folder, td.variant_config("mha", cfg))
except ValueError as err:
    print("✓ refused:", err)

# %% [markdown]
# ## 4. Switch each component off, and measure
#
# Five more trainings, same seed, same data, same 100 steps, each with **one**
# switch changed: MHA instead of MLA, a dense FFN whose width gives the
# **same active parameters** as the MoE (shared + top-2 experts), the
# auxiliary loss instead of the bias, FP32 instead of FP8, no MTP. The full
# model's row reuses the run above (runs are cached by their settings).
# Three trainings per cell, each with its progress bar.

# %%
names = list(td.VARIANTS)
vbar = W.IntProgress(max=3, description="ablation 1/2")
display(vbar)
rows = td.ablation(variants=names[:3],
                   on_variant=lambda i, name: setattr(vbar, "value", i))
vbar.value = 3
assert [r.variant for r in rows] == ["full", "mha", "dense"]

# %%
vbar = W.IntProgress(max=3, description="ablation 2/2")
display(vbar)
rows += td.ablation(variants=names[3:],
                    on_variant=lambda i, name: setattr(vbar, "value", i))
vbar.value = 3
display(HTML(plots.ablation_table(rows)))
by = {r.variant: r for r in rows}

# %%
plots.ablation_bars(rows).show()

# %% [markdown]
# Each number was measured, so let us check the ones that have an exact
# answer. The KV cache column comes from the real cache after a generation,
# and it must match `course.kvcache.kv_bytes_per_token` for the same shapes
# (in FP32, 4 bytes a number).

# %%
for r in rows:
    assert r.kv_bytes_per_token == r.kv_formula, r.variant
checks.check_close("MLA cache: (d_c + d_h^R) x layers x 4 B",
                   by["full"].kv_bytes_per_token,
                   (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * cfg.n_layers * 4)
checks.check_close("dense FFN: same active params, router aside",
                   by["dense"].active_params,
                   by["full"].active_params
                   - cfg.n_layers * cfg.n_routed_experts * (cfg.d_model + 1))
assert by["no_mtp"].tokens_per_step == 1.0 and math.isnan(by["dense"].max_vio)
assert by["full"].tokens_per_step > 1.0

# %% [markdown]
# ## 5. An honest reading at toy scale
#
# **Validation loss.** The six losses sit close together. At 100 short steps
# a different seed moves them about as much as a switch does, so do not read a
# ranking into a few hundredths of a nat. None of the components is there to
# make a tiny model *smarter*; each one makes a big model *cheaper*.
#
# **MLA (row 2, [notebook 11](11_kv_cache_mla.ipynb)).** The toy cache per
# token shrinks about 5×, but at a 32-token context the whole cache is a few
# kilobytes: nothing to save. At DeepSeek-V3's size the same trick is the
# difference between fitting a long context and not:

# %%
from course import kvcache

v3 = kvcache.kv_bytes_per_token("deepseek-v3")
v3_mha = kvcache.mha_bytes_per_token("deepseek-v3")
print(f"toy: {by['mha'].kv_bytes_per_token / by['full'].kv_bytes_per_token:.1f}x "
      f"smaller · V3: {v3:,} B vs {v3_mha:,} B per token with MHA "
      f"({v3_mha / v3:.0f}x); a 128k context: {v3 * 131072 / 1e9:.1f} GB "
      f"vs {v3_mha * 131072 / 1e9:.0f} GB")
checks.check_close("DeepSeek-V3's MLA cache per token (bytes, BF16)", v3, 70_272)

# %% [markdown]
# **MoE (row 3, [notebook 08](08_moe_collapse.ipynb)).** At the same
# *active* parameters the MoE holds about twice the total parameters, and the
# dense FFN trains faster on this CPU (one matmul instead of nine small
# ones). With 8 experts and a corpus this small the extra capacity buys little.
# DeepSeek-V3 runs 8 of 256 routed experts: each token uses 5.6% of the
# weights, so the model holds about 18× the **parameters** it pays for per token.
# That is not 18× less training compute than a dense model of 671 B: attention,
# the shared expert and the output head are paid in full either way.

# %%
from course import planner

v3p = memory.param_count("deepseek-v3")
print(f"toy: {by['full'].active_params / by['full'].total_params:.0%} active · "
      f"V3: {v3p.total / 1e9:.0f} B total, {v3p.active / 1e9:.1f} B active "
      f"({v3p.active / v3p.total:.1%}), {v3p.total / v3p.active:.1f}x the parameters")
dense_x = planner.training_gains("deepseek-v3")["MoE"]
print(f"a dense 671 B model (every expert active) needs {dense_x:.1f}x V3's training FLOPs")
checks.check_close("V3 active share", v3p.active / v3p.total, 0.056, rtol=0.01)
assert dense_x < v3p.total / v3p.active  # attention etc. do not shrink with MoE

# %% [markdown]
# **Bias vs auxiliary loss (row 4, [notebook 09](09_balancing.ipynb)).** In
# this run the bias leaves the held-out load more even than the auxiliary loss
# (lower MaxVio), and it does so without a gradient that pulls against the
# language-model loss. With 8 experts on one CPU an uneven load costs nothing.
# With 256 experts spread over 64 GPUs, the busiest GPU sets the pace of every
# step. MaxVio is per **expert**, though: each GPU holds 4 experts, so one
# expert 40% above the mean makes its GPU only about 10% busier than the
# average (`moe.ep_ranks` adds the loads of the experts each GPU holds):

# %%
import numpy as np

from course import moe

print(f"held-out MaxVio: bias {by['full'].max_vio:.2f}, "
      f"aux loss {by['aux'].max_vio:.2f}")
assert by["full"].max_vio < by["aux"].max_vio  # this seed; see notebook 09
hot = np.ones(256)
hot[0] = 1.4  # one hot expert, the other 255 at the same load
gpus = moe.ep_ranks(hot, 64)
print(f"V3 layout: expert MaxVio {moe.max_vio(hot):.2f} -> busiest GPU "
      f"{gpus.slowdown - 1:.0%} above the average GPU")
checks.check_close("busiest GPU / mean GPU", gpus.slowdown, (1.4 + 3) / (4 * hot.mean()),
                   rtol=1e-9)

# %% [markdown]
# **FP8 (row 5, [notebook 10](10_fp8.ipynb)).** On a CPU FP8 is *slower*:
# there are no FP8 units, so each rounding is extra work. What the toy shows
# is the part that transfers: the loss stays close to FP32's (checked on the
# measured rows below). On a GPU with FP8 tensor cores the same matmuls run at
# twice the BF16 rate:

# %%
from course.configs import gpu

checks.check_close("FP8 validation loss vs FP32 (measured, nats)", by["full"].val_loss,
                   by["fp32"].val_loss, rtol=0.03)

h800 = gpu("H800")
print(f"this CPU: FP8 {by['full'].tokens_per_s:,.0f} vs FP32 "
      f"{by['fp32'].tokens_per_s:,.0f} tokens/s · H800 dense peak: FP8 "
      f"{h800.fp8_dense_tflops:.0f} vs BF16 {h800.bf16_dense_tflops:.0f} TFLOPS")
checks.check_close("FP8 / BF16 tensor-core peak", h800.fp8_dense_tflops
                   / h800.bf16_dense_tflops, 2.0, rtol=0.01)

# %% [markdown]
# **MTP (row 6, [notebook 12](12_mtp.ipynb)).** The MTP head costs a little
# training time and, at decode, lets one main-model pass produce more than
# one token: the "decode tokens / main step" column. DeepSeek-V3 reports an
# 85–90% acceptance for its second token, about 1.8× the tokens per second.
# The tiny model's drafts are right less often after only 100 steps.

# %%
print(f"tiny DeepSeek: {by['full'].tokens_per_step:.2f} tokens per main step "
      "with MTP drafts, 1.00 without")
assert 1.0 < by["full"].tokens_per_step <= 1 + cfg.mtp_depth

# %% [markdown]
# ## 6. Try it yourself
#
# Type a prompt using the corpus's words; the tiny DeepSeek continues it with
# plain decoding and with MTP speculation. Green words came from an accepted
# draft: the main model only had to check them.
#
# - Which words does the MTP head guess best: the end of a fact ("babe ruth
#   played" → ?) or the start of a new sentence?
# - Type a word the corpus never uses. What happens?
# - Why are the two lines always the same words?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.tiny_deepseek import generation

live = generation(run.model)
live

# %% [markdown]
# ## 7. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("14.dense_width"))` reveals a solution.
#
# **Exercise 1.** Before looking at the table: how many times more KV-cache
# bytes per token does the tiny DeepSeek need with MHA instead of MLA?
# (4 heads of width 16, `kv_lora_rank` 16, `qk_rope_head_dim` 8, 2 layers.)

# %%
answer = None  # a number
passed = checks.check_answer("14.kv_ratio", answer)

# %% [markdown]
# **Exercise 2.** The dense FFN of row 3: the SwiGLU width with the same
# active parameters as an MoE layer (ignore the router).

# %%
def my_dense_width(moe_inter_dim, n_shared, top_k, n_routed):
    # all ints; return the dense FFN's hidden width
    raise NotImplementedError


my_dense_width = checks.check_exercise("14.dense_width", my_dense_width)

# %% [markdown]
# **Exercise 3.** Which share of DeepSeek-V3's parameters does one token use?
# (Use `memory.param_count("deepseek-v3")`.)

# %%
share = None  # active / total, a number between 0 and 1
passed = checks.check_answer("14.v3_active_share", share)

# %% [markdown]
# ## Summary
#
# - One config switches on MLA, MoE with bias balancing, FP8 linears and an
#   MTP head; the tiny DeepSeek trains on a CPU in about a minute and a half.
# - Measured one switch at a time: MLA cuts the cache ~5×, the MoE doubles
#   the parameters at the same active count, MTP decodes more than one token
#   per pass; at toy size the losses barely move, and FP8 is slower on a CPU.
# - Each component pays at scale: V3's cache is 57× smaller than with MHA, a
#   token uses 5.6% of 671 B parameters, FP8 tensor cores double the peak.
#
# **Next:** you have built and trained the whole stack. [15 · Serving DeepSeek-V3](15_serving.ipynb)
# serves it to a stream of requests, as DeepSeek serves V3.
