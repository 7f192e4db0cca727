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
# # 07 · DualPipe and pipeline bubbles
#
# > **You will** watch a pipeline of GPUs sit idle, then remove most of that
# > idle time step by step: 1F1B, zero-bubble, Megatron-LM's interleaving and
# > DeepSeek's DualPipe and DualPipeV. Every
# > chart comes from a real simulation of the schedule, checked against the
# > published formulas, and run with times measured on your own machine.
# > **Before this:** [04 · Parallelism](04_parallelism.ipynb) (pipeline
# > parallelism) and [02 · Backprop](02_backprop.ipynb) (forward and backward).
# > **Time:** about 35 minutes.
#
# Pipeline parallelism cuts the model's layers into **stages**, one per device
# (DeepSeek-V3 uses 16). A batch is split into **micro-batches** that flow
# through the stages like cars on an assembly line. The catch: a stage can only
# work on a micro-batch once the stage before it has finished with it. The time
# devices spend waiting is the **bubble**.

# %%
from course import checks, device, pipeline, pipeline_real, pipeline_timing
from course.model import make_block
from course.pipeline import simulate
from course.plots import pipeline as plots
from course.presets import preset
from course.train import tiny_config

device.seed_everything(0)
print(device.describe())

# %% [markdown]
# ## 1. Why pipelines idle: GPipe
#
# `pipeline.simulate` is a discrete-event simulator. Each device runs its list
# of operations in order; an operation starts when its device is free **and**
# its inputs exist: a forward `F` needs the previous stage's forward of the
# same micro-batch, a backward `B` needs the next stage's backward. Times are
# in units you choose; here a forward takes 1 and a backward 2 (a backward does
# about twice the matmuls).
#
# GPipe runs every forward, then every backward. Hover over a bar to see its
# micro-batch.

# %%
PP, M = 4, 8
gpipe = simulate("gpipe", PP, M, f=1.0, b=2.0)
plots.gantt(gpipe).show()
checks.check_close("GPipe bubble = (PP-1)(F+B)", gpipe.bubble, (PP - 1) * 3.0)
checks.check_close("GPipe stores all M micro-batches",
                   max(gpipe.peak_activations), M)

# %% [markdown]
# The staircase at the start (the pipeline filling) and at the end (draining)
# is the bubble: every device idles (PP−1)(F+B) = 9 time units. GPipe also
# stores the activations of **all** M micro-batches before the first backward
# frees any.

# %% [markdown]
# ## 2. 1F1B: the same bubble, far less memory
#
# 1F1B starts the backward of a micro-batch as soon as it can, then alternates
# one forward, one backward. Stage i keeps only PP−i micro-batches in flight.

# %%
one_f = simulate("1f1b", PP, M, f=1.0, b=2.0)
plots.gantt(one_f).show()
checks.check_close("1F1B bubble = (PP-1)(F+B)", one_f.bubble, (PP - 1) * 3.0)
checks.check_close("1F1B peak activations per device",
                   one_f.peak_activations, (4, 3, 2, 1))

# %% [markdown]
# The bubble did not shrink, but memory went from M to PP micro-batches. The
# bubble is a fixed cost per step, so it is usually fought with *more*
# micro-batches: the busy time grows with M, the idle time does not.

# %%
for m in (4, 8, 32, 128):
    tl = simulate("1f1b", PP, m, f=1.0, b=2.0)
    print(f"M = {m:3d}: bubble {tl.bubble:.1f}, "
          f"{tl.bubble_fraction:.1%} of the step")
    assert tl.bubble == one_f.bubble

# %% [markdown]
# ## 3. Zero bubble: split the backward in two
#
# A backward computes two things: the gradient for the **input** (the previous
# stage is waiting for it) and the gradient for the **weights**, `W`, which
# nobody waits for until the optimizer step. ZB-H1 (Qi et al., 2023) sends the
# input gradient on at once and does `W` later, in the gaps. In DeepSeek's
# notation B is the *full* backward, so the input part takes B − W.

