"""Exercises of notebook 13 · The bill, and what it means."""

from dataclasses import replace
from functools import lru_cache

from course import compute, planner
from course.configs import gpu
from course.exercises import Exercise, register


@lru_cache(maxsize=1)
def _v3_plan() -> planner.Plan:
    return planner.plan(planner.PRESETS["DeepSeek-V3"])


def step_seconds(compute_s: float, comm_s: float, overlap: bool) -> float:
    # overlapped (DualPipe), the slower of the two sets the pace; otherwise they add up
    return max(compute_s, comm_s) if overlap else compute_s + comm_s


def _step_cases() -> list[tuple]:
    p = _v3_plan()
    return [(p.compute_s, p.comm_s, True), (p.compute_s, p.comm_s, False),
            (p.comm_s, p.compute_s, True)]


register(Exercise(
    name="13.step_seconds", notebook="13",
    prompt="The time of one training step from its compute and communication seconds, with "
           "or without overlap.",
    hint="Overlapped: the slower of the two; otherwise one after the other.",
    reference=step_seconds, cases=_step_cases,
    oracle=lambda c, m, o: replace(_v3_plan(), compute_s=c, comm_s=m).step_s(o),
    wrong=lambda c, m, o: c + m,  # never overlaps
))


def fits(memory: dict, gpu_gb: float) -> bool:
    return sum(memory.values()) <= gpu_gb * 1e9  # decimal GB, as GPU datasheets count


def _fits_cases() -> list[tuple]:
    p = _v3_plan()
    gb = gpu(p.setup.gpu_name).memory_gb
    half_and_more = {"weights": 0.6 * gb * 1e9, "activations": 0.6 * gb * 1e9}
    return [(p.memory, gb), (p.memory, gb / 2), ({"weights": (gb + 1) * 1e9}, gb),
            (half_and_more, gb)]


register(Exercise(
    name="13.fits", notebook="13",
    prompt="Does a dict of per-GPU bytes fit in a GPU of gpu_gb decimal gigabytes?",
    hint="Add the parts and compare with gpu_gb x 1e9 bytes.",
    reference=fits, cases=_fits_cases,
    oracle=lambda m, g: replace(_v3_plan(), memory=m, gpu_bytes=g * 1e9).fits,
    wrong=lambda m, g: max(m.values()) <= g * 1e9,  # checks the largest part only
))


register(Exercise(
    name="13.price_for_10m", notebook="13",
    prompt="At what price per GPU-hour would DeepSeek-V3's 2.788 M GPU-hours cost $10 M?",
    hint="dollars = GPU-hours x price.",
    expected=lambda: 10e6 / compute.DEEPSEEK_V3["total_gpu_hours"],
    wrong=compute.DEEPSEEK_V3["price_per_hour"], rtol=0.01,  # the $2 the bill assumed
))
