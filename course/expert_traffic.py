"""Expert-parallel traffic (notebook 06): the bytes a token's trip to its experts costs,
DeepSeek-V3's node-limited routing, and a simulation of where routed experts live.

The one byte model of expert parallelism (notebooks 04 and 06): dispatch sends a token's
hidden state in FP8 with one FP32 scale per 1x128 tile; combine sends each expert's output
back in BF16; training does both again backward (report 3.3.4). One copy crosses
InfiniBand per remote node (report 3.2.2), and node-limited routing (report 2.1.2,
`inference/model.py` Gate.forward) sends a token to at most M nodes, so at most M copies
cross InfiniBand however many experts it picks. `course.comms` turns bytes into seconds
and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from course import validate
from course.configs import DEEPSEEK_IB_GB_S
from course.timing import one_thread

#: Largest simulated routing problem (tokens x experts): about 256 MB of float32 logits.
MAX_ROUTING_CELLS = 2**26


def dispatch_bytes_per_copy(hidden: int, value_bytes: int = 1, scale_block: int = 128,
                            scale_bytes: int = 4) -> int:
    """One token's hidden state sent to one place. In FP8 (`value_bytes` = 1, DeepSeek-V3's
    choice, report 3.3.4): 1 byte per element plus one FP32 scale per 1x128 tile; in a
    wider format (2: BF16, 4: FP32) the values alone."""
    hidden = validate.positive_int("hidden", hidden)
    value_bytes = validate.positive_int("value_bytes", value_bytes)
    scale_block = validate.positive_int("scale_block", scale_block)
    scale_bytes = validate.non_negative_int("scale_bytes", scale_bytes)
    scales = -(-hidden // scale_block) * scale_bytes if value_bytes == 1 else 0
    return hidden * value_bytes + scales


def combine_bytes_per_copy(hidden: int, dtype_bytes: int = 2) -> int:
    """One expert output sent back in BF16 (report 3.3.4: combine stays in BF16)."""
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


#: A training step moves a token's copies four times per MoE layer: dispatch and combine
#: forward, then backward the output gradient goes out to the experts (FP8, like the
#: dispatch) and the input gradient comes back (BF16, like the combine): report 3.3.4.
TRAINING_PASSES = 2
GPUS_PER_NODE = 8  # an H800 node: 8 GPUs on NVLink, one InfiniBand NIC each (report 3.1)


@dataclass(frozen=True)
class EPTraffic:
    copies: float  # copies of a token sent out, per token
    dispatch_bytes: float
    combine_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.dispatch_bytes + self.combine_bytes


def ep_traffic(copies: float, hidden: int = 7168, dispatch_value_bytes: int = 1,
               combine_value_bytes: int = 2) -> EPTraffic:
    """Bytes per token per MoE layer, one forward pass, when `copies` copies of it are
    sent: dispatch in FP8 with scales, combine in BF16 (DeepSeek-V3's choice) by default.
    The one expert-parallel byte model of the course (notebooks 04 and 06)."""
    copies = validate.non_negative("copies", copies)
    return EPTraffic(copies, copies * dispatch_bytes_per_copy(hidden, dispatch_value_bytes),
                     copies * combine_bytes_per_copy(hidden, combine_value_bytes))


def places_reached(n_experts: int, top_k: int, places: int, n_group: int = 1,
                   topk_group: int = 1, n_tokens: int = 2048, seed: int = 0) -> float:
    """Expected distinct places (nodes, or GPUs) holding a token's top_k experts when
    `places` hold n_experts / places each and the affinities are random. Without a group
    limit: the closed form. With one (DeepSeek-V3: 8 groups, at most 4 per token): counted
    from a real routing (`route`) of `n_tokens` random logits."""
    places = validate.positive_int("places", places)
    if topk_group >= n_group:
        return expected_nodes_uniform(n_experts, places, top_k)
    return _routed_places(n_experts, top_k, places, n_group, topk_group, n_tokens, seed)


@lru_cache(maxsize=64)
def _routed_places(n_experts, top_k, places, n_group, topk_group, n_tokens, seed) -> float:
    import torch

    if n_experts % places:
        raise ValueError(f"{places} places do not hold the {n_experts} experts evenly.")
    g = torch.Generator().manual_seed(validate.integer("seed", seed, 0, 2**63 - 1))
    scores = torch.sigmoid(torch.randn(validate.positive_int("n_tokens", n_tokens),
                                       n_experts, generator=g))
    with one_thread():
        idx = route(scores, top_k, n_group, topk_group)
    hit = torch.zeros(n_tokens, places).scatter_(1, idx // (n_experts // places), 1.0)
    return hit.sum(1).mean().item()


def ep_copies(n_experts: int, top_k: int, ep: int, gpus_per_node: int = GPUS_PER_NODE,
              n_group: int = 1, topk_group: int = 1) -> tuple[str, float]:
    """(link, copies per token) of DeepSeek-V3's dispatch over an EP group of `ep` GPUs.

    Across nodes: one copy per remote node a token's experts live on crosses InfiniBand,
    and is forwarded inside that node over NVLink (report 3.2.2). Inside one node: one
    copy per other GPU over NVLink. The token's own node (or GPU) is any of the group's,
    so on average a share (places - 1) / places of the places reached are remote."""
    ep = validate.positive_int("ep", ep)
    gpus_per_node = validate.positive_int("gpus_per_node", gpus_per_node)
    if ep > gpus_per_node and ep % gpus_per_node:
        raise ValueError(f"EP {ep} does not fill whole nodes of {gpus_per_node} GPUs.")
    link, places = ("IB", ep // gpus_per_node) if ep > gpus_per_node else ("NVLink", ep)
    reached = places_reached(n_experts, top_k, places, n_group, topk_group)
    return link, reached * (places - 1) / places


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