# %%
zb = simulate("zb1p", PP, M, f=1.0, b=2.0, w=1.0)
plots.gantt(zb).show()
checks.check_close("ZB1P bubble = (PP-1)(F+B-2W)", zb.bubble,
                   pipeline.published_bubble("zb1p", PP, f=1.0, b=2.0, w=1.0))
checks.check_close("ZB1P stores PP micro-batches",
                   max(zb.peak_activations), PP)

# %% [markdown]
# The bubble fell from 9 to 3. The later stages hold back their `W`s so that
# they still have work while the last gradients travel back to stage 0.

# %% [markdown]
# ## 4. DualPipe: feed the pipeline from both ends
#
# DeepSeek-V3 (§3.2.1) goes further. Device i holds **two** stages, i and
# PP−1−i, so micro-batches can enter from both ends at once: direction 0 runs
# down the devices, direction 1 runs up. In the middle of the step each device
# runs the forward of one micro-batch **overlapped** with the backward of
# another (`F&B`, shorter than F + B because the communication of one hides
# behind the computation of the other). The program of each device is
# transcribed from the eight steps of `DualPipe.step` in DeepSeek's reference
# code. Below: the paper's Figure 5 shape, 8 devices and 20 micro-batches, with
# F&B = 2.5 instead of 3.

# %%
times = dict(pipeline.CHUNK_TIMES)  # f=1, b=2, w=1, fb=2.5
dual = simulate("dualpipe", 8, 20, **times)
plots.gantt(dual).show()
formula = pipeline.published_bubble("dualpipe", 8, **times)
checks.check_close("worst device = (PP/2-1)(F&B+B-3W)",
                   max(dual.idle), formula)
checks.check_close("two stages of parameters per device",
                   max(dual.params_per_device), 2)
checks.check_close("DualPipe stores PP+1 micro-batches",
                   max(dual.peak_activations), 8 + 1)

# %% [markdown]
# Three prices are paid for the smaller bubble: every device keeps **two**
# stages of parameters (2×; cheap for DeepSeek because each device holds only a
# slice of the experts), one more micro-batch of activations (PP+1), and an
# even number of stages and at least 2×PP micro-batches (the simulator refuses
# other shapes).

# %% [markdown]
# > **Check the claim: "DualPipe leaves GPUs with near-zero idle time."** At
# > DeepSeek-V3's PP = 16 the bubble is (PP/2−1)(F&B+B−3W): smaller than 1F1B's
# > (PP−1)(F+B), but not zero. With the times above and DeepSeek-V3's 120
# > micro-batches per pipeline (notebook 04: 15,360 sequences over 128 pipelines, one
# > sequence per micro-batch assumed):

# %%
from course.parallel import v3_microbatches

m_v3 = v3_microbatches()
checks.check_close("micro-batches per pipeline: 15,360 sequences / 128 DP", m_v3, 15360 / 128)
for name in ("1f1b", "zb1p", "dualpipe"):
    tl = simulate(name, 16, m_v3, **times)
    print(f"{name:9s} bubble {tl.bubble:5.2f} per device, "
          f"{tl.bubble_fraction:.1%} of the step")
v3_dual = simulate("dualpipe", 16, m_v3, **times)
assert 0 < v3_dual.bubble < simulate("1f1b", 16, m_v3, **times).bubble

# %% [markdown]
# ## 5. Where the simulation and the formula disagree
#
# The published table is a formula; the simulator is the schedule itself. They
# agree above, but not everywhere, and the reasons are instructive.
#
# **(a) The table describes the worst device.** With F&B < F + B, devices
# differ: a middle device runs more overlapped pairs than an end device, so it
# finishes its work sooner and waits longer. The table's number is the middle
# devices'; the average over devices (our `bubble`) is lower.

# %%
print("idle per device:", [round(x, 2) for x in dual.idle])
print(f"average {dual.bubble:.3f}, worst {max(dual.idle):.3f}, "
      f"formula {formula:.3f}")
assert dual.bubble < max(dual.idle) == formula

