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
# # 01 · The transformer block: mixing and knowledge
#
# > **You will** train a tiny language model in one call, then look inside it: where its
# > attention looks, what it predicts next, what breaks when you switch a part off, and
# > how much each block changes a word's vector.
# > **Before this:** [00 · Welcome](00_welcome.ipynb); a little PyTorch helps.
# > **Time:** 25 minutes.
#
# Every frontier model, DeepSeek-V3 included, is a stack of **transformer blocks**. A
# block does two things to each word's vector, and adds each result back to it (the
# *residual stream*):
#
# 1. **attention mixes** words: in "the green forest has green ...", the word "has" can
#    look back at "green" and copy it forward;
# 2. **the MLP adds knowledge** that is not in the sentence: after "babe ruth played"
#    the answer "baseball" must come from the weights.
#
# The components are written out in `course/attention.py` (`RMSNorm`, `SwiGLU`,
# `CausalSelfAttention`, `Block`) so you can read them; the tests check them against
# PyTorch's own attention to 1e-5.

# %%
import torch

from course import checks, cost, data, device
from course import inspect_model as im
from course.plots import transformer as plots
from course.presets import preset

device.seed_everything(0)
print(device.describe())

# %% [markdown]
# ## 1. A toy corpus and a word-level tokenizer
#
# The course ships its own corpus (`assets/corpus/tiny.txt`, a few thousand short
# sentences, no downloads; the cell counts them). Some sentences need **context** (a colour said earlier must be repeated),
# some need **knowledge** (which sport an athlete played, a country's capital). One
# token is one word, so an attention map reads like the sentence; the price is that a
# word the corpus never uses cannot be typed.

# %%
tok = data.tokenizer()
sentences = data.load_corpus()
print(len(sentences), "sentences,", tok.vocab_size, "words in the vocabulary")
print(sentences[:4])
print(tok.encode("babe ruth played baseball"))
assert tok.decode(tok.encode("the green forest has green trees")) == "the green forest has green trees"

# %% [markdown]
# ## 2. Train the tiny model in one call
#
# `TinyLM` (in `course/model.py`) is the course's one model: an embedding, a stack of
# blocks, a final norm and an output layer. Here it has multi-head attention (MHA),
# a dense SwiGLU MLP and FP32 weights; later notebooks flip switches to MLA, MoE, FP8
# and multi-token prediction. Training runs once per kernel (the cell prints how long it
# took on this machine) and is cached, so the widgets below reuse the same model. (It stays this small on a GPU too: it is the
# model we want to look inside.)

# %%
run = im.trained_tiny_model()
model = run.model
print(model.cfg.n_layers, "blocks, width", model.cfg.d_model, ",", model.cfg.n_heads, "heads")
print(f"loss: {run.loss[0]:.2f} at the start -> {run.loss[-1]:.2f}; held-out {run.val_loss:.2f}")
tokens_seen = len(run.loss) * preset("tiny_lm", "toy")["batch"] * model.cfg.seq_len
print(f"trained on {tokens_seen:,} tokens in {tokens_seen / run.tokens_per_s:.1f} s")
assert run.val_loss < 1.0

# %%
for prompt in ["the green forest has", "the blue forest has", "babe ruth played",
               "michael jordan played"]:
    word, p = im.next_token_probs(model, prompt, top_k=1)[0]
    print(f"{prompt!r:28} -> {word} ({p:.0%})")
assert im.next_token_probs(model, "the blue forest has", top_k=1)[0][0] == "blue"

# %% [markdown]
# **The model, box by box.** Tokens become vectors (the embedding), pass through the
# blocks, each an attention step and an MLP step added back to the residual stream after
# an RMSNorm, and a final norm and output head turn the last vector into a score for
# every word. Hover over a box for what it does. The sizes are this model's own.

# %%
from course.plots import diagram

cfg = model.cfg
d_ff = model.blocks[0].ffn.w1.out_features
diagram.transformer_block(cfg.n_layers, cfg.d_model, cfg.n_heads, d_ff, tok.vocab_size).show()

# %% [markdown]
# ## 3. Where does attention look?
#
# Each head of each layer turns every word into a query, a key and a value. A word's
# output is a weighted average of the values of the words it may see, weighted by
# softmax(query · key / √d). The **causal mask** lets a word see only itself and the
# past, so each row of the heat map sums to 1 and everything right of the diagonal is 0.

