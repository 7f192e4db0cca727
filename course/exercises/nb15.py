"""Exercises of notebook 15 · Serving DeepSeek-V3."""

import numpy as np

from course import eplb, serving
from course.exercises import Exercise, register


def revenue(hit_tokens: float, miss_tokens: float, output_tokens: float) -> float:
    # R1 API prices in dollars per million tokens: 0.14 cache hit, 0.55 miss, 2.19 output
    return (hit_tokens * 0.14 + miss_tokens * 0.55 + output_tokens * 2.19) / 1e6


register(Exercise(
    name="15.revenue", notebook="15",
    prompt="A day's revenue in dollars from cache-hit input, cache-miss input and output "
           "tokens at DeepSeek-R1's prices.",
    hint="Prices are per MILLION tokens: $0.14 for input that hits the cache, $0.55 for "
         "input that misses, $2.19 for output.",
    reference=revenue, oracle=serving.daily_revenue,
    cases=lambda: [(342e9, 266e9, 168e9), (0.0, 1e6, 1e6), (5e8, 5e8, 2e8)],
    wrong=lambda h, m, o: ((h + m) * 0.55 + o * 2.19) / 1e6,  # no cache-hit discount
))


def decode_rate(step_seconds: float, batch_per_gpu: int) -> float:
    # one token per request per step, on each of the node's 8 GPUs
    return 8 * batch_per_gpu / step_seconds


register(Exercise(
    name="15.decode_rate", notebook="15",
    prompt="Output tokens per second of an 8-GPU node whose GPUs each decode batch_per_gpu "
           "requests in steps of step_seconds.",
    hint="Each step gives every request one token; the node has 8 GPUs.",
    reference=decode_rate,
    oracle=lambda s, b: serving.V3Step(b, 1, s, 0.0, 0.0, 0.0, 0.0, False)
    .tokens_per_s_per_node,
    cases=lambda: [(0.05, 92), (0.0343, 92), (0.0067, 1)],
    wrong=lambda s, b: b / s,  # one GPU, not the node
))


def replicas_needed(load, target: float, num_groups: int, num_nodes: int,
                    num_gpus: int):
    # try slot counts that fill every GPU equally, fewest first, up to 4x the experts
    experts = np.asarray(load).shape[1]
    slots = -(-experts // num_gpus) * num_gpus
    while slots <= 4 * experts:
        placement = eplb.rebalance(load, slots, num_groups, num_nodes, num_gpus)
        if placement.imbalance.mean() <= target:
            return slots
        slots += num_gpus
    return None  # the target cannot be met (the hierarchical policy has a floor)


def _replica_cases() -> list[tuple]:
    v3 = eplb.skewed_load(58, 256, 1.0, seed=0)
    toy = eplb.skewed_load(2, 16, 1.5, seed=1)
    return [(v3, 1.1, 8, 4, 32), (v3, 1.2, 8, 18, 144), (toy, 1.25, 4, 2, 4),
            (v3, 1.05, 8, 4, 32)]  # unreachable: hierarchical stays near 1.07


register(Exercise(
    name="15.replicas_needed", notebook="15",
    prompt="The fewest physical expert slots (a multiple of the GPUs) whose EPLB placement "
           "keeps the busiest GPU within `target` x the average, averaged over layers; None "
           "when 4x the experts is not enough.",
    hint="Start from the fewest slots that hold every expert and fill every GPU equally; "
         "add one slot per GPU at a time and call eplb.rebalance(...).imbalance.mean().",
    reference=replicas_needed, oracle=eplb.min_replicas, cases=_replica_cases,
    wrong=lambda load, t, g, n, gpus: np.asarray(load).shape[1],  # no redundancy at all
))


register(Exercise(
    name="15.revenue_margin", notebook="15",
    prompt="DeepSeek's 545% 'cost profit margin' as a margin on revenue (profit / revenue).",
    hint="Profit is revenue − cost. DeepSeek divided it by the cost; divide it by the "
         "revenue instead.",
    expected=lambda: serving.revenue_margin(serving.PUBLISHED["revenue"],
                                            serving.PUBLISHED["cost"]),
    wrong=5.45, rtol=1e-3,
))