# %% [markdown]
# **(b) The formulas assume balanced chunks.** They are counted on the picture
# of the ZeroBubble paper, where the input-gradient part of a backward takes as
# long as a forward (B − W = F) and a `W` fits in the gap left for it (W ≤ F).
# The tests of `course.pipeline` confirm, on randomly drawn shapes, that
# DualPipe's formula is exact whenever those two hold, and ZB1P's whenever
# W ≤ F and W ≤ B − W. Off balance the gaps change length. Three examples:

# %%
cases = [("dualpipe", dict(f=1.0, b=3.0, w=0.0)),  # B - W = 3 > F
         ("dualpipe", dict(f=2.0, b=2.0, w=1.0)),  # B - W = 1 < F
         ("zb1p", dict(f=1.0, b=3.0, w=2.0))]      # W > F: the formula says 0
sims = [simulate(s, 4, 12, **t).bubble for s, t in cases]
pubs = [pipeline.published_bubble(s, 4, **t) for s, t in cases]
names = [f"{s} F={t['f']:g} B={t['b']:g} W={t['w']:g}" for s, t in cases]
plots.formula_bars(names, sims, pubs).show()
assert all(abs(s - p) > 0.4 for s, p in zip(sims, pubs))

# %% [markdown]
# The last case shows why no formula can be trusted outside its assumptions:
# ZB1P's formula gives **0**, yet the last stage cannot start before the first
# micro-batch has crossed the three stages before it, so it idles at least
# (PP−1)·F = 3.

# %%
zb_off = simulate("zb1p", 4, 12, f=1.0, b=3.0, w=2.0)
assert min(zb_off.idle) >= (4 - 1) * 1.0
print("ZB1P idle per device:", zb_off.idle)

# %% [markdown]
# ## 6. Bubbles do not grow with the number of micro-batches
#
# All four schedules pay a fixed bubble per step, so its *share* of the step
# falls as micro-batches are added. DualPipe starts at 2×PP micro-batches and
# stays lowest.

# %%
ms = list(range(2, 65, 2))
names = ("gpipe", "1f1b", "zb1p", "dualpipe")
fractions = pipeline.bubble_sweep(names, 8, ms, **times)
plots.bubble_curves(ms, fractions, "8 stages, F=1, B=2, W=1, F&B=2.5").show()
for name in names:
    bubbles = {round(simulate(name, 8, m, **times).bubble, 9)
               for m in (16, 32, 64)}
    assert len(bubbles) == 1, name
assert all(fractions["dualpipe"][i] < min(fractions[n][i] for n in names[:3])
           for i, m in enumerate(ms) if m >= 16)

# %% [markdown]
# One assumption hides in all of this: messages between devices arrive
# instantly. Give each hop a delay (`comm=`) and the steady state of 1F1B and
# DualPipe must wait for it on every round trip, so their bubble **grows** with
# M, while GPipe pays it only while filling and draining (and ZB1P's deferred
# W's happen to absorb a delay this small). Exposed communication breaks the
# table; that is why DualPipe hides it inside F&B (next section).

# %%
for name in names:
    row = [simulate(name, 4, m, **times, comm=0.1).bubble for m in (8, 16, 32)]
    print(f"{name:9s}", [round(x, 2) for x in row])
    if name in ("1f1b", "dualpipe"):
        assert row[0] < row[1] < row[2]
    if name == "gpipe":
        assert max(row) - min(row) < 1e-9

# %% [markdown]
# ## 7. Inside a DualPipe chunk pair: hiding the communication
#
# In DeepSeek-V3 each chunk is attention, an all-to-all **dispatch** of tokens
# to their experts, the expert MLP, and an all-to-all **combine** back; across
# nodes the communication takes about as long as the computation (≈ 1:1). Run
# one after the other, a forward chunk and a backward chunk leave each stream
# idle half the time. Overlapped, the compute stream works on one chunk while
# the communication stream moves the other's tokens. (The exact order of
# DeepSeek's pieces is only drawn in their Figure 4; this is one plausible
# greedy arrangement.)

