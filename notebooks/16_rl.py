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
# # 16 · Imitation and reinforcement: SFT, distillation and GRPO
#
# > **You will** teach the course's tiny model a task in the two ways training
# > can learn: by **imitation** (copy demonstrations, mistakes included) and by
# > **reinforcement** (try several answers, be scored by a rule, prefer the
# > better ones), using GRPO, the algorithm behind DeepSeek-R1. You will
# > measure what each reaches, whether reinforcement finds answers the model
# > could not already sample, and what distillation gives a smaller model.
# > **Before this:** [02 · Backprop and the training loop](02_backprop.ipynb),
# > [03 · How many GB do I need?](03_memory.ipynb) and
# > [14 · Build a tiny DeepSeek](14_tiny_deepseek.ipynb).
# > **Time:** 30 minutes (under a minute of training).
#
# DeepSeek-V3 is a *base* model: it continues text. DeepSeek-R1 is V3 taught
# to reason. Its first version, **DeepSeek-R1-Zero**, was V3-Base trained by
# reinforcement learning alone, with rewards computed by rules (is the final
# answer right? is the reasoning inside the expected tags?). On the AIME 2024
# maths competition its pass@1 rose from 15.6% to 71.0% during that training,
# 86.7% with a majority vote over 64 answers (R1 report, arXiv 2501.12948,
# §2.2.4, Table 2). The algorithm is **GRPO**, Group Relative Policy
# Optimization, from DeepSeekMath (arXiv 2402.03300, §4.1).

# %% [markdown]
# ## 1. Two kinds of trial and error
#
# Remember the DJ with billions of knobs ([notebook 02](02_backprop.ipynb)).
#
# * **Imitation.** The DJ gets recordings of good sets and turns the knobs until
#   they play the recording back, note by note. That is supervised fine-tuning
#   (SFT): the same next-token loss as pre-training, on demonstrations. It can
#   only be as good as the recordings: a slip in them is copied too.
# * **Reinforcement.** No recording. The DJ plays the same request several
#   times; a second DJ listens and only says which tries were **better or
#   worse than the others**. The knobs turn towards the better tries. Nobody
#   needs to know the perfect set, only how to compare two.
#
# Reasoning models use both: imitation to start, reinforcement to go further.

# %%
import numpy as np
import torch
from IPython.display import display

from course import checks, memory, rl
from course.plots import rl as plots
from course.presets import preset
from course.widgets.rl import ProgressLine

# %% [markdown]
# ## 2. A task with a rule for the reward
#
# Reinforcement needs a reward a computer can check. The tiny model learns to
# **sort three digits**. The task has its own 13-word vocabulary (the corpus
# has no digits): `.` starts a prompt and ends an answer. All 1,000 prompts
# exist; a seeded fifth is **held out**, never trained on, and every accuracy
# below is measured there.

# %%
tok = rl.tokenizer()
train, test = rl.problems()
print(f"{len(train)} training prompts, {len(test)} held out · vocabulary: {tok.words}")
demos = rl.demonstrations(4, quality=0.5)
for p, r, ok in zip(demos.prompts, demos.responses, demos.correct):
    print(f"{tok.decode(p):>18} → {tok.decode(r):<10} {'right' if ok else 'a slip'}")

# %% [markdown]
# The reward is a rule, like R1-Zero's *accuracy* and *format* rewards: 1 for
# a correctly sorted answer, plus 0.1 for a well-formed one (three digits,
# then `.`). No learned reward model, nothing to fool.

# %%
terms = np.array([[3, 1, 2]] * 4)
answers = ["1 2 3 .", "2 1 3 .", "1 2 . .", "3 3 3 3"]
s = rl.score(terms, torch.tensor([tok.encode(a) for a in answers]))
for a, r in zip(answers, s["reward"]):
    print(f"sort 3 1 2 → {a:<8} reward {r:.1f}")
checks.check_close("right and well formed", s["reward"][0], 1 + rl.FORMAT_WEIGHT)

# %% [markdown]
# ## 3. Imitation: supervised fine-tuning
#
# `rl.sft` trains a fresh copy of the course's model (`course.model.TinyLM`,
# two layers, 64 wide) on 2,000 demonstrations, with the next-token loss on
# the answer tokens only. We train it twice: on perfect demonstrations, and on
# demonstrations of which only **70% are right** (the others swap two
# neighbours, as a hurried sorter would).
#
# We measure accuracy by **sampling** (temperature 1), as the R1 report
# measures pass@1: the model's own distribution, not only its top choice.

# %%
sft_bar = ProgressLine("SFT")
display(sft_bar)
clean = rl.sft(1.0, progress=sft_bar)
noisy = rl.sft(0.7, progress=sft_bar)
plots.imitation_curves({"100% right demos": clean, "70% right demos": noisy}).show()

