"""Exercises of notebook 07 · DualPipe and pipeline bubbles."""

from course.exercises import Exercise, register
from course.pipeline import simulate

#: the chunk times of the notebook's DualPipe section (F, B, W, F&B)
TIMES = dict(f=1.0, b=2.0, w=1.0, fb=2.5)
SMALL_W = dict(f=1.0, b=2.0, w=0.2, fb=2.5)
SCHEDULES = ("1f1b", "zb1p", "dualpipe")


def bubble_1f1b(pp: int, f: float, b: float) -> float:
    # the last micro-batch's forward and its backward each cross the other PP-1 stages
    return (pp - 1) * (f + b)


register(Exercise(
    name="07.bubble_1f1b", notebook="07",
    prompt="The idle time per device of 1F1B with pp stages, forward time f, backward time b.",
    hint="The last micro-batch's forward and backward each cross PP-1 stages.",
    reference=bubble_1f1b,
    oracle=lambda pp, f, b: simulate("1f1b", pp, 2 * pp, f=f, b=b).bubble,
    cases=lambda: [(4, 1.0, 2.0), (16, 1.0, 2.0), (7, 0.5, 1.3)],
    wrong=lambda pp, f, b: pp * (f + b),  # counts PP stages, not PP-1
))


def _smallest_bubble() -> str:
    return min(SCHEDULES, key=lambda n: simulate(n, 8, 32, **SMALL_W).bubble)


register(Exercise(
    name="07.smallest_bubble_small_w", notebook="07",
    prompt="PP = 8, F = 1, B = 2, W = 0.2, F&B = 2.5, 32 micro-batches: which of '1f1b', "
           "'zb1p' and 'dualpipe' has the smallest bubble per device?",
    hint="Compare 7(F+B-2W) with 3(F&B+B-3W).",
    expected=_smallest_bubble, wrong="zb1p",  # the name promises zero bubble
))


register(Exercise(
    name="07.dualpipe_peak_activations", notebook="07",
    prompt="At PP = 16, how many micro-batches of activations does the busiest DualPipe "
           "device store at once?",
    hint="One more than 1F1B's, which stores PP.",
    expected=lambda: max(simulate("dualpipe", 16, 32, **TIMES).peak_activations),
    wrong=16, rtol=0,  # 1F1B's PP
))


def _ramp_start_share() -> float:
    from course import parallel

    m = parallel.v3_microbatches(parallel.V3_BATCH["start"])  # 3,072 / 128 = 24
    return simulate("1f1b", 16, m, f=1.0, b=2.0).bubble_fraction


register(Exercise(
    name="07.ramp_start_1f1b_share", notebook="07",
    prompt="1F1B bubble share of the step at PP = 16, F = 1, B = 2, with 3,072 / 128 = 24 "
           "micro-batches per pipeline.",
    hint="Bubble (PP-1)(F+B) per device; busy time M(F+B); share = bubble / (busy + bubble).",
    expected=_ramp_start_share, wrong=0.319, rtol=0.01,  # 32 micro-batches' share
))


def bubble_interleaved(pp: int, m: int, v: int, f: float, b: float) -> float:
    # the fill and drain staircases cross PP-1 devices, each step now one chunk: f/v, b/v
    return (pp - 1) * (f + b) / v


register(Exercise(
    name="07.bubble_interleaved", notebook="07",
    prompt="The idle time per device of interleaved 1F1B: pp devices, m micro-batches (a "
           "multiple of pp), v chunks per device, f and b a whole stage's times.",
    hint="The staircase still has PP-1 steps, but each step is one chunk, 1/v of a stage.",
    reference=bubble_interleaved,
    oracle=lambda pp, m, v, f, b: simulate("interleaved", pp, m, f=f, b=b, virtual=v).bubble,
    cases=lambda: [(4, 8, 2, 1.0, 2.0), (8, 16, 4, 1.0, 2.0), (6, 18, 3, 0.7, 1.9)],
    wrong=lambda pp, m, v, f, b: (pp - 1) * (f + b),  # 1F1B's: forgets the chunks
))