# %%
seq = pipeline_timing.overlap_pair(overlap=False)
both = pipeline_timing.overlap_pair(overlap=True)
plots.streams(seq, "one after the other").show()
plots.streams(both, "overlapped: F&B").show()
f_chunk = 4.0  # attention + dispatch + MLP + combine, 1 each
b_chunk = 6.0  # compute twice as long (2 + 2), the same communication (1 + 1)
pair = pipeline_timing.pair_time(both)
checks.check_close("sequential pair = F + B", pipeline_timing.pair_time(seq),
                   f_chunk + b_chunk)
assert pair < pipeline_timing.pair_time(seq)

# %% [markdown]
# Feed these chunk times to the simulator: the overlap shrinks both the step
# and the bubble, which is the whole point of "Dual": two directions give every
# device a forward and a backward to pair up.

# %%
for fb in (f_chunk + b_chunk, pair):
    tl = simulate("dualpipe", 8, 20, f=f_chunk, b=b_chunk, fb=fb)
    print(f"F&B = {fb:4.1f}: step {tl.makespan:6.1f}, bubble {tl.bubble:5.1f}")
plain = simulate("dualpipe", 8, 20, f=f_chunk, b=b_chunk)
faster = simulate("dualpipe", 8, 20, f=f_chunk, b=b_chunk, fb=pair)
assert faster.makespan < plain.makespan

# %% [markdown]
# ## 8. Interleaved 1F1B: thinner steps, more messages
#
# Megatron-LM's answer to the bubble (Narayanan et al. 2021, "Efficient
# Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
# §2.2.2) keeps 1F1B but cuts each device's layers into **v chunks** that are
# not neighbours: with PP = 4 and v = 2 the model is 8 chunks and device d
# holds chunks d and d + 4, so a micro-batch goes round the devices twice. F
# and B stay a whole stage's times; one chunk takes F/v and B/v. Each step of
# the fill and drain staircase is now one chunk, so the paper's bubble is
# (PP−1)(F+B)/v, stated for micro-batches that are a multiple of PP (the
# simulator refuses other shapes when v > 1).

# %%
inter = simulate("interleaved", PP, M, f=1.0, b=2.0, virtual=2)
plots.gantt(inter).show()
for v in (1, 2, 4):
    tl = simulate("interleaved", PP, M, f=1.0, b=2.0, virtual=v)
    formula = pipeline.published_bubble("interleaved", PP, f=1.0, b=2.0, virtual=v)
    checks.check_close(f"v = {v}: bubble = (PP-1)(F+B)/v", tl.bubble, formula)
    print(f"v = {v}: worst device idles {max(tl.idle):.3g}, "
          f"{tl.sends_per_microbatch:g} sends per micro-batch")
assert simulate("interleaved", PP, M, virtual=1).events == one_f.events  # v = 1 is 1F1B

# %% [markdown]
# The price is communication. A micro-batch now crosses PP·v − 1 device
# boundaries on the way down and as many on the way back: 2(PP·v − 1) sends
# instead of 1F1B's 2(PP − 1), about v times more. The parameters per device
# do not change (v chunks of 1/v of a stage), and activations grow a little:
# device 0 warms up with 2(PP−1) + (v−1)PP chunk forwards (Megatron-LM's rule),
# so it holds (PP·v + PP − 1)/v stages' worth instead of PP.

# %%
checks.check_close("sends per micro-batch = 2(PP*v - 1)",
                   inter.sends_per_microbatch, 2 * (PP * 2 - 1))
checks.check_close("parameters per device: still one stage",
                   max(inter.params_per_device), 1.0)
checks.check_close("device 0 stores (PP*v + PP - 1)/v micro-batches",
                   max(inter.peak_activations), (PP * 2 + PP - 1) / 2)

# %% [markdown]
# **Where the formula stops holding.** It counts compute only. Give each hop a
# delay, as in section 6. Plain 1F1B (v = 1) then grows with M, as there. With
# v ≥ 2 and a small delay, the deep warm-up hides it from the steady state (the
# bubble does not grow with M), but every device pays one delay per hop of a
# round trip: (PP−1)(F+B)/v + 2(PP·v−1)·comm.
# So v has a best value; past it the extra hops cost more than the thinner steps
# save, and with a longer delay the bubble grows with M again. (Shapes that are
# not a multiple of PP are the other limit: Megatron-LM's order then deadlocks
# or idles longer; `tests/test_pipeline.py` shows both.)

