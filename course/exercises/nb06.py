"""Exercises of notebook 06 · Communication."""

from functools import lru_cache

from course import comms, diloco, expert_traffic
from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S
from course.exercises import Exercise, register


def ring_all_reduce(n_bytes: float, p: int, alpha_s: float, gb_s: float) -> float:
    # reduce-scatter then all-gather: 2(p-1) steps, each rank sends 2(p-1)/p of the buffer
    return 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * n_bytes / (gb_s * 1e9)


register(Exercise(
    name="06.ring_all_reduce", notebook="06",
    prompt="Seconds for a ring all-reduce of n_bytes per rank over p ranks, latency alpha_s "
           "per message, gb_s GB/s per link.",
    hint="2(p-1) latencies, and each rank sends 2(p-1)/p of the buffer.",
    reference=ring_all_reduce,
    oracle=lambda n, p, a, bw: comms.ring_time("all_reduce", n, p, a, bw),
    cases=lambda: [(1e9, 8, comms.ALPHA_NVLINK_S, DEEPSEEK_NVLINK_GB_S),
                   (4096, 64, comms.ALPHA_IB_S, DEEPSEEK_IB_GB_S),
                   (1e6, 1, comms.ALPHA_IB_S, DEEPSEEK_IB_GB_S)],
    wrong=lambda n, p, a, b: (p - 1) * a + (p - 1) / p * n / (b * 1e9),  # one pass only
))


def ib_bytes(remote_nodes: float, hidden: int) -> float:
    dispatch = hidden + 4 * hidden / 128  # FP8 activations + one FP32 scale per 128
    combine = 2 * hidden  # BF16 expert output on the way back
    return remote_nodes * (dispatch + combine)


register(Exercise(
    name="06.ib_bytes", notebook="06",
    prompt="IB bytes per token per MoE layer: one FP8 dispatch copy and one BF16 combine copy "
           "per remote node.",
    hint="(hidden + 4 * hidden/128) + 2 * hidden per copy.",
    reference=ib_bytes, cases=lambda: [(3, 7168), (1, 4096), (0, 7168)],
    oracle=lambda r, h: expert_traffic.ep_traffic(r, h).total_bytes,  # the course's model
    wrong=lambda r, h: r * 2 * h * 2,  # both ways in BF16, forgetting FP8 dispatch
))


@lru_cache(maxsize=1)
def _syncs_h60() -> int:
    # a real (tiny) DiLoCo run of 240 steps with H = 60: count its synchronisations
    with diloco.one_thread():
        run = diloco.train_diloco(60, replicas=1, steps=240, d_in=2, width=4, batch=2)
    return len(run.steps) - 1  # the first point is the start, before any sync


register(Exercise(
    name="06.syncs_h60", notebook="06",
    prompt="A DiLoCo run with H = 60 and 240 steps: how many times do the replicas talk?",
    hint="One sync every H steps.",
    expected=_syncs_h60, wrong=240, rtol=0,  # what synchronous DP would do
))
