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
# # 02 · Backprop and the training loop
#
# > **You will** build gradients by hand with a 100-line autograd engine, watch three
# > optimizers turn two knobs over a real loss surface, count the bytes an optimizer
# > keeps, and measure why a backward pass costs about twice a forward pass.
# > **Before this:** [01 · The transformer block](01_transformer_block.ipynb).
# > **Time:** 25 minutes.
#
# Training is trial and error in four steps: **predict**, **compare** with the truth,
# **measure** how wrong (the loss), **update** the weights. Back to the DJ of notebook 00:
# the loss is what the DJ hears, the weights are the knobs, and the **gradient** says
# which way to turn each knob and how hard. Backprop is how a model finds that gradient
# for billions of knobs at once.
#
# Comparing with a known right answer is learning by **imitation**. A chat model's first
# two stages learn this way: pre-training copies the next word of a huge corpus, and
# supervised fine-tuning (SFT) copies written demonstrations of good answers. The last
# stage, **reinforcement learning** (RL), has no answer to copy: the model writes its own
# answers, a reward scores them, and training makes the better-scored ones more likely
# (DeepSeek-V3 report §5: SFT, then RL). [Notebook 16](16_rl.ipynb) runs both on the
# course's tiny model and measures what each reaches.

# %%
import torch
from torch.utils.flop_counter import FlopCounterMode

from course import autograd, checks, cost, device, optim
from course.attention import SwiGLU
from course.plots import backprop as plots
from course.presets import preset

device.seed_everything(0)
print(device.describe())

# %% [markdown]
# ## 1. Backprop by hand: a scalar autograd engine
#
# `course/autograd.py` defines a `Value`: a number that remembers which numbers it was
# computed from and the *local* rule for sending a gradient back to them (for
# `out = a * b`: `a` gets `b · grad_out`, `b` gets `a · grad_out`). `backward()` visits
# the graph from the loss back to the inputs (reverse topological order) and applies
# the **chain rule** once per node. Here is one neuron with its loss:

# %%
w, x, b = autograd.Value(0.8, label="w"), autograd.Value(2.0, label="x"), autograd.Value(-0.5, label="b")
y_pred = (w * x + b).tanh()
loss = (y_pred - 1.0) ** 2
loss.backward()
print(loss, w, b, sep="\n")
nodes, edges = autograd.graph(loss)
plots.graph_figure(nodes, edges, autograd.depths(nodes)).show()

# %% [markdown]
# The same expression in PyTorch gives the same gradients (the tests check this on
# hundreds of random expressions, in float64, to 1e-9):

# %%
tw, tx, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.8, 2.0, -0.5))
tloss = ((tw * tx + tb).tanh() - 1.0) ** 2
tloss.backward()
checks.check_close("our dL/dw equals torch's", w.grad, tw.grad.item(), rtol=1e-12)
checks.check_close("our dL/db equals torch's", b.grad, tb.grad.item(), rtol=1e-12)

# %% [markdown]
# ## 2. The four-step loop on two knobs
#
# Our two knobs are the slope `w` and offset `b` of a line fitted to 40 points. Unlike
# notebook 00, the points sit at x between 1 and 5, so the knobs interact: a steeper
# slope can be undone by a lower offset. The loss surface is a long narrow valley.
# Three optimizers start from the same knobs:
#
# - **SGD** steps against the gradient: `k ← k − lr · g`;
# - **momentum** keeps a running sum of past gradients (`v ← 0.9 v + g`) and steps along
#   it, so it builds up speed along the valley floor;
# - **Adam** keeps a running mean `m` *and* mean square `s` of each knob's gradient and
#   steps by `lr · m / √s`: every knob moves at about the same pace, however steep.
#
# The update rules are torch's own (`torch.optim.SGD`, `Adam`), re-written in numpy so
# the slider below is instant; the tests check them step by step against torch.

# %%
pts = optim.valley_points()
paths = optim.trajectories(-1.0, 4.0, 0.02, 100)
for kind, tr in paths.items():
    print(f"{kind:9} loss {tr.loss[0]:7.2f} -> {tr.loss[-1]:.3f} after 100 steps")
plots.knob_figure(optim.loss_grid(pts), paths, (-1.0, 4.0), (-1.0, 4.0)).show()
assert paths["momentum"].loss[-1] < paths["sgd"].loss[-1]

# %%
plots.loss_curves(paths).show()

