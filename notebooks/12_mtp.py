# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 · Multi-token prediction and speculative decoding
#
# > **You will** give the course's tiny model a second head that guesses the
# > token *after* the next one, see what that does to training, then use the
# > same head to draft tokens that the main model only has to check — and
# > measure how often it is right and what that buys.
# > **Before this:** [01 · The transformer block](01_transformer_block.ipynb)
# > (the tiny model) and [11 · The KV cache and MLA](11_kv_cache_mla.ipynb).
# > **Time:** 20 minutes.

# %%
from course import checks, data, mtp, mtp_study, seeds, speculative
from course.plots import mtp as plots
from course.presets import preset

P = preset("mtp")
tok = data.tokenizer()

# %% [markdown]
# ## 1. Predicting two tokens
#
# A language model's head reads the last hidden state $h_i$ and guesses
# $t_{i+1}$. DeepSeek-V3 adds an **MTP module** (report §2.2, eq. 21–23): it
# takes $h_i$, mixes in the embedding of the *true* next token $t_{i+1}$,
#
# $$h'_i = M\,[\mathrm{RMSNorm}(h_i);\ \mathrm{RMSNorm}(\mathrm{Emb}(t_{i+1}))],$$
#
# runs one more transformer block and uses the **same output head** to guess
# $t_{i+2}$. Training adds its cross-entropy with a weight:
# $L = L_\text{main} + \lambda \cdot L_\text{MTP}$ (DeepSeek-V3: λ = 0.3, then 0.1).
# In the course's model it is one switch, `mtp_depth=1`. Let's train it.

# %%
with_mtp = mtp.train(depth=1, lam=0.3, steps=P["steps"], seed=0)
for word, nxt, after in mtp.two_token_guesses(with_mtp.model,
                                              ". babe ruth played baseball ."):
    print(f"{word:>10}  next: {nxt:<10} after that: {after}")

# %% [markdown]
# After "ruth" the main head guesses "played"; the MTP module, told that the
# next word *is* "played", already guesses "baseball". On held-out text:

# %%
val = data.split()[1]
acc = mtp.depth_accuracy(with_mtp.model, val, with_mtp.model.cfg.seq_len)
print(f"main head, next token right:        {acc.next_token:.1%}")
print(f"MTP depth 1, token after next right: {acc.depth[0]:.1%}")
print(f"MTP agrees with what the main model will say: {acc.agrees_with_main[0]:.1%}")
assert acc.agrees_with_main[0] > 0.6

# %% [markdown]
# ## 2. Does the MTP objective help training?
#
# DeepSeek-V3 keeps MTP mainly for this: the extra target "densifies the
# training signal" (Table 4: HumanEval 44.5 → 53.7 for the large ablation
# model). Here is the honest toy test: the same model, the same seed, the same
# batches and steps, with and without the MTP loss; we compare only the **main**
# head's loss on held-out text (the MTP module is discarded).

# %%
without = mtp.train(depth=0, steps=P["steps"], seed=0)
plots.loss_curves({"no MTP": without.lm_loss,
                   "MTP, depth 1, λ = 0.3": with_mtp.lm_loss}).show()
diff = with_mtp.val_loss - without.val_loss
print(f"val loss without MTP {without.val_loss:.3f}, with MTP "
      f"{with_mtp.val_loss:.3f} (difference {diff:+.3f})")
assert abs(diff) < 0.1

# %% [markdown]
# One seed is an anecdote: the seed picks the initial weights and the
# batches, and that alone moves the loss. `mtp_study.study()` repeats the
# runs of this notebook over three seeds and four values of λ (section 3
# shows the rest of it). The main model's held-out loss, mean and min–max:

# %%
study = mtp_study.study()  # read from assets/runs/mtp_acceptance.json (2 min to recompute)
base = study.baseline
print(f"no MTP:               {base.text()}")
for lam in study.lams:
    loss = study.spread(1, lam, "val_loss")
    print(f"MTP depth 1, λ = {lam:<3g}: {loss.text()}  "
          f"{'told apart from' if seeds.differs(base, loss) else 'overlaps'} no MTP")

# %% [markdown]
# λ = 0 keeps the module but never trains it, so the main model learns from
# exactly the loss it has without MTP; only its random start differs (building
# the module shifts the random numbers the main weights are drawn from). That
# row is pure seed noise. At DeepSeek's λ = 0.3 the range overlaps the one
# without MTP: three seeds cannot tell them apart. Only λ = 1 lowers the loss
# at every seed, by a few hundredths of a nat. A 100-word corpus that a
# 2-layer model learns in eighty steps leaves little for a denser signal to
# add; DeepSeek's gains come from 540 B training tokens on hard text (code,
# maths) where planning ahead matters.