# %%
for comm in (0.1, 0.5):
    for v in (1, 2, 3, 4, 8):
        row = [simulate("interleaved", PP, m, virtual=v, comm=comm).bubble
               for m in (16, 32)]
        law = pipeline.published_bubble("interleaved", PP, virtual=v) + 2 * (PP * v - 1) * comm
        print(f"comm {comm}, v = {v}: bubble at M = 16, 32: "
              f"{row[0]:5.2f}, {row[1]:5.2f}  (formula + hops: {law:5.2f})")
checks.check_close("comm 0.1, v = 2: (PP-1)(F+B)/v + 2(PP*v-1)comm",
                   simulate("interleaved", PP, 16, virtual=2, comm=0.1).bubble,
                   3 * 3.0 / 2 + 2 * 7 * 0.1)

# %% [markdown]
# ## 9. At equal parameter memory: interleaving, DualPipe, DualPipeV
#
# Compare on the **same four devices**, each holding a quarter of the model
# (the chunk times of section 4: F = 1, B = 2, W = 1, F&B = 2.5 for a quarter).
#
# * **1F1B** and **interleaved** (v = 2) hold 1× parameters.
# * **DualPipe** holds stages i and PP−1−i on device i: every stage sits on two
#   devices, one per direction, so it keeps **2×** parameters (and the two
#   copies' gradients must be summed).
# * **DualPipeV** (the DualPipe repository's "cut-in-half" schedule, from Sea AI
#   Lab; `dualpipe/dualpipev.py`) folds one pipeline into a V: the model is cut
#   into 2 × 4 = 8 stages and device i holds stages i and 7 − i. Every stage is
#   stored once, so parameters are back to 1×; the schedule is DualPipe's eight
#   steps, so its bubble is DualPipe's formula counted in these half-size stages.

# %%
D, M_eq = 4, 16
half = {k: t / 2 for k, t in times.items()}  # a DualPipeV stage is half a device's layers
runs = {"1f1b": simulate("1f1b", D, M_eq, **times),
        "interleaved v=2": simulate("interleaved", D, M_eq, **times, virtual=2),
        "dualpipe": simulate("dualpipe", D, M_eq, **times),
        "dualpipev": simulate("dualpipev", 2 * D, M_eq, **half)}
share = {n: max(tl.params_per_device) * D / tl.stages for n, tl in runs.items()}
for n, tl in runs.items():
    print(f"{n:16s} {tl.devices} devices, {share[n]:g}x parameters, worst idle "
          f"{max(tl.idle):.3g}, {tl.sends_per_microbatch:g} sends per micro-batch")
plots.tradeoff(list(runs), [max(tl.idle) for tl in runs.values()],
               [tl.sends_per_microbatch for tl in runs.values()], list(share.values()),
               "Four devices, one model: bubble against communication").show()
checks.check_close("DualPipeV worst device = (PP/2-1)(F&B+B-3W), PP = 2D half stages",
                   max(runs["dualpipev"].idle), (D - 1) * (2.5 + 2.0 - 3.0) / 2)

# %% [markdown]
# Read the picture. Interleaving halves 1F1B's bubble for 2.3× the sends.
# DualPipeV does better on both axes than interleaving with v = 2 at the same
# 1× parameters: its bubble also has the W deferral and the F&B overlap, and its
# fold keeps the V's turn (stages 3 and 4) on one device, one hop fewer per
# direction. DualPipe has the smallest bubble of all, but pays for it with twice
# the parameters.
#
# "The same bubble on half the devices" is the other way to read DualPipeV:
# with the **same** stages and chunk times, it runs DualPipe's schedule with the
# same worst-device bubble on PP/2 devices instead of PP.

