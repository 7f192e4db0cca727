"""How long GPUs take to talk: alpha-beta models of collectives, expert-parallel traffic,
data-parallel synchronisation, and real gloo collectives timed on this machine.

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

import time
from dataclasses import dataclass

import numpy as np

from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S

ALPHA_NVLINK_S = 3e-6  # assumed per-message latency inside a node
ALPHA_IB_S = 10e-6  # assumed per-message latency across nodes
KINDS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all")


def _steps_and_volume(kind: str, p: int) -> tuple[int, float]:
    """(number of alpha terms, multiple of n/B) for a ring/pairwise collective on p ranks."""
    if kind not in KINDS:
        raise ValueError(f"Unknown collective {kind!r}; choose one of {', '.join(KINDS)}.")
    if p < 1:
        raise ValueError("A collective needs at least one rank.")
    if kind == "all_reduce":
        return 2 * (p - 1), 2 * (p - 1) / p
    return p - 1, (p - 1) / p


def ring_time(kind: str, n_bytes: float, p: int, alpha_s: float, gb_s: float) -> float:
    """Seconds for one collective of `n_bytes` per rank over `p` ranks on one kind of link."""
    if n_bytes < 0 or alpha_s < 0 or gb_s <= 0:
        raise ValueError("Bytes and latency must be ≥ 0 and bandwidth positive.")
    steps, volume = _steps_and_volume(kind, p)
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
    g, m = gpus_per_node, nodes
    if g < 1 or m < 1:
        raise ValueError("GPUs per node and nodes must be at least 1.")
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


# ------------------------------------------------------------ expert-parallel traffic


def dispatch_bytes_per_copy(hidden: int, scale_block: int = 128, scale_bytes: int = 4) -> int:
    """One token's hidden state sent to one place in FP8: 1 byte per element plus one FP32
    scale per 1x128 tile (report 3.3: dispatch in FP8 with fine-grained scales)."""
    if hidden < 1 or scale_block < 1:
        raise ValueError("hidden and scale_block must be positive.")
    return hidden + -(-hidden // scale_block) * scale_bytes


def combine_bytes_per_copy(hidden: int, dtype_bytes: int = 2) -> int:
    """One expert output sent back in BF16 (report 3.3: combine stays in BF16)."""
    return hidden * dtype_bytes


def expected_nodes_uniform(n_experts: int, n_nodes: int, top_k: int) -> float:
    """Closed form: distinct nodes hit by top_k distinct experts chosen uniformly at random."""
    per_node = n_experts // n_nodes
    miss = 1.0
    for i in range(top_k):  # P(a given node gets none of the k picks), hypergeometric
        miss *= (n_experts - per_node - i) / (n_experts - i)
    return n_nodes * (1 - miss)


@dataclass(frozen=True)
class EPTraffic:
    ib_copies: float  # copies of a token crossing InfiniBand, per token
    dispatch_ib_bytes: float
    combine_ib_bytes: float

    @property
    def ib_bytes(self) -> float:
        return self.dispatch_ib_bytes + self.combine_ib_bytes


def ep_traffic(remote_copies: float, hidden: int = 7168) -> EPTraffic:
    """IB bytes per token per MoE layer when `remote_copies` copies leave the node."""
    return EPTraffic(remote_copies, remote_copies * dispatch_bytes_per_copy(hidden),
                     remote_copies * combine_bytes_per_copy(hidden))


def compute_to_comm_ratio(moe_flops_per_token: float, achieved_tflops: float,
                          ib_bytes_per_token: float, ib_gb_s: float = DEEPSEEK_IB_GB_S) -> float:
    """Expert compute time over IB transfer time for the same token (>1: compute dominates)."""
    if achieved_tflops <= 0 or ib_bytes_per_token <= 0:
        raise ValueError("Throughput and bytes must be positive.")
    return (moe_flops_per_token / (achieved_tflops * 1e12)) / (ib_bytes_per_token / (ib_gb_s * 1e9))


def route(scores, top_k: int, n_nodes: int, max_nodes: int | None):
    """Top-k experts per token, optionally node-limited as in DeepSeek-V3's Gate.forward.

    scores: (T, E) affinities, experts laid out node by node. With `max_nodes` = M, each
    node scores the sum of its top K_r/M affinities, only the best M nodes stay, and the
    top-k is taken among their experts (report 2.1.2; inference/model.py). Returns (T, k).
    """
    import torch

    t, e = scores.shape
    if e % n_nodes or not 1 <= top_k <= e:
        raise ValueError("Experts must split evenly over nodes and 1 ≤ top_k ≤ experts.")
    if max_nodes is None or max_nodes >= n_nodes:
        return scores.topk(top_k, dim=-1).indices
    if not 1 <= max_nodes or max_nodes * (e // n_nodes) < top_k:
        raise ValueError(f"{max_nodes} node(s) hold too few experts to pick {top_k}.")
    grouped = scores.view(t, n_nodes, e // n_nodes)
    per_node = max(1, top_k // max_nodes)
    node_score = grouped.topk(per_node, dim=-1).values.sum(dim=-1)  # (T, nodes)
    keep = node_score.topk(max_nodes, dim=-1).indices
    mask = torch.ones(t, n_nodes, dtype=torch.bool).scatter_(1, keep, False)
    masked = grouped.masked_fill(mask.unsqueeze(-1), float("-inf")).view(t, e)
    return masked.topk(top_k, dim=-1).indices


@dataclass(frozen=True)
class RoutingStats:
    nodes_per_token: float  # distinct nodes a token's experts live on
    remote_nodes: float  # of those, nodes other than the token's own (copies over IB)
    remote_experts: float  # experts off the token's node (copies over IB without dedup)
    histogram: tuple  # share of tokens reaching 1..n_nodes nodes


def simulate_routing(n_tokens: int = 4096, n_experts: int = 256, n_nodes: int = 8,
                     top_k: int = 8, max_nodes: int | None = 4, locality: float = 0.0,
                     seed: int = 0) -> RoutingStats:
    """Route random tokens and count where their experts live.

    Affinities are sigmoid(logits). `locality` = 0 gives independent random logits; larger
    values add a per-token preference for some nodes' experts, as a trained router whose
    experts specialise by topic might. Each token starts on a random node.
    """
    import torch

    if n_tokens < 1 or locality < 0:
        raise ValueError("n_tokens must be ≥ 1 and locality ≥ 0.")
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_tokens, n_experts, generator=g)
    node_of = torch.arange(n_experts) // (n_experts // max(n_nodes, 1))
    if locality:
        logits += locality * torch.randn(n_tokens, n_nodes, generator=g)[:, node_of]
    from course.diloco import one_thread

    with one_thread():  # small tensors: threads only spin on a shared CPU
        idx = route(torch.sigmoid(logits), top_k, n_nodes, max_nodes)
    hit = torch.zeros(n_tokens, n_nodes).scatter_(1, node_of[idx], 1.0)  # (T, nodes)
    home = torch.randint(0, n_nodes, (n_tokens,), generator=g)
    remote_experts = (node_of[idx] != home[:, None]).sum(1).float()
    remote_nodes = hit.sum(1) - hit[torch.arange(n_tokens), home]
    counts = torch.bincount(hit.sum(1).long(), minlength=n_nodes + 1)[1:] / n_tokens
    return RoutingStats(hit.sum(1).mean().item(), remote_nodes.mean().item(),
                        remote_experts.mean().item(), tuple(counts.tolist()))


# ------------------------------------------------------------ data-parallel sync


def dp_sync_time(n_params: float, dp: int, gpus_per_node: int, zero1: bool = True,
                 grad_bytes: float = 4, param_bytes: float = 2, **links) -> float:
    """Seconds to synchronise `n_params` across `dp` replicas once per step.

    Plain DP all-reduces the gradients. ZeRO-1 reduce-scatters them (each rank updates its
    1/dp of the optimizer state) and all-gathers the new weights.
    """
    if dp < 1 or n_params < 0:
        raise ValueError("dp must be ≥ 1 and n_params ≥ 0.")
    g = min(gpus_per_node, dp)
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
    if n_gpus % (pp * ep):
        raise ValueError(f"{n_gpus} GPUs do not split into PP{pp} x EP{ep} groups.")
    dense_dp, expert_dp = n_gpus // pp, n_gpus // (pp * ep)
    dense = (total_params - expert_params) / pp
    expert = expert_params / (pp * ep)
    t = dp_sync_time(dense, dense_dp, gpus_per_node, zero1, **kw)
    if expert_dp > 1:  # expert replicas sit in different EP groups, i.e. across nodes
        t += dp_sync_time(expert, expert_dp, 1, zero1, **kw)
    return LayoutSync(dense_dp, expert_dp, dense, expert, t)


def expert_flops_per_token(hidden: int, moe_inter: int, experts: int) -> float:
    """Forward FLOPs of `experts` SwiGLU experts (3 matrices each) for one token."""
    return 2.0 * experts * 3 * hidden * moe_inter


# ------------------------------------------------------------ measured with gloo


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
            ops[kind](x)  # warm-up
            times = []
            for _ in range(repeats):
                dist.barrier()
                start = time.perf_counter()
                ops[kind](x)
                times.append(time.perf_counter() - start)
            out[kind].append(min(times))  # the least-disturbed run on a shared machine
    return out


def fit_alpha_beta(kind: str, p: int, n_bytes, seconds) -> tuple[float, float]:
    """Least-squares fit of t = steps·alpha + volume·n/B; returns (alpha_s, bandwidth_gb_s)."""
    steps, volume = _steps_and_volume(kind, p)
    n = np.asarray(n_bytes, dtype=float)
    a = np.stack([np.full_like(n, steps), volume * n], axis=1)
    (alpha, inv_b), *_ = np.linalg.lstsq(a, np.asarray(seconds, dtype=float), rcond=None)
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

    if any(n < 4 * world_size for n in sizes):
        raise ValueError("Each message must hold at least one float32 per rank.")
    per_rank = run_workers(time_collectives_worker, world_size, tuple(kinds), tuple(sizes),
                           repeats, timeout_s=timeout_s)
    return {k: [max(r[k][i] for r in per_rank) for i in range(len(sizes))] for k in kinds}