# %% [markdown]
# ## 3. Speculative decoding: the main model checks the draft
#
# At inference the MTP module can be thrown away — or used as a **draft**
# (report §5.4.3). Each main-model step feeds the newest token *and* the
# drafted one. One forward pass gives the main model's opinion at both
# positions: if it agrees with the draft we keep the draft **and** get the
# next token for free, 2 tokens for one step; if not we keep the main model's
# own token, 1 token. With greedy decoding the text is exactly what the main
# model alone would write.

# %%
prompts = mtp.prompts(P["prompts"], P["prompt_len"])
greedy = mtp.speculate(with_mtp.model, prompts, P["new_tokens"])
print(tok.decode(greedy.outputs[0][0]))
print(f"greedy: drafts accepted {greedy.acceptance[0]:.1%}, tokens per "
      f"main-model step {greedy.tokens_per_step:.2f}")
assert greedy.identical  # same text as plain greedy decoding, token for token

# %% [markdown]
# Greedy decoding of a toy model soon loops on one sentence (above), so its
# acceptance says little about varied text. Sampling at temperature 1 writes
# varied, corpus-like text. The draft is then sampled too and accepted with probability
# $\min(1, p_\text{main}(x)/q_\text{draft}(x))$ — a rule that keeps the text's
# distribution exactly the main model's (speculative sampling).

# %%
spec = mtp.speculate(with_mtp.model, prompts, P["new_tokens"],
                     temperature=1.0, draft_temperature=1.0, seed=0)
print(tok.decode(spec.outputs[0][0]))
p = spec.acceptance[0]
print(f"sampled: drafts accepted {p:.1%}, tokens per main-model step "
      f"{spec.tokens_per_step:.2f} (ceiling 1 + p = {1 + p:.2f})")
assert 1 + p - 0.2 < spec.tokens_per_step <= 1 + p

# %% [markdown]
# Tokens per step is a little under $1+p$: the prompt's prefill step yields
# one token, and the last step may overshoot the length we asked for.
#
# ### Over seeds, by λ and depth
#
# That $p$ is one training seed, one set of prompts and one roll of the
# sampling dice. The study from section 2 repeated this sampled run for
# λ = 0, 0.1, 0.3 and 1 and for one and two MTP modules, over three seeds
# (seed 0 is the run above):

# %%
for depth in study.depths:
    for lam in study.lams:
        rates = "; ".join(f"draft {k} " + study.spread(depth, lam, f"accept {k}").text("{:.0%}")
                          for k in range(1, depth + 1))
        print(f"depth {depth}, λ = {lam:<3g}: {rates}")
plots.acceptance_over_seeds(study).show()
ours = study.spread(1, 0.3)
print(f"this notebook's run: {p:.1%}; seed 0 of the study: {ours.values[0]:.1%}")
for depth in study.depths:
    pairs = ", ".join(f"{a:g} vs {b:g}" for a, b in study.apart(depth)) or "none"
    print(f"depth {depth}: λ pairs whose depth-1 acceptance the seeds tell apart: {pairs}")
one, two = (study.spread(d, 0.3, "tokens_per_step") for d in (1, 2))
print(f"tokens per main-model step at λ = 0.3: depth 1 {one.text('{:.2f}')}, depth 2 "
      f"{two.text('{:.2f}')}; told apart: {seeds.differs(one, two)}")

# %% [markdown]
# λ = 0 never trains the module: the main model accepts only about one in ten
# of its drafts. Any λ above 0 lifts the draft to about 90 %, and the three
# trained values sit close together (the pairs the seeds tell apart are printed). On
# this toy λ decides *whether* the module learns far more than *how well*. A
# second module raises the tokens per main-model step at every seed: it is
# tried only when the first draft passed, and then it passes about as often.
#
# ## 4. Which tokens does the draft get right?

# %%
plots.acceptance_bars(spec.by_type, "Drafts accepted, by the kind of token "
                      "guessed", "kind of token", overall=p).show()
plots.acceptance_bars(spec.by_position, "Drafts accepted, by word position in "
                      "the sentence", "word position", overall=p).show()

# %%
rates = {k: v for k, v in spec.by_type.items() if v[1] >= 5}
hard, easy = min(rates, key=lambda k: rates[k][0]), max(rates, key=lambda k: rates[k][0])
print(f"hardest kind: {hard} ({rates[hard][0]:.0%} of {rates[hard][1]} drafts); "
      f"easiest: {easy} ({rates[easy][0]:.0%} of {rates[easy][1]})")
assert sum(n for _, n in spec.by_type.values()) == \
    sum(n for _, n in spec.by_position.values())

