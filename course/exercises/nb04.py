"""Exercises of notebook 04 · Parallelism."""

from course import memory, parallel, ring
from course.exercises import Exercise, register


def all_reduce_bytes(n_bytes: float, world: int) -> float:
    return 2 * (world - 1) / world * n_bytes


register(Exercise(
    name="04.ring_all_reduce_bytes", notebook="04",
    prompt="Bytes one rank sends in a ring all-reduce of an n_bytes tensor over world ranks.",
    hint="Reduce-scatter then all-gather: each sends (world - 1) chunks of n_bytes / world.",
    reference=all_reduce_bytes, cases=lambda: [(1000, 2), (1000, 8), (4e9, 128), (10, 1)],
    oracle=lambda n_bytes, world: ring.ring_bytes("all_reduce", n_bytes, world),
    wrong=lambda n_bytes, world: (world - 1) * n_bytes,  # sending everything to everyone
))


def zero1_optimizer_bytes(n_params: int, dp: int) -> float:
    return 12 * n_params / dp


register(Exercise(
    name="04.zero1_optimizer_bytes", notebook="04",
    prompt="Bytes of FP32 master weights + two FP32 Adam moments one GPU keeps under ZeRO-1.",
    hint="12 bytes per parameter, shared out over the dp data-parallel copies.",
    reference=zero1_optimizer_bytes, cases=lambda: [(10**9, 8), (2144, 2), (7, 1)],
    oracle=lambda n_params, dp: memory.state_bytes(n_params, "bf16-mixed")["optimizer"] / dp,
    wrong=lambda n_params, dp: 12 * n_params,  # forgot to shard
))


register(Exercise(
    name="04.expert_copies", notebook="04",
    prompt="In DeepSeek-V3's layout, how many GPUs hold a copy of one given expert?",
    hint="Each pipeline stage has DP = 128 ranks, cut into EP groups of 64.",
    expected=lambda: parallel.replicas("deepseek-v3", parallel.DEEPSEEK_V3_LAYOUT)[
        "expert_copies"],
    wrong=32, rtol=0,  # the number of EP groups, not copies
))


def accumulation(global_sequences: int, micro_batch: int, dp: int) -> int:
    return global_sequences // (micro_batch * dp)  # global = micro x accumulation x DP


register(Exercise(
    name="04.accumulation", notebook="04",
    prompt="Micro-batches each data-parallel copy runs per step for a global batch of "
           "global_sequences, micro-batches of micro_batch sequences and dp copies.",
    hint="global batch = micro-batch x accumulation steps x DP.",
    reference=accumulation, oracle=parallel.accumulation_steps,
    cases=lambda: [(15360, 1, 128), (3072, 1, 128), (15360, 4, 64), (1024, 8, 8)],
    wrong=lambda g, m, dp: g // dp,  # forgot the micro-batch size
))
