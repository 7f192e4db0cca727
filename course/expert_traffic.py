"""Expert-parallel traffic (notebook 06): the bytes a token's trip to its experts costs,
DeepSeek-V3's node-limited routing, and a simulation of where routed experts live.

Dispatch sends a token's hidden state in FP8 with one FP32 scale per 1x128 tile; combine
sends each expert's output back in BF16 (report 3.3). Node-limited routing (report 2.1.2,
`inference/model.py` Gate.forward) sends a token to at most M nodes, so at most M copies
cross InfiniBand however many experts it picks. `course.comms` turns bytes into seconds
and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from course import validate
from course.configs import DEEPSEEK_IB_GB_S
from course.timing import one_thread

#: Largest simulated routing problem (tokens x experts): about 256 MB of float32 logits.
MAX_ROUTING_CELLS = 2**26


def dispatch_bytes_per_copy(hidden: int, scale_block: int = 128, scale_bytes: int = 4) -> int:
    """One token's hidden state sent to one place in FP8: 1 byte per element plus one FP32
    scale per 1x128 tile (report 3.3: dispatch in FP8 with fine-grained scales)."""
    hidden = validate.positive_int("hidden", hidden)
    scale_block = validate.positive_int("scale_block", scale_block)
    scale_bytes = validate.non_negative_int("scale_bytes", scale_bytes)
    return hidden + -(-hidden // scale_block) * scale_bytes


def combine_bytes_per_copy(hidden: int, dtype_bytes: int = 2) -> int:
    """One expert output sent back in BF16 (report 3.3: combine stays in BF16)."""
    return (validate.positive_int("hidden", hidden)
            * validate.positive_int("dtype_bytes", dtype_bytes))


def expected_nodes_uniform(n_experts: int, n_nodes: int, top_k: int) -> float:
    """Closed form: distinct nodes hit by top_k distinct experts chosen uniformly at random."""
    n_experts = validate.integer("n_experts", n_experts, 1, 10**6)
    n_nodes = validate.integer("n_nodes", n_nodes, 1, n_experts)
    top_k = validate.integer("top_k", top_k, 1, n_experts)
    if n_experts % n_nodes:
        raise ValueError(f"{n_nodes} nodes do not hold the {n_experts} experts evenly.")
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
    remote_copies = validate.non_negative("remote_copies", remote_copies)
    return EPTraffic(remote_copies, remote_copies * dispatch_bytes_per_copy(hidden),
                     remote_copies * combine_bytes_per_copy(hidden))


def compute_to_comm_ratio(moe_flops_per_token: float, achieved_tflops: float,
                          ib_bytes_per_token: float, ib_gb_s: float = DEEPSEEK_IB_GB_S) -> float:
    """Expert compute time over IB transfer time for the same token (>1: compute dominates)."""
    flops = validate.non_negative("moe_flops_per_token", moe_flops_per_token)
    tflops = validate.positive("achieved_tflops", achieved_tflops)
    ib_bytes = validate.positive("ib_bytes_per_token", ib_bytes_per_token)
    ib_gb_s = validate.positive("ib_gb_s", ib_gb_s)
    return (flops / (tflops * 1e12)) / (ib_bytes / (ib_gb_s * 1e9))


def expert_flops_per_token(hidden: int, moe_inter: int, experts: int) -> float:
    """Forward FLOPs of `experts` SwiGLU experts (3 matrices each) for one token."""
    return 2.0 * (validate.non_negative_int("experts", experts) * 3
                  * validate.positive_int("hidden", hidden)
                  * validate.positive_int("moe_inter", moe_inter))


def route(scores, top_k: int, n_nodes: int, max_nodes: int | None):
    """Top-k experts per token, optionally node-limited as in DeepSeek-V3's Gate.forward.

    scores: (T, E) affinities, experts laid out node by node. With `max_nodes` = M, each
    node scores the sum of its top K_r/M affinities, only the best M nodes stay, and the
    top-k is taken among their experts (report 2.1.2; inference/model.py). Returns (T, k).
    """
    import torch

    if not torch.is_tensor(scores) or scores.dim() != 2:
        raise ValueError("scores must be a (tokens, experts) tensor of affinities.")
    top_k = validate.positive_int("top_k", top_k)
    n_nodes = validate.positive_int("n_nodes", n_nodes)
    max_nodes = validate.optional(validate.positive_int, "max_nodes", max_nodes)
    t, e = scores.shape
    if e % n_nodes or not 1 <= top_k <= e:
        raise ValueError("Experts must split evenly over nodes and 1 ≤ top_k ≤ experts.")
    if max_nodes is None or max_nodes >= n_nodes:
        return scores.topk(top_k, dim=-1).indices
    if max_nodes * (e // n_nodes) < top_k:
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

    n_tokens = validate.positive_int("n_tokens", n_tokens)
    n_experts = validate.positive_int("n_experts", n_experts)
    n_nodes = validate.integer("n_nodes", n_nodes, 1, n_experts)
    locality = validate.non_negative("locality", locality)
    seed = validate.integer("seed", seed, 0, 2**63 - 1)
    if n_tokens * n_experts > MAX_ROUTING_CELLS:
        raise ValueError(f"n_tokens x n_experts = {n_tokens * n_experts:,} is more than this "
                         f"simulation's {MAX_ROUTING_CELLS:,}; use fewer tokens.")
    if n_experts % n_nodes:
        raise ValueError(f"{n_nodes} nodes do not hold the {n_experts} experts evenly.")
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_tokens, n_experts, generator=g)
    node_of = torch.arange(n_experts) // (n_experts // n_nodes)
    if locality:
        logits += locality * torch.randn(n_tokens, n_nodes, generator=g)[:, node_of]
    with one_thread():  # small tensors: threads only spin on a shared CPU
        idx = route(torch.sigmoid(logits), top_k, n_nodes, max_nodes)
    hit = torch.zeros(n_tokens, n_nodes).scatter_(1, node_of[idx], 1.0)  # (T, nodes)
    home = torch.randint(0, n_nodes, (n_tokens,), generator=g)
    remote_experts = (node_of[idx] != home[:, None]).sum(1).float()
    remote_nodes = hit.sum(1) - hit[torch.arange(n_tokens), home]
    counts = torch.bincount(hit.sum(1).long(), minlength=n_nodes + 1)[1:] / n_tokens
    return RoutingStats(hit.sum(1).mean().item(), remote_nodes.mean().item(),
                        remote_experts.mean().item(), tuple(counts.tolist()))
