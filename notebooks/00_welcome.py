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
# # 00 · Welcome: a DJ with two knobs
#
# > **You will** learn how this course works, and turn the first two "knobs" of a model
# > by hand before letting gradient descent turn them for you.
# > **Before this:** nothing but a little Python.
# > **Time:** 10 minutes.
#
# This course explains how a frontier mixture-of-experts model such as DeepSeek-V3 is
# trained and served: the transformer block, backprop, memory, parallelism, training
# time and cost, communication, pipeline bubbles, expert routing, FP8, the KV cache,
# multi-token prediction. Every idea comes with sliders, and every slider drives a
# **real computation** — a real attention pass, a real training run, real FP8
# rounding — never a canned animation. At the end the pieces are assembled into one
# tiny DeepSeek that trains on a laptop.

# %% [markdown]
# ## 1. Where am I running?
#
# On a laptop CPU the course runs at **toy size**: small models that train in seconds.
# On a CUDA GPU it switches to **realistic size** (DeepSeek-V3 widths, long contexts).
# You can force either with the environment variable `COURSE_SIZE=toy` or
# `COURSE_SIZE=realistic` before starting JupyterLab.

# %%
from course import checks, device, turntable
from course.widgets.welcome import turntable_widget

print(device.describe())
device.seed_everything(0)
assert device.size() in ("toy", "realistic")

# %% [markdown]
# ## 2. Training is turning knobs
#
# Picture a DJ at a turntable with billions of knobs. The DJ listens to the music
# (the **loss**: how wrong the model is) and turns knobs (the **weights**) until it
# sounds right. The **gradient** says which way to turn each knob, and how hard.
#
# Our turntable has two knobs, a slope `w` and an offset `b`, and the "music" is how
# well the line `y = w·x + b` fits 30 noisy points. The loss is the mean squared error.

# %%
pts = turntable.make_points()
print(f"knobs at (0, 0): loss {turntable.loss(0, 0, pts):.3f}")
print(f"knobs at (2, 1): loss {turntable.loss(2, 1, pts):.3f}")
assert turntable.loss(2, 1, pts) < turntable.loss(0, 0, pts)

# %% [markdown]
# The gradient points uphill, so we turn each knob a little **against** it:
# `w ← w − lr · ∂L/∂w`. Repeat, and the knobs settle where the loss is lowest.
# For a line that lowest point also has a closed form (least squares), so we can
# check that gradient descent really finds it.

# %%
path = turntable.descend(0.0, 0.0, pts, lr=0.1, steps=200)
w_best, b_best = turntable.best_fit(pts)
print(f"gradient descent: w = {path[-1, 0]:.4f}, b = {path[-1, 1]:.4f}")
print(f"least squares:    w = {w_best:.4f}, b = {b_best:.4f}")
checks.check_close("gradient descent reaches the least-squares slope", path[-1, 0], w_best,
                    rtol=1e-4)
checks.check_close("... and offset", path[-1, 1], b_best, rtol=1e-4)

# %% [markdown]
# ## 3. Try it yourself
#
# Move the knobs and watch the loss. Then press the button and let gradient descent
# turn them, ten small steps at a time.
#
# - Can you beat a loss of 0.3 by hand?
# - Where does the sentence under the sliders tell you to turn each knob, and why?
# - Press the button from a bad start (w = −3): does it still find the line?

# %%
# NBVAL_IGNORE_OUTPUT
live = turntable_widget()
live

# %% [markdown]
# ## 4. Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("00.mean_squared_error"))` reveals a solution.
#
# **Exercise 1.** Write the loss: the mean of the squared differences between the
# line's predictions and the points.

# %%
def my_loss(w, b, x, y):
    # x, y: numpy arrays of shape (n,); return a float
    raise NotImplementedError


my_loss = checks.check_exercise("00.mean_squared_error", my_loss)

# %% [markdown]
# **Exercise 2.** At `w = 0, b = 0` the line is flat and below most points. Should
# gradient descent turn knob `b` up or down? Answer `"up"` or `"down"`.

# %%
answer = None  # "up" or "down"
passed = checks.check_answer("00.which_way_b", answer)

# %% [markdown]
# ## 5. Your progress
#
# Exercises you pass are remembered in a small file on this machine
# (`~/.course_progress.json`), so this table survives a restart.

# %%
from course import exercises, progress

rows = progress.table({n: e.notebook for n, e in exercises.all_exercises().items()})
for nb, passed, total in rows:
    print(f"notebook {nb}: {passed}/{total} exercises passed")

# %% [markdown]
# ## Summary
#
# - Training is trial and error: predict, compare, measure the loss, turn the knobs.
# - The gradient says which way and how hard to turn each knob; gradient descent
#   follows it downhill.
# - Every slider in this course drives a real computation, at toy size on a CPU and
#   at realistic size on a GPU.
#
# **Next:** [01 · The transformer block](01_transformer_block.ipynb) — what the knobs
# of a language model actually compute.