# %%
acc_clean = rl.evaluate(clean.model, test, samples=4)["accuracy"]
acc_noisy = rl.evaluate(noisy.model, test, samples=4)["accuracy"]
print(f"held-out accuracy: {acc_clean:.0%} from perfect demos, "
      f"{acc_noisy:.0%} from 70%-right demos")
checks.check_close("imitation does not beat its demonstrations",
                   acc_noisy <= noisy.demo_quality, True)

# %% [markdown]
# Imitation reproduces its demonstrations, slips included: the model learned
# that "sometimes neighbours get swapped" as faithfully as it learned to sort.
# It lands a little *below* its demonstrations: after 120 steps the tiny model
# is not perfect even on clean data, and its own errors add to the copied ones. Move the slider: the held-out accuracy follows the dotted line,
# the share of correct demonstrations (each new value trains for a few seconds).

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.rl import imitation_explorer

imitation_explorer()

# %% [markdown]
# ## 4. GRPO, written out
#
# Start from the model imitated on 70%-right demonstrations. For each prompt,
# **sample a group** of G answers and score them with the rule. GRPO's whole
# trick is the baseline: an answer's **advantage** is its reward compared with
# its own group,
#
# $$\hat A_i = \frac{r_i - \operatorname{mean}(r_1..r_G)}{\operatorname{std}(r_1..r_G)}.$$
#
# Here is a real group of 8 from the imitation model:

# %%
gen = torch.Generator().manual_seed(0)
group = np.repeat(test[:1], 8, axis=0)
answers = rl.sample(noisy.model, rl.encode_prompts(group), 4, gen)
rewards = rl.score(group, answers)["reward"]
adv = rl.group_advantages(rewards[None])[0]
for a, r, A in zip(answers, rewards, adv):
    print(f"{tok.decode(rl.encode_prompts(group)[0])} → {tok.decode(a):<9} "
          f"reward {r:.1f}  advantage {A:+.2f}")

# %% [markdown]
# Above-average answers get a positive advantage, below-average ones a
# negative one, and a group where all answers score the same teaches nothing.
# Every token of answer i is then pushed by
#
# $$\min\big(\rho\,\hat A_i,\ \operatorname{clip}(\rho, 1-\varepsilon, 1+\varepsilon)\,\hat A_i\big) - \beta\,\mathbb{D}_{KL},\qquad \rho = \frac{\pi_\theta(\text{token})}{\pi_{\text{old}}(\text{token})}$$
#
# * the **ratio** ρ compares the model being trained with the one that
#   sampled; the **clip** stops one batch from moving a probability by more
#   than a factor 1 ± ε (PPO's trust region);
# * the **KL penalty** keeps the model near a frozen **reference** (the
#   imitation model), estimated per token by
#   π_ref/π − log(π_ref/π) − 1: unbiased and never negative
#   (DeepSeekMath eq. 4).
#
# `rl.grpo_loss` is exactly that, averaged over each answer's tokens, then over
# the answers. On the first step ρ = 1 and the policy is the reference, so the
# loss is minus the mean advantage: zero.

# %%
mask = rl.response_mask(answers)
with torch.no_grad():
    logp = rl.token_logprobs(noisy.model, rl.encode_prompts(group), answers)
loss, stats = rl.grpo_loss(logp, logp, logp, adv.float(), mask, eps=0.2, beta=0.04)
checks.check_close("first step: loss = −mean advantage = 0", abs(float(loss)), 0.0,
                   atol=1e-6)
checks.check_close("KL to the reference at the start", stats["kl"], 0.0, atol=1e-6)

# %% [markdown]
# Now the real run: 40 steps of 8 prompts × G = 8 answers, two gradient steps
# per batch of samples, β = 0.04 (DeepSeekMath's value), ε = 0.2.

# %%
grpo_bar = ProgressLine("GRPO")
display(grpo_bar)
base, run = rl.sft_then_grpo(0.7, progress=grpo_bar)
plots.grpo_panels(run).show()
print(f"held-out accuracy {run.accuracy[0]:.0%} → {run.accuracy[-1]:.0%} in "
      f"{len(run.reward)} steps ({run.seconds:.1f} s on this machine)")
checks.check_close("GRPO raises the held-out accuracy by more than 15 points",
                   run.accuracy[-1] > run.accuracy[0] + 0.15, True)

# %% [markdown]
# The reward climbs and the held-out accuracy with it, **past the 70% of the
# demonstrations** the model imitated: the rule, not a teacher, decides what
# is right. The KL to the reference grows from zero and stays small: the model
# moved only where it had to. The answer length stays at 4 tokens: a sorted
# list has exactly one right length, so this toy cannot show R1-Zero's longer
# and longer reasoning (its responses grew to thousands of tokens, R1 report
# §2.2.4): nothing here rewards thinking for longer.