# %%
dp, dv = simulate("dualpipe", 8, 20, **times), simulate("dualpipev", 8, 20, **times)
print(f"DualPipe: {dp.devices} devices; DualPipeV: {dv.devices} devices")
checks.check_close("DualPipeV: DualPipe's worst-device bubble on half the devices",
                   max(dv.idle), max(dp.idle))

# %% [markdown]
# What DualPipeV saves: the duplicate copy of every stage (its memory, and the
# gradient all-reduce between the two copies), or, read the other way, half
# the devices of the pipeline. What it keeps: DualPipe's eight-step schedule,
# its F&B overlap, PP + 1 micro-batches of activations per device (counted in
# its own, half-size stages) and a need for at least as many micro-batches as
# stages. What it does not do: feed the pipeline from both ends; all
# micro-batches enter and leave at device 0 (the loss is computed there too).

# %% [markdown]
# ## 10. With your machine's numbers
#
# Now the times come from a real block of the course's tiny model: the forward,
# the full backward (`torch.autograd.grad` for the input **and** the weights),
# its input part alone (`torch.autograd.grad` for the input only, which skips
# the weight-gradient matmuls; W is the difference), and the forward of one
# micro-batch run at the same time as the backward of another, on two threads
# (on a GPU, two CUDA streams).
# Each is the best of several runs (your neighbours' work only adds time).

# %%
sizes = preset("pipeline")
block = make_block(tiny_config(), 0).to(device.device())
measured = pipeline_timing.measure_chunk_times(block, **sizes)
mine = measured.for_simulator()  # milliseconds
print({k: f"{v:.3f} ms" for k, v in mine.items()})
assert 0 <= mine["w"] < mine["b"] and mine["fb"] <= mine["f"] + mine["b"]

# %%
names = ("gpipe", "1f1b", "zb1p", "dualpipe")
runs = {n: simulate(n, 8, 32, **mine) for n in names}
plots.formula_bars(
    names, [runs[n].bubble for n in names],
    [pipeline.published_bubble(n, 8, **mine) for n in names],
    "Bubble per device with this machine's F, B, W, F&B (ms)").show()
assert runs["dualpipe"].bubble < runs["1f1b"].bubble

# %%
b_input = mine["b"] - mine["w"]
print(f"F = {mine['f']:.3f} ms, input part B - W = {b_input:.3f} ms, "
      f"W = {mine['w']:.3f} ms")

# %% [markdown]
# Where your B − W is far from F, or W larger than F, the bars for ZB1P and
# DualPipe part from the formula, for reason (b) above; where they are close,
# the bars agree. Trust the simulation: it runs the schedule. (On a busy
# machine these timings are noisy; run the cell again and watch which
# conclusions survive.)

# %% [markdown]
# ## 11. Optional: a real 1F1B pipeline on your CPU
#
# `pipeline_real.run_1f1b` starts one process per stage (torch.distributed with
# the gloo backend), gives each a block of the tiny model, and runs the very
# 1F1B program the simulator runs, sending activations and gradients between
# processes. It takes 10–40 s (starting processes is slow), so it is off by
# default: set `RUN_REAL = True` and run the cell. The measured idle time per
# rank sits beside the simulator's, fed with the run's own median F and B.
# Expect the measured idle to be a little larger and uneven: real messages take
# time, and other programs share your cores.

# %%
RUN_REAL = False
if RUN_REAL:
    real = pipeline_real.run_1f1b(3, 6, batch=sizes["batch"],
                                  seq_len=sizes["seq_len"])
    twin = simulate("1f1b", 3, 6, **pipeline_real.median_times(real))
    plots.gantt(real, x_title="time (ms, measured)").show()
    plots.gantt(twin, x_title="time (ms, simulated)").show()
    print("idle per rank, measured: ", [f"{t:.0f}" for t in real.idle])
    print("idle per rank, simulated:", [f"{t:.0f}" for t in twin.idle])