# %% [markdown]
# Where the corpus leaves a real choice (which colour, which athlete, which
# sentence comes next), the main model and the draft each roll their own
# dice and disagree more often; where the earlier words fix the answer
# ("ruth played" → "baseball"), both say the same thing. DeepSeek's 85–90 %
# is the same kind of average, over real text.

# %% [markdown]
# ## 5. From acceptance to speed
#
# With one draft accepted with probability $p$, a step yields $1+p$ tokens on
# average. That is a **ceiling** for the speed-up: it assumes checking two
# tokens costs the same as decoding one and drafting is free. We measure the
# three step costs on this machine and combine them:
#
# $$\text{speed-up} = (1+p)\cdot\frac{t_\text{plain step}}{t_\text{verify step} + t_\text{draft}}$$

# %%
cost = speculative.step_costs(with_mtp.model)
est = speculative.speedup_estimate(spec.tokens_per_step, cost.plain_s,
                                   cost.verify_s, cost.draft_s)
print(f"plain step {cost.plain_s * 1e3:.2f} ms, verify step "
      f"{cost.verify_s * 1e3:.2f} ms, draft {cost.draft_s * 1e3:.2f} ms")
print(f"estimated speed-up {est:.2f}×; measured wall clock "
      f"{spec.plain_s / spec.spec_s:.2f}×")
assert est <= spec.tokens_per_step * cost.plain_s / cost.verify_s

# %% [markdown]
# At toy size the draft is far from free: it is one transformer block
# against the main model's two, and on a CPU each step is mostly fixed
# overhead, so most of the $1+p$ is eaten (the wall-clock ratio of the two
# decoding runs is noisier still on a busy machine).
#
# In DeepSeek-V3 the draft is 1 block against 61 and decoding is memory-bound
# (notebook 11): a step costs the bytes it reads. But checking 2 tokens is
# **not** as cheap as decoding 1 in an MoE: the second token routes to other
# experts, so the verify step reads more weights (`kvcache.weights_touched`).
# With $b$ sequences in the batch, a plain step reads the weights $b$ tokens
# touch, a verify step those $2b$ tokens touch, both read the cache once
# (FP8 weights, 1 byte each; the draft reads the MTP module's active weights):

# %%
from course import compute, kvcache

V3 = "deepseek-v3"
cache = 4096 * kvcache.kv_bytes_per_token(V3)  # one sequence at 4K context, BF16
draft = (compute.training_flops_per_token(V3, include_mtp=True).matmul_params
         - compute.training_flops_per_token(V3).matmul_params)  # the MTP module's weights
for b in (1, 8, 64, 256):
    plain = kvcache.weights_touched(V3, b) + b * cache
    verify = kvcache.weights_touched(V3, 2 * b) + b * cache
    est_v3 = speculative.speedup_estimate(1.85, plain, verify, draft)
    print(f"batch {b:2d}: verify / plain = {verify / plain:.2f}, "
          f"speed-up at p = 85 %: {est_v3:.2f}x")
w1, w2 = kvcache.weights_touched(V3, 1), kvcache.weights_touched(V3, 2)
print(f"1 token touches {w1 / 1e9:.1f} B weights, 2 tokens {w2 / 1e9:.1f} B")
checks.check_close("batch 1 speed-up = 1.85 x plain / (verify + draft)",
                   speculative.speedup_estimate(1.85, w1 + cache, w2 + cache, draft),
                   1.85 * (w1 + cache) / (w2 + cache + draft), rtol=1e-9)

# %% [markdown]
# Alone (batch 1), verifying reads about 1.5× the bytes of a plain step and
# speculation gains little; at batch 8 the extra tokens reach many new experts
# and it gains even less. Only when a batch already touches nearly every expert
# (a few hundred sequences) does the second token per sequence add almost no
# bytes, and the speed-up approach $1+p$: DeepSeek's 1.8× is a served-batch
# figure. (The draft's own MoE layer is counted at one token's experts here.)

# %%
ceiling = speculative.expected_tokens_per_step([0.85]), \
    speculative.expected_tokens_per_step([0.90])
print(f"DeepSeek-V3: p = 85–90 % → ceiling {ceiling[0]:.2f}–{ceiling[1]:.2f} "
      "tokens per step; reported 1.8× tokens per second")
overhead = ceiling[0] / 1.8 - 1
print(f"1.8× means a speculative step costs {overhead:.0%} more than a plain "
      "one (at p = 85 %)")
checks.check_close("ceiling at p = 0.85", ceiling[0], 1.85)
print(f"our toy: p = {p:.0%} — its corpus is far more predictable than "
      "real text")

# %% [markdown]
# > **Check the claim.** The essay calls MTP "a training improvement, not an
# > inference one". It is right about the purpose.
# > The report uses it **both** ways: as a denser training objective (§4.2,
# > Table 4) and, optionally, as a draft for speculative decoding (§5.4.3:
# > 85–90 % acceptance, 1.8× tokens per second). Above you saw both: a training
# > effect that is small on our toy, and a draft that the main model accepts
# > most of the time with output identical to plain decoding.