# %% [markdown]
# Why does Adam trail even plain SGD here? Its step is `lr · m / √s`, and `m / √s` is
# about ±1 while the gradient keeps its sign, so each knob moves by **about lr per step**
# however far it is from the bottom. The offset `b` starts at 4, far from its best value:

# %%
import numpy as np

moves = np.abs(np.diff(paths["adam"].knobs, axis=0))  # (steps, 2): |Δw|, |Δb| per step
w_best, b_best = np.polyfit(pts.x, pts.y, 1)  # the least-squares line: the valley's bottom
print(f"Adam's largest step: {moves.max():.4f} (lr = 0.02); b must travel "
      f"{4.0 - b_best:.2f}, which takes at least {(4.0 - b_best) / 0.02:.0f} steps")
assert moves.max() <= 0.02 * 1.001 and (4.0 - b_best) / 0.02 > 100

# %% [markdown]
# ## 3. Too large a learning rate
#
# On this surface the curvature is the same everywhere (it is a quadratic), so there is
# an exact limit: plain gradient descent converges only if `lr < 2 / λ_max`, where
# `λ_max` is the largest eigenvalue of the loss's Hessian. Just above it, every step
# overshoots the valley by more than the last, and the loss explodes.

# %%
limit = optim.max_stable_lr(pts)
below = optim.trajectory("sgd", pts, (0.0, 0.0), 0.95 * limit, 300)
above = optim.trajectory("sgd", pts, (0.0, 0.0), 1.05 * limit, 300)
print(f"2/λ_max = {limit:.4f}; at 0.95× the loss ends at {below.loss[-1]:.3f}; "
      f"at 1.05× it diverged after {len(above.loss) - 1} steps")
assert not below.diverged and above.diverged

# %% [markdown]
# ## 4. What optimizers keep in memory
#
# Turning the knobs needs more than the knobs. For the course's tiny language model we
# run one real training step with each optimizer and read what it stores from its
# `state`: SGD keeps nothing, momentum one buffer per parameter, **AdamW two** (`exp_avg`
# and `exp_avg_sq`, the `m` and `s` above), plus the gradients themselves.
#
# The **W** in AdamW is *decoupled weight decay* (Loshchilov & Hutter, "Decoupled Weight
# Decay Regularization", ICLR 2019): each step also shrinks every weight by `lr · λ · w`
# directly, instead of adding `λ w` to the gradient where Adam's `1/√s` would rescale it.
# DeepSeek-V3 trains with AdamW, λ = 0.1 (report §4.2). With a zero gradient only the decay
# acts, so one step must give `w (1 − lr λ)`:

# %%
knob = torch.nn.Parameter(torch.tensor([1.0]))
adamw = torch.optim.AdamW([knob], lr=0.1, weight_decay=0.1)
knob.grad = torch.zeros(1)
adamw.step()
checks.check_close("AdamW, zero gradient: w after one step = 1 x (1 - 0.1 x 0.1)",
                   knob.item(), 1 - 0.1 * 0.1)

# %%
memory = {k: optim.tiny_model_state_bytes(k) for k in ("sgd", "momentum", "adamw")}
for kind, s in memory.items():
    print(f"{kind:9} params {s.params:,} B  grads {s.grads:,} B  state {s.states}")
adam = memory["adamw"]
checks.check_close("AdamW keeps two numbers per parameter",
                   (adam.states["exp_avg"] + adam.states["exp_avg_sq"]) / adam.n_params, 8.0)
plots.state_bytes_bars(memory).show()

# %% [markdown]
# In FP32 that is 4 bytes of weight + 4 of gradient + 8 of Adam state = **16 bytes per
# parameter** before any activations. For a 671-billion-parameter model that is about
# 10.7 TB: notebook 03 works out how many GPUs that takes, and how mixed precision
# shrinks it.

# %% [markdown]
# ## 5. Forward vs backward: why training costs 3× a forward pass
#
# A linear layer `y = x W` does one matmul forward. Backward it needs two of the same
# size: `dx = dy Wᵀ` (to pass the gradient on) and `dW = xᵀ dy` (to update the weights).
# So backward ≈ 2 × forward in FLOPs, forward + backward ≈ 3 × forward, and with 2 FLOPs
# per weight per token a training step costs about **6·N·D** FLOPs (notebook 05). We count
# the FLOPs by hand, check the count with PyTorch's FLOP counter, and time both passes
# of a real SwiGLU MLP.