# %%
maps = im.attention_maps(model, "the green forest has")
print("weights shape (layers, heads, T, T):", tuple(maps.weights.shape))
assert torch.all(maps.weights.triu(1) == 0)
torch.testing.assert_close(maps.weights.sum(-1), torch.ones(maps.weights.shape[:-1]))
to_green = maps.weights[:, :, -1, 2]  # (layers, heads): how much "has" looks at "green"
layer, head = divmod(int(to_green.argmax()), to_green.shape[1])
print(f"strongest: layer {layer}, head {head} puts {to_green[layer, head]:.0%} on 'green'")
assert to_green[layer, head] > 0.5
plots.attention_heatmap(maps.tokens, maps.weights[layer, head],
                        f"Layer {layer}, head {head}: 'has' looks back at 'green'").show()

# %% [markdown]
# ### Where is a word? Embeddings and RoPE
#
# The **embedding** is a table with one row per word: "green" gets the same vector
# wherever it stands. And attention by itself is blind to order: a score is query · key,
# whatever the distance between the two words. So where does position come in?
#
# This model (like DeepSeek-V3 and Llama) uses **rotary position embeddings** (RoPE;
# Su et al. 2021, §3.4): before the scores, each pair of dimensions of a query at position
# m is rotated by an angle proportional to m, and a key at n by one proportional to n.
# Rotations compose, so the score depends on the positions only through **n − m**: the
# model can learn "look two words back" once and use it anywhere. Check it on the trained
# model's first layer: the query of "has" and the key of "green", placed at many positions.

# %%
from course import rope
from course.plots import rope as rope_plots

q, k = rope.query_key(model, layer=0, head=0, q_word="has", k_word="green", tok=tok)
for m, n in [(3, 1), (10, 8), (25, 23), (3, 0)]:
    print(f"query at {m:2d}, key at {n:2d} (n - m = {n - m:+d}): "
          f"logit {rope.score(q, k, m, n):.6f}")
table, plain = rope.score_table(q, k, 16), rope.score_table(q, k, 16, rope=False)
spread = max(float(d.max() - d.min()) for d in rope.by_offset(table).values())
checks.check_close("largest spread of the logit at one offset n - m", spread, 0.0, atol=1e-5)
assert float(table.max() - table.min()) > 1000 * spread  # ... while offsets do matter
rope_plots.score_tables(table, plain, "has", "green").show()

# %% [markdown]
# Along each diagonal (one offset n − m) the logit is the same to float precision; across
# diagonals it changes. Without RoPE the whole table is one number: the model would have
# no idea how far apart the words are. Notebook 11 returns to this: MLA keeps RoPE on a
# small separate key, because a rotation that depends on position cannot be folded into
# fixed weights.

# %% [markdown]
# ## 4. What comes next?
#
# The last position's output becomes a probability for every word in the vocabulary.

# %%
plots.next_token_bars(im.next_token_probs(model, "the capital of peru is"),
                      "After 'the capital of peru is'").show()

# %% [markdown]
# ## 5. Knock-outs: switch a part off and see what breaks
#
# The story says attention does the mixing and the MLP holds the knowledge. Let's test
# it on the real model. We zero the output of one part and measure the top-1 accuracy
# over **every** matching prompt in the corpus: colour-copy prompts ("... the green
# forest has" → green), athlete facts ("... babe ruth played" → baseball) and capitals.
# The cell counts them.

# %%
kinds = {kind: len(im.corpus_prompts(kind)) for kind in im.KINDS}
print("prompts per kind:", kinds)
table = im.knockout_table(model)
for label, scores in table.items():
    print(f"{label:14}", "  ".join(f"{k} {s.accuracy:5.0%}" for k, s in scores.items()))
plots.knockout_bars(table).show()

# %% [markdown]
# The exact percentages move a little from machine to machine (training's floating-point
# sums depend on the number of CPU threads), but the pattern holds. Zeroing **layer 0's
# attention** collapses the colour prompts, as the story predicts: nothing else carries
# "green" to the end of the sentence. It collapses the **facts** too: to answer "babe
# ruth played", the word "played" must first *look back* at "ruth", and looking back is
# attention's job.
#
# The MLP rows hold a puzzle: zeroing MLP 0 alone costs more facts than zeroing **both**
# MLPs. Removing more of the model should not help it. The catch is that zeroing is not
# "switching off": MLP 1 was trained on a residual stream that always contained MLP 0's
# output. Zero MLP 0 and MLP 1 still runs, on an input it never saw. How different is
# what it writes at the prompt's last word?

# %%
shift = im.output_shift(model, "fact", im.knockout_set(ffn_layers=[0]), ("ffn", 1))
print(f"MLP 1's output with MLP 0 zeroed vs intact: cosine {shift.cosine:.2f}, "
      f"{shift.norm_ratio:.2f}x as long")
