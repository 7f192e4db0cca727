"""How long GPUs take to talk: alpha-beta models of collectives, data-parallel
synchronisation, and real gloo collectives timed on this machine. Expert-parallel traffic
lives in `course.expert_traffic` (re-exported here); the ring factors in `course.ring`.

alpha-beta model: sending n bytes in one step costs alpha + n / B. Ring algorithms over p
ranks (Thakur, Rabenseifner & Gropp 2005; what NCCL does for large messages):
    reduce-scatter, all-gather   (p-1) alpha + (p-1)/p * n / B
    all-reduce                   2 (p-1) alpha + 2 (p-1)/p * n / B   (= RS then AG)
    all-to-all (pairwise)        (p-1) alpha + (p-1)/p * n / B
n is the bytes each rank holds (all-reduce: the whole buffer; all-to-all: what it sends out
plus what it keeps). Hierarchical versions run the intra-node part over NVLink and the
inter-node part over InfiniBand; defaults are DeepSeek-V3's effective 160 / 50 GB/s
(report 3.2.2). The per-message latencies alpha are assumptions (a few microseconds),
not published figures; the notebook measures gloo's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course import validate
from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S
from course.expert_traffic import (  # noqa: F401  (notebook 06 reads them as comms.*)
    TRAINING_PASSES,
    EPTraffic,
    RoutingStats,
    combine_bytes_per_copy,
    compute_to_comm_ratio,
    dispatch_bytes_per_copy,
    ep_copies,
    ep_traffic,
    expected_nodes_uniform,
    expert_flops_per_token,
    route,
    simulate_routing,
)
from course.ring import KINDS, steps_and_volume
from course.timing import lap_times

ALPHA_NVLINK_S = 3e-6  # assumed per-message latency inside a node
ALPHA_IB_S = 10e-6  # assumed per-message latency across nodes
LINKS = ("nvlink_gb_s", "ib_gb_s", "alpha_nvlink_s", "alpha_ib_s")


def ring_time(kind: str, n_bytes: float, p: int, alpha_s: float, gb_s: float) -> float:
    """Seconds for one collective of `n_bytes` per rank over `p` ranks on one kind of link."""
    n_bytes = validate.non_negative("n_bytes", n_bytes)
    alpha_s = validate.non_negative("alpha_s", alpha_s)
    gb_s = validate.positive("gb_s", gb_s)
    steps, volume = steps_and_volume(kind, p)
    return steps * alpha_s + volume * n_bytes / (gb_s * 1e9)


@dataclass(frozen=True)
class CollectiveTime:
    intra_s: float  # NVLink part
    inter_s: float  # InfiniBand part
    total_s: float


def collective_time(kind: str, n_bytes: float, gpus_per_node: int = 8, nodes: int = 1,
                    nvlink_gb_s: float = DEEPSEEK_NVLINK_GB_S, ib_gb_s: float = DEEPSEEK_IB_GB_S,
                    alpha_nvlink_s: float = ALPHA_NVLINK_S,
                    alpha_ib_s: float = ALPHA_IB_S) -> CollectiveTime:
    """Hierarchical collective over `nodes` x `gpus_per_node` GPUs, one NIC per GPU.

    RS/AG/AR: the intra-node ring shrinks the data g-fold, then g parallel inter-node rings
    (one per NIC) handle n/g each. All-to-all: the share for other nodes goes over IB while
    the in-node share goes over NVLink at the same time, so the slower one sets the time.
    """
    g = validate.positive_int("gpus_per_node", gpus_per_node)
    m = validate.positive_int("nodes", nodes)
    validate.choice("collective", kind, KINDS)
    if kind == "all_to_all":
        inter = ring_time(kind, n_bytes, m, alpha_ib_s, ib_gb_s) if m > 1 else 0.0
        intra_bytes = n_bytes / m  # the in-node share, spread over g ranks
        intra = ring_time(kind, intra_bytes, g, alpha_nvlink_s, nvlink_gb_s)
        return CollectiveTime(intra, inter, max(intra, inter))
    inner_kind = "reduce_scatter" if kind in ("all_reduce", "reduce_scatter") else "all_gather"
    intra = ring_time(inner_kind, n_bytes, g, alpha_nvlink_s, nvlink_gb_s)
    if kind == "all_reduce":  # RS inside, AR across, AG inside
        intra *= 2
    inter = ring_time(kind, n_bytes / g, m, alpha_ib_s, ib_gb_s)
    return CollectiveTime(intra, inter, intra + inter)


# ------------------------------------------------------------ data-parallel sync


def dp_sync_time(n_params: float, dp: int, gpus_per_node: int, zero1: bool = True,
                 grad_bytes: float = 4, param_bytes: float = 2, **links) -> float:
    """Seconds to synchronise `n_params` across `dp` replicas once per step.

    Plain DP all-reduces the gradients. ZeRO-1 reduce-scatters them (each rank updates its
    1/dp of the optimizer state) and all-gathers the new weights.
    """
    n_params = validate.non_negative("n_params", n_params)
    dp = validate.positive_int("dp", dp)
    g = min(validate.positive_int("gpus_per_node", gpus_per_node), dp)
    grad_bytes = validate.non_negative("grad_bytes", grad_bytes)
    param_bytes = validate.non_negative("param_bytes", param_bytes)
    for key in links:
        validate.choice("link setting", key, LINKS)
    if dp % g:
        raise ValueError("dp must be a multiple of the GPUs per node it spans.")
    m = dp // g
    if not zero1:
        return collective_time("all_reduce", n_params * grad_bytes, g, m, **links).total_s
    rs = collective_time("reduce_scatter", n_params * grad_bytes, g, m, **links).total_s
    return rs + collective_time("all_gather", n_params * param_bytes, g, m, **links).total_s


@dataclass(frozen=True)
class LayoutSync:
    dense_dp: int  # replicas of each non-expert weight (attention, dense FFN, shared expert...)
    expert_dp: int  # replicas of each routed expert
    dense_params_per_gpu: float
    expert_params_per_gpu: float
    seconds: float  # both synchronisations, one after the other


def layout_sync(total_params: float, expert_params: float, n_gpus: int, pp: int, ep: int,
                gpus_per_node: int = 8, zero1: bool = True, **kw) -> LayoutSync:
    """Per-step data-parallel sync of a PP x EP x DP layout (no tensor parallelism).

    Each pipeline stage holds 1/pp of the layers. Non-expert weights are replicated on all
    n_gpus/pp GPUs of a stage; routed experts are split ep ways, so each is replicated
    n_gpus/(pp*ep) times. Each group synchronises its own gradients.
    """
    total_params = validate.non_negative("total_params", total_params)
    expert_params = validate.non_negative("expert_params", expert_params)
    n_gpus, pp, ep = (validate.positive_int(k, x) for k, x in
                      (("n_gpus", n_gpus), ("pp", pp), ("ep", ep)))
    if expert_params > total_params:
        raise ValueError(f"expert_params {expert_params:g} is more than total_params "
                         f"{total_params:g}.")
    if n_gpus % (pp * ep):
        raise ValueError(f"{n_gpus} GPUs do not split into PP{pp} x EP{ep} groups.")
    dense_dp, expert_dp = n_gpus // pp, n_gpus // (pp * ep)
    dense = (total_params - expert_params) / pp
    expert = expert_params / (pp * ep)
    t = dp_sync_time(dense, dense_dp, gpus_per_node, zero1, **kw)
    if expert_dp > 1:  # expert replicas sit in different EP groups, i.e. across nodes
        t += dp_sync_time(expert, expert_dp, 1, zero1, **kw)
    return LayoutSync(dense_dp, expert_dp, dense, expert, t)


# ------------------------------------------------------------ measured with gloo


def _no_wait() -> None:
    """CPU collectives return when done: nothing to wait for around a timed call."""


def time_collectives_worker(rank: int, world_size: int, kinds: tuple, sizes: tuple,
                            repeats: int) -> dict:
    """Run inside a gloo process (course.distributed.run_workers): best seconds per size."""
    import torch
    import torch.distributed as dist

    # torch >= 2.10 renamed the tensor variants; fall back to the old names.
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    ops = {
        "all_reduce": lambda x: dist.all_reduce(x),
        "all_gather": lambda x: gather(torch.empty(x.numel() * world_size), x),
        "reduce_scatter": lambda x: scatter(torch.empty(x.numel() // world_size), x),
        "all_to_all": lambda x: dist.all_to_all_single(torch.empty_like(x), x),
    }
    out = {}
    for kind in kinds:
        out[kind] = []
        for n_bytes in sizes:
            x = torch.ones(max(world_size, n_bytes // 4))  # float32: 4 bytes per element
            # the ranks line up untimed (setup) before each timed call; the fastest run is
            # the least disturbed on a shared machine
            laps = lap_times([lambda _, x=x, op=ops[kind]: op(x)], repeats,
                             setup=dist.barrier, sync=_no_wait)
            out[kind].append(laps[0][0])
    return out


def _series(name: str, values) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, not {values!r}.") from None
    if arr.ndim != 1 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must be a list of finite numbers ≥ 0.")
    return arr


def fit_alpha_beta(kind: str, p: int, n_bytes, seconds) -> tuple[float, float]:
    """Least-squares fit of t = steps·alpha + volume·n/B; returns (alpha_s, bandwidth_gb_s)."""
    steps, volume = steps_and_volume(kind, p)
    n, t = _series("n_bytes", n_bytes), _series("seconds", seconds)
    if len(n) != len(t) or len(n) < 2 or len(set(n.tolist())) < 2:
        raise ValueError("Give at least two different message sizes and one time for each.")
    if steps == 0:
        raise ValueError("One rank sends nothing: there is no time to fit.")
    a = np.stack([np.full_like(n, steps), volume * n], axis=1)
    (alpha, inv_b), *_ = np.linalg.lstsq(a, t, rcond=None)
    if inv_b <= 0:
        raise ValueError("The timings do not grow with message size; cannot fit a bandwidth.")
    return max(float(alpha), 0.0), float(1 / inv_b / 1e9)


def measure_gloo(kinds=KINDS, world_size: int = 2, sizes=(2**12, 2**16, 2**20),
                 repeats: int = 5, timeout_s: float = 120) -> dict:
    """Time real gloo collectives between `world_size` CPU processes on this machine.

    Returns {kind: seconds per size}: per rank the fastest of `repeats` runs, then the
    slowest rank (a collective ends when its last rank does).
    """
    from course.distributed import run_workers

    kinds = tuple(validate.choice("collective", k, KINDS) for k in kinds)
    world_size = validate.integer("world_size", world_size, 1, 16)
    sizes = tuple(validate.integer("message size", n, 1, 2**30) for n in sizes)
    repeats = validate.integer("repeats", repeats, 1, 1000)
    timeout_s = validate.positive("timeout_s", timeout_s)
    if any(n < 4 * world_size for n in sizes):
        raise ValueError("Each message must hold at least one float32 per rank.")
    per_rank = run_workers(time_collectives_worker, world_size, tuple(kinds), tuple(sizes),
                           repeats, timeout_s=timeout_s)
    return {k: [max(r[k][i] for r in per_rank) for i in range(len(sizes))] for k in kinds}