# %%
p = preset("mlp")
timing = cost.preset_mlp_timing()
print(p, timing.where)
print(f"forward {timing.forward_s * 1e3:.1f} ms, backward {timing.backward_s * 1e3:.1f} ms, "
      f"ratio {timing.ratio:.2f}; {timing.forward_tflops:.3f} TFLOP/s forward")
plots.pass_time_bars(timing).show()
# wall-clock times move with whatever else the machine runs, so this is a reading, not a
# check (the FLOP count below is the exact one)
print("backward ≈ 2 × forward" if 1.5 < timing.ratio < 3.0 else
      f"backward/forward = {timing.ratio:.1f}, not about 2 this time: is the machine busy?")

# %%
mlp = SwiGLU(64, 256)
xs = torch.randn(128, 64, requires_grad=True)
with FlopCounterMode(display=False) as fwd:
    out = mlp(xs)
with FlopCounterMode(display=False) as bwd:
    out.sum().backward()
checks.check_close("forward FLOPs counted by hand", fwd.get_total_flops(),
                   cost.swiglu_flops(128, 64, 256))
checks.check_close("backward FLOPs = 2 x forward", bwd.get_total_flops(),
                   2 * cost.swiglu_flops(128, 64, 256))

# %% [markdown]
# **At realistic size** (CUDA) the `mlp` preset is DeepSeek-V3's dense MLP: width 7,168,
# hidden 18,432, 4,096 tokens, in BF16, and the same cell measures the ratio there. On a
# CPU it runs the toy preset of the same code; the realistic numbers need a GPU.

# %%
if device.size() == "toy":
    print("toy size: the DeepSeek-V3-width measurement needs a CUDA GPU")
else:
    print(f"{timing.where}: backward/forward = {timing.ratio:.2f}, "
          f"{timing.backward_tflops:.0f} TFLOP/s backward")

# %% [markdown]
# ## 6. Try it yourself
#
# Move the knobs to choose where the three optimizers start; the red arrow points
# downhill (minus the gradient). Press the buttons to take more steps.
#
# - Start at w = 5, b = −10: which optimizer reaches the valley floor first?
# - Raise the learning rate slowly: at what value does SGD blow up? Does momentum
#   blow up earlier or later? And Adam?
# - Adam's first step moves both knobs by exactly the learning rate, however steep the
#   surface is in each direction. Why? (Look at `m / √s` on the first step.)

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.backprop import knob_explorer

live = knob_explorer()
live

# %% [markdown]
# ## 7. Exercises
#
# Leave a stub as it is and the notebook still runs; write your answer and run the cell
# again. Stuck? `print(checks.solution("02.mul_backward"))`.
#
# **Exercise 1.** Write the backward rule of multiplication: for `out = a * b`, given
# `grad_out` = dL/dout, return `(dL/da, dL/db)`.

# %%
def my_mul_backward(a, b, grad_out):
    # return a tuple of two floats
    raise NotImplementedError


my_mul_backward = checks.check_exercise("02.mul_backward", my_mul_backward)

# %% [markdown]
# **Exercise 2.** Check a gradient by finite differences: estimate `(dL/dw, dL/db)` of
# the knob loss with `(L(w + h, b) − L(w − h, b)) / 2h`. The loss is
# `optim.gradient_at(w, b, optim.valley_points())[0]`.

# %%
def my_finite_difference(w, b):
    # return (dL/dw, dL/db) as two floats
    raise NotImplementedError


my_finite_difference = checks.check_exercise("02.finite_difference", my_finite_difference)
_, gw, gb = optim.gradient_at(1.0, -2.0, pts)
checks.check_close("finite differences agree with backprop",
                   my_finite_difference(1.0, -2.0), (gw, gb), rtol=1e-5)

# %% [markdown]
# ## Summary
#
# - Backprop is the chain rule applied once per node, from the loss back to the inputs;
#   a 100-line engine matches `torch.autograd` to 1e-9.
# - The loop is predict → compare → loss → update; the learning rate has a hard limit
#   (2/λ_max on a quadratic) above which the loss explodes.
# - AdamW keeps two extra numbers per parameter: with FP32 weights and gradients that is
#   16 bytes per parameter before activations.
# - Backward ≈ 2 × forward FLOPs (two matmuls per linear layer), hence ≈ 6·N·D per
#   training run.
# - Pre-training and SFT imitate a right answer; RL optimises a reward instead
#   (notebook 16).
#
# **Next:** [03 · How many GB do I need?](03_memory.ipynb)