# %% [markdown]
# ## 5. Did reinforcement find anything new? pass@1 vs pass@k
#
# pass@k is the chance that at least one of k sampled answers is right.
# From n samples of which c are right, the unbiased estimate is
# 1 − C(n−c, k) / C(n, k) (Chen et al. 2021, arXiv 2107.03374). If GRPO's
# pass@1 only reaches the imitation model's pass@k, reinforcement
# **sharpened** what the model could already sample, it did not add to it.

# %%
n = preset("rl")["pass_n"]
before = rl.pass_curve(base.model, test, n)
after = rl.pass_curve(run.model, test, n)
plots.pass_at_k({"imitation model (before GRPO)": {k: [v] for k, v in before.items()},
                 "after GRPO": {k: [v] for k, v in after.items()}}).show()
print(f"before: pass@1 {before[1]:.0%}, pass@{n} {before[n]:.0%} · "
      f"after: pass@1 {after[1]:.0%}, pass@{n} {after[n]:.0%}")

# %% [markdown]
# ## 6. Imitation vs reinforcement, and distillation, over three seeds
#
# One run is an anecdote. `rl.compare` repeats the story for three seeds and
# adds the R1 report's last question: a **smaller student** (one layer, 32
# wide) either gets the same treatment (SFT on the 70%-right demonstrations,
# then GRPO) or is **distilled**: trained by SFT on 2,000 answers sampled from
# the reinforced teacher. That is fifteen trainings, about half a minute of one
# CPU core, so the course ships their result (`assets/runs/rl_compare.json`,
# written by this same function; the tests check it against a fresh run).
# `rl.compare(cache=False)` reruns them all while you watch.

# %%
cmp_bar = ProgressLine("3 seeds")
display(cmp_bar)
comp = rl.compare(seeds=(0, 1, 2), quality=0.7, progress=cmp_bar)
plots.comparison(comp).show()
for name, label, _ in plots.BARS:
    print(f"{label:<42} {comp.spread(name).text('{:.0%}')}")

# %%
checks.check_close("SFT then GRPO beats SFT alone on every seed",
                   bool((comp.sft_grpo > comp.sft).all()), True)
plots.pass_at_k({"imitation model": comp.base_pass, "after GRPO": comp.grpo_pass},
                title="pass@k over 3 seeds (bars: min to max)").show()
n = max(comp.base_pass)
print(f"GRPO pass@1 {comp.grpo_pass[1].mean():.0%} vs the imitation model's "
      f"pass@{n} {comp.base_pass[n].mean():.0%}")
checks.check_close("GRPO's pass@1 stays within the base model's pass@16",
                   comp.grpo_pass[1].mean() <= comp.base_pass[n].mean(), True)
checks.check_close("on the student, GRPO beats distillation (every seed)",
                   bool((comp.student_grpo > comp.student_distilled).all()), True)

# %% [markdown]
# **What the toy shows, honestly.**
#
# * On every seed, SFT-then-GRPO beats SFT alone from the same imperfect
#   demonstrations: imitation stops at its teacher's quality, reinforcement
#   with a correct rule does not.
# * GRPO's pass@1 climbs towards the imitation model's pass@k for large k, and
#   not beyond it: the right answers were already among the model's samples,
#   GRPO made them the usual ones. That is the part of R1-Zero a toy can show.
#   Whether RL on a large model also finds *new* solutions is a question this
#   toy cannot settle.
# * **Distillation vs RL on the student: here the toy disagrees with the
#   paper.** The R1 report (§4.1) found that distilling R1 into a 32B model
#   beat running large-scale RL on that model directly. In our toy, GRPO on
#   the small student beats distilling the teacher on every seed. Why:
#   sorting three digits is within the student's reach, so its own samples
#   already contain right answers for GRPO to reinforce, and GRPO trains on
#   exactly what the rule checks. Distillation is imitation again: the student
#   copies the teacher's remaining slips (we kept the teacher's answers
#   unfiltered; R1 kept only correct ones) and adds its own. The R1 argument
#   is about skills a small model rarely samples by itself, which only a
#   stronger teacher can show it; this toy has no such skill.

# %% [markdown]
# ## 7. Why GRPO? The critic it does not need
#
# Before GRPO, the standard was PPO, which needs a **value model**: a critic
# that predicts, token by token, how much reward the answer will get, and that
# is trained alongside the policy. In the DJ picture, PPO hires a second DJ as
# large as the first, who predicts the crowd's applause for every note and
# must himself learn. GRPO fires him: it plays the request G times and uses the
# group's average as the baseline. For DeepSeek-V3 that critic would be
# another 671 B parameters, trained:

# %%
mem = rl.ppo_vs_grpo_memory("deepseek-v3", recipe="deepseek-fp8")
plots.memory_bars(mem).show()
n_params = memory.param_count("deepseek-v3").total
value = sum(memory.state_bytes(n_params, "deepseek-fp8").values())
print(f"value model: {value / 1e12:.1f} TB (weights + gradients + optimizer states); "
      f"PPO {mem['ppo_total'] / 1e12:.1f} TB vs GRPO {mem['grpo_total'] / 1e12:.1f} TB")
checks.check_close("GRPO saves the value model", mem["ppo_total"] - mem["grpo_total"]
                   - mem["ppo"]["reward_model"], value)
print(f"= {memory.gpus_needed(value)} more 80 GB GPUs just to hold it")

# %% [markdown]
# The saving is the whole training state of a second model of the policy's
# size (13 bytes per parameter under DeepSeek-V3's FP8 recipe, notebook 03),
# plus a reward model's weights where the reward is a rule. The group costs
# compute instead: G samples per prompt (DeepSeekMath used G = 64).

# %% [markdown]
# ## 8. Try it yourself
#
# Each move trains GRPO (a few seconds) from the SFT model of section 3, trained on
# demonstrations that are 70% correct.
#
# - The group size G, at a fixed 64 samples a step: G = 2 samples 32 prompts
#   and compares each answer with one other; G = 16 samples 4 prompts and
#   has a baseline of sixteen. Which learns faster here? A real run's rollout
#   budget forces the same choice (DeepSeekMath, §4.2, sampled G = 64
#   answers for each question).
# - β = 0.2: what does a strong pull towards the reference do to the KL and
#   to the accuracy?
# - A learning rate of 3e-3: faster, or unstable?
# - Demonstrations 30% right: can GRPO still recover? Build the widget again as
#   `grpo_explorer(quality=0.3)` (it trains a new SFT model first, about 5 s) and look
#   at the first held-out accuracy: the rule needs *some* right answers in each group.

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.rl import grpo_explorer

grpo_explorer()

# %% [markdown]
# ## 9. Exercises
#
# Leave a stub as it is and the notebook still runs. Stuck?
# `print(checks.solution("16.pass_at_k"))` reveals a solution.
#
# **Exercise 1.** GRPO's advantages for one group of rewards (a list of G
# numbers): subtract the mean, divide by the standard deviation (divide by G),
# and return zeros when all rewards are equal.

# %%
def my_group_advantages(rewards):
    # rewards: a list of G floats; return a numpy array of G advantages
    raise NotImplementedError


my_group_advantages = checks.check_exercise("16.group_advantages", my_group_advantages)

# %% [markdown]
# **Exercise 2.** The clipped objective of one token, given its ratio ρ, its
# advantage Â and ε. Before running: what is it for ρ = 1.5, Â = 2, ε = 0.2?
# And for ρ = 1.5, Â = −2?

# %%
def my_clipped_objective(ratio, advantage, eps):
    # floats in, a float out
    raise NotImplementedError


my_clipped_objective = checks.check_exercise("16.clipped_objective", my_clipped_objective)

# %% [markdown]
# **Exercise 3.** The unbiased pass@k from n samples with c correct. Why is
# 1 − (1 − c/n)^k, the obvious formula, not the same?

# %%
def my_pass_at_k(n, c, k):
    # ints in, a float between 0 and 1 out
    raise NotImplementedError


my_pass_at_k = checks.check_exercise("16.pass_at_k", my_pass_at_k)

# %% [markdown]
# **Exercise 4.** How many terabytes would PPO's value model for DeepSeek-V3
# need (weights, gradients and optimizer states, FP8 recipe)? Use
# `memory.param_count` and `memory.state_bytes`.

# %%
value_tb = None  # a number, in units of 1e12 bytes
passed = checks.check_answer("16.value_model_tb", value_tb)

# %% [markdown]
# ## Summary
#
# - **Imitation** (SFT) copies demonstrations, slips included: from 70%-right
#   demonstrations the tiny model sorts about 60% of held-out prompts right,
#   never more than its demonstrations.
# - **Reinforcement** with GRPO needs only a rule that scores answers: sample a
#   group, compare each answer with its group's mean, push up the better ones,
#   clip the step, stay near a reference (KL). From the same imperfect start
#   it passes the demonstrations' quality on every seed.
# - In the toy, GRPO's pass@1 approaches what the imitation model already found
#   in k tries: it sharpens; the answer length cannot grow on a sorting task.
# - Distillation vs RL on a small student: the toy's student is capable enough
#   for its own RL, which beats distillation here, unlike in the R1 report;
#   we said why.
# - GRPO has no value model: for DeepSeek-V3 that is a second 671 B-parameter
#   model's training state not kept in memory.
#
# **Next:** you have seen how DeepSeek trains, serves and reasons. Go back to
# [13 · The bill](13_the_bill.ipynb) and price a model of your own design.