assert table["all MLPs"]["fact"].accuracy > table["MLP 0"]["fact"].accuracy  # the puzzle
assert shift.cosine < 0.9  # MLP 1 writes something else: its input is off-distribution

# %% [markdown]
# MLP 1 answers an input off its training distribution with a vector pointing elsewhere,
# and that vector, not the missing MLP 0, costs most of the facts: zero MLP 1 too and
# they come back.
#
# Zeroing asks "what does the model do without this vector at all?", a stream the later
# layers never saw. A narrower question is "does the prediction need what this part
# computed from *this* prompt?". **Mean ablation** answers it: it replaces a part's
# output, position by position, by its *average* over the held-out sentences
# (`im.mean_outputs`). The average stays; only the prompt-specific part goes. Both, side
# by side:

# %%
mean_table = im.knockout_table(model, ablation="mean")
print(f"{'':14}" + "".join(f"{k:>16}" for k in im.KINDS))
for label in table:
    print(f"{label:14}" + "".join(
        f"{table[label][k].accuracy:7.0%} →{mean_table[label][k].accuracy:5.0%}   "
        for k in im.KINDS))
print("(zeroed → replaced by the mean)")
plots.ablation_bars(table, mean_table, "fact").show()

# %% [markdown]
# The two knock-outs disagree most on "all MLPs". Two measurements say why. MLP 0's
# average output is far from small at one position, and the residual stream's length at
# the last word (what the final RMSNorm rescales) tells how much of the usual stream is
# left:

# %%
sink = im.mean_outputs(model)[("ffn", 0)].norm(dim=-1)
print(f"MLP 0's mean output: length {sink[0]:.1f} at the '.' that starts every prompt, "
      f"{sink[1:5].mean():.1f} at the next four positions")
conditions = im.knockout_conditions(model.cfg.n_layers)
length = {(label, how): im.stream_norm(model, "fact", conditions[label], how)
          for label in ("nothing", "MLP 0", "all MLPs") for how in im.ABLATIONS}
for label in ("nothing", "MLP 0", "all MLPs"):
    print(f"{label:9} stream length at 'played': zeroed {length[label, 'zero']:.2f}, "
          f"mean {length[label, 'mean']:.2f}")
assert sink[0] > 5 * sink[1:5].mean()
assert length["all MLPs", "zero"] < 0.6 * length["nothing", "zero"]
checks.check_close("all MLPs by the mean: the stream keeps its usual length",
                   length["all MLPs", "mean"], length["nothing", "mean"], rtol=0.1)

# %%
checks.check_close("nothing removed: all colour prompts right",
                   table["nothing"]["colour"].accuracy, 1.0, atol=0.02)
for t in (table, mean_table):
    assert t["attention 0"]["colour"].accuracy < 0.5   # mixing needs attention
    assert t["attention 0"]["fact"].accuracy < 0.5     # ... and so does the fact lookup
    assert min(t["attention 1"][k].accuracy for k in im.KINDS) > 0.9  # layer 1's hardly
assert mean_table["all MLPs"]["fact"].accuracy < 0.5 < table["all MLPs"]["fact"].accuracy

# %% [markdown]
# **What the two columns say.**
#
# - Attention 0 is essential either way: for copying context and for looking up a fact
#   about a named person. Layer 1's attention hardly matters either way.
# - With the MLPs' averages kept and only their prompt-specific part removed, every kind
#   of prompt suffers and, with both MLPs out, the facts collapse: in the model as
#   trained, the answer to "babe ruth played" does come from what the MLPs compute from
#   the prompt.
# - Zeroing both MLPs also removes their average outputs, MLP 0's long vector at the "."
#   included: the stream at the last word shrinks to about half its usual length and
#   holds mostly the embedding and what attention copied from "ruth". The final RMSNorm
#   scales that back up, and on its own it still points at "baseball": a route to the
#   answer that is real, but too weak to carry it once the MLPs' usual outputs are in
#   the stream (the mean column).
#
# So the knock-out method decides part of the answer, and a careful study reports which
# one it used. In large models, mean ablation is the usual choice (Wang et al. 2022,
# arXiv:2211.00593), and causal-tracing studies locate many facts in the MLPs of the
# middle layers (Meng et al. 2022, arXiv:2202.05262, §2): "the MLP stores the facts" is a
# tendency, not a law.

# %% [markdown]
# ## 6. The residual stream
#
# Each block *adds* its attention and MLP outputs to the word's vector instead of
# replacing it. The norm of each update shows how much each part changes each word.

# %%
norms = im.residual_norms(model, "the green forest has")
plots.residual_figure(norms, "Size of each update, per word").show()
out = model(im.encode_prompt("the green forest has"))
torch.testing.assert_close(norms.stream[-1], out.hidden[0].norm(dim=-1))