# %% [markdown]
# ## 12. Try it yourself
#
# Pick a schedule and drag the sliders; the Gantt chart is re-simulated each
# time.
#
# * With `1f1b`, double the micro-batches. Does the bubble change? Its share?
# * With `zb1p`, raise W from 0 towards F. Where do the gaps go? What happens
#   when W passes F?
# * With `dualpipe`, lower F&B from F + B to B. Which devices gain most?
# * With `interleaved`, set the micro-batches to 16 (a multiple of PP = 8) and
#   move v from 1 to 4. How do the bubble and the sends per micro-batch change?

# %%
# NBVAL_IGNORE_OUTPUT
from course.widgets.pipeline import pipeline_gantt

live = pipeline_gantt()
live

# %% [markdown]
# ## Exercises
#
# Each exercise is checked by `course.checks`. Leave the stub as it is and the notebook
# still runs (it uses the reference); write your answer and run the cell again.
# Stuck? `print(checks.solution("07.bubble_1f1b"))` reveals a solution.
#
# **1.** Write `bubble_1f1b(pp, f, b)`: the idle time per device of 1F1B, from
# the staircase you saw in section 2.

# %%
def bubble_1f1b(pp, f, b):
    raise NotImplementedError  # your code here


bubble_1f1b = checks.check_exercise("07.bubble_1f1b", bubble_1f1b)
assert bubble_1f1b(4, 1.0, 2.0) == simulate("1f1b", 4, 12).bubble

# %% [markdown]
# **2.** PP = 8, F = 1, B = 2, and the weight part W is only 0.2. Which
# schedule has the smallest bubble per device: `"1f1b"`, `"zb1p"` or
# `"dualpipe"` (F&B = 2.5, 32 micro-batches)? Predict, then replace `...` with
# its name.

# %%
prediction = ...
passed = checks.check_answer("07.smallest_bubble_small_w", prediction)

# %% [markdown]
# **3.** At DeepSeek-V3's PP = 16, how many micro-batches of activations does
# the busiest DualPipe device store at once? Replace `...` with a number.

# %%
answer = ...
passed = checks.check_answer("07.dualpipe_peak_activations", answer)

# %% [markdown]
# **4.** At the start of its batch ramp DeepSeek-V3 had 3,072 sequences per step over 128
# pipelines. With one sequence per micro-batch, what share of the step would **1F1B**'s
# bubble take at PP = 16 (F = 1, B = 2)? Replace `...` with a fraction (0.3, not 30%).

# %%
answer = ...
passed = checks.check_answer("07.ramp_start_1f1b_share", answer)

# %% [markdown]
# **5.** Write `bubble_interleaved(pp, m, v, f, b)`: the idle time per device of
# interleaved 1F1B with `v` chunks per device (`m` a multiple of `pp`; `f`, `b`
# a whole stage's times).

# %%
def bubble_interleaved(pp, m, v, f, b):
    raise NotImplementedError  # your code here


bubble_interleaved = checks.check_exercise("07.bubble_interleaved", bubble_interleaved)

# %% [markdown]
# ## Summary
#
# * A pipeline idles while it fills and drains: (PP−1)(F+B) per device for
#   GPipe and 1F1B, whatever the number of micro-batches; 1F1B just needs less
#   memory.
# * Deferring the weight-gradient part W fills gaps (ZB1P); DualPipe also feeds
#   both ends and overlaps forward with backward, cutting the bubble to
#   (PP/2−1)(F&B+B−3W), for 2× parameters and PP+1 activations. Not zero.
# * Interleaved 1F1B (v chunks per device) divides the bubble by v, exactly
#   (PP−1)(F+B)/v when micro-batches are a multiple of PP, for 2(PP·v−1)
#   sends per micro-batch instead of 2(PP−1); slow messages set a best v.
# * At equal parameters (1×), DualPipeV beats interleaving with v = 2 on both
#   bubble and sends; DualPipe's smaller bubble costs 2× parameters. DualPipeV is
#   DualPipe's bubble on half the devices.
# * The published formulas hold for balanced chunks (B − W = F, W ≤ F) and
#   describe the worst device; a simulation of the schedule is the honest
#   answer elsewhere.
#
# **Next:** [08 · MoE routing collapse](08_moe_collapse.ipynb): when a few
# experts get all the tokens, whole GPUs sit idle for a different reason.