# %% [markdown]
# ## 6. Try it yourself
#
# Each λ and depth trains a model once (a few seconds, then cached); the
# draft temperature only changes decoding. The main model stays greedy, so the
# text never changes — only how often the draft is right.
#
# * What happens to acceptance at λ = 0? (The MTP loss is off: the module is
#   never trained.)
# * Does a second depth add tokens per step? Compare its acceptance with depth 1.
# * How fast does acceptance fall as the draft is sampled hotter?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.mtp import mtp_speculation

live = mtp_speculation()
live

# %% [markdown]
# ## 7. Sequential modules or parallel heads?
#
# DeepSeek's MTP modules form a chain: depth k reads depth k−1's state and the
# embedding of the token k ahead. Gloeckle et al. (2024) put **independent
# heads** on the trunk instead: each predicts its future token from hᵢ alone.
# The essay's "Hydra" picture (many heads on one neck) is the second kind; the
# V3 report (§2.2) chose the first to "keep the complete causal chain at each
# prediction depth". The study trained both at depth 2 (same blocks, same λ)
# over three seeds and measured each depth on held-out text
# (`mtp.compare_heads(depth=2)` trains one seed of it).

# %%
depth, lam = study.settings["heads_at"]  # the study trained both kinds over three seeds
for h in mtp.HEADS:
    print(f"{h} ({mtp.module_params(depth, h):,} MTP parameters): main loss "
          f"{study.spread(depth, lam, 'val_loss', h).text()}")
    for k in range(1, depth + 1):
        print(f"   depth {k} agrees with the main model: "
              f"{study.spread(depth, lam, f'agree {k}', h).text('{:.0%}')}")
print(f"no MTP: main loss {study.baseline.text()}")
plots.heads_over_seeds(study).show()
wins = [k for k in range(1, depth + 1)  # every seed of the chain above every seed of the heads
        if study.spread(depth, lam, f"agree {k}").lo >
        study.spread(depth, lam, f"agree {k}", "parallel").hi]
print(f"depths where the chain beats the parallel heads at every seed: {wins}")
losses = [study.spread(depth, lam, "val_loss", h) for h in mtp.HEADS] + [study.baseline]
apart = any(seeds.differs(a, b) for i, a in enumerate(losses) for b in losses[i + 1:])
print(f"main-model losses (sequential, parallel, no MTP) told apart by the seeds: {apart}")

# %% [markdown]
# The chain wins at both depths and every seed because depth k sees the
# tokens up to i + k, while an independent head must guess k + 1 tokens ahead
# from position i. This is teacher-forced (the chain is fed the true tokens;
# when drafting it is fed its own guesses), so it is an upper bound for the
# chain. The main model's three losses are another matter: the last line says
# whether three seeds tell any two of them apart.

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("12.tokens_per_step"))` reveals a solution.
#
# **1.** Tokens per main-model step when depth $k$'s draft passes with
# probability $p_k$ (given the earlier ones passed): $1 + p_1 + p_1p_2 + \dots$
# `ps` is a list of floats.

# %%
def tokens_per_step(ps):
    raise NotImplementedError  # your code here


tokens_per_step = checks.check_exercise("12.tokens_per_step", tokens_per_step)

# %% [markdown]
# **2.** A greedy draft is accepted when it equals the main model's argmax.
# `main_logits` and `draft_logits` are (N, V); return the fraction of rows
# where the two argmaxes agree.

# %%
def greedy_acceptance(main_logits, draft_logits):
    raise NotImplementedError  # your code here


greedy_acceptance = checks.check_exercise("12.greedy_acceptance", greedy_acceptance)

# %% [markdown]
# **3.** With p = 0.9 and a verify step plus draft costing 5 % more than a
# plain step, what speed-up do you expect? Replace `...` with a number.

# %%
answer = ...
passed = checks.check_answer("12.speedup_p90", answer)

# %% [markdown]
# ## Summary
#
# * An MTP module predicts the token after next from the main hidden state
#   and the next token's embedding, sharing the embedding and output head.
# * As a training objective it moved the main model's loss on the toy corpus
#   by a few hundredths of a nat at most, within seed noise at DeepSeek's
#   λ = 0.3; DeepSeek reports gains at scale.
# * As a draft it is accepted most of the time; greedy output is unchanged,
#   and a step yields up to $1+p$ tokens — the speed-up's ceiling, reached
#   only when checking two tokens costs what decoding one does.
#
# **Next:** [13 · The bill, and what it means](13_the_bill.ipynb).