# %% [markdown]
# ## 7. Try it yourself
#
# Type a sentence from the corpus's world, pick a layer and head, and tick boxes to
# knock parts of the model out, zeroed or replaced by their mean. A word the corpus never
# uses gets a message instead of a map: try "the purple dragon".
#
# - In "we walked to the red lake and saw", which head looks at "red"?
# - Tick "attention 0": what does the model now say after "the green forest has"?
#   And after "the capital of peru is"?
# - On "babe ruth played", tick "MLP 0", then "MLP 1" as well, first zeroed, then by
#   the mean. Which of the two knock-outs keeps "baseball"?
# - Find a prompt whose top guess survives every single knock-out.

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.transformer import attention_explorer, knockout_explorer

attn_live = attention_explorer()
attn_live

# %%
# NBVAL_IGNORE_OUTPUT
ko_live = knockout_explorer()
ko_live

# %% [markdown]
# ## 8. At realistic size
#
# One block at DeepSeek-V3's width (7,168, 128 heads, dense MLP width 18,432: the
# released `config_671B.json`) on a 4,096-token sequence, forward pass only, in BF16.
# (DeepSeek-V3's real attention is MLA, notebook 11; here it is the plain MHA block of
# this notebook at the same width.)
# On a CPU this cell times the toy preset of the same code; the realistic numbers need a
# CUDA GPU.

# %%
t = cost.preset_block_timing()
print(preset("block"))
print(f"{t.where}: forward {t.forward_s * 1e3:.1f} ms, {t.forward_flops / 1e9:.1f} GFLOP, "
      f"{t.forward_tflops:.3f} TFLOP/s")
if device.size() == "toy":
    print("toy size: the DeepSeek-V3-width run needs a CUDA GPU")
assert t.forward_flops == cost.block_flops(**{k: preset("block")[k]
                                              for k in ("batch", "seq_len", "d_model", "d_ff")})

# %% [markdown]
# > **Check the claim.** *"The MLP adds knowledge, based on the universal approximation
# > theorem."* The theorem says that a network with one hidden layer and enough units can
# > approximate any continuous function on a bounded input range as closely as you like.
# > It does **not** say how many units that takes, that gradient descent will find those
# > weights, or that the function it finds stores *facts*. Section 5 needed two kinds of
# > knock-out before it could say where our tiny model's facts come from.

# %% [markdown]
# ## 9. Exercises
#
# Leave a stub as it is and the notebook still runs; write your answer and run the cell
# again. Stuck? `print(checks.solution("01.causal_mask"))`.
#
# **Exercise 1.** Write the causal mask: a `(T, T)` boolean tensor, `True` where query
# `t` may attend to key `s`.

# %%
def my_mask(T):
    # return a (T, T) torch.bool tensor
    raise NotImplementedError


my_mask = checks.check_exercise("01.causal_mask", my_mask)

# %% [markdown]
# **Exercise 2.** Write one causal attention head: `q, k, v` of shape `(T, d)` give an
# output of shape `(T, d)`.

# %%
def my_head(q, k, v):
    # scores (T, T) -> mask the future -> softmax over keys -> weighted sum of values
    raise NotImplementedError


my_head = checks.check_exercise("01.one_head", my_head)

# %% [markdown]
# **Exercise 3.** Predict the shape of `im.attention_maps(model, "babe ruth played").weights`
# before running it.

# %%
shape = None  # e.g. (1, 2, 3, 4)
passed = checks.check_answer("01.weights_shape", shape)

# %% [markdown]
# **Exercise 4.** RoPE on one pair of dimensions: rotate the pair `(x, y)` by `angle`
# radians (counter-clockwise). Return the new pair as a tuple.

# %%
def my_rotate(x, y, angle):
    raise NotImplementedError


my_rotate = checks.check_exercise("01.rope_rotate", my_rotate)

# %% [markdown]
# ## Summary
#
# - A block = attention (mixes words) + MLP (transforms each word), both *added* to the
#   residual stream, each after an RMSNorm.
# - RoPE rotates queries and keys by position, so attention scores depend only on how far
#   apart two words are (checked on the trained model).
# - The causal mask keeps every word from seeing the future; the attention heat map of
#   a trained model shows words looking back at the word they need.
# - Knock-outs on the real model: attention is essential for copying context *and* for
#   looking up facts about a named person. Zeroing a part moves the later layers off
#   their training distribution; mean ablation avoids that, and with it the facts do
#   need the MLPs.
#
# **Next:** [02 · Backprop and the training loop](02_backprop.ipynb) — how those weights
# were learned.
