"""Expert-parallel load balancing (notebook 15): DeepSeek's EPLB, written here from its
description (deepseek-ai/EPLB, README and `eplb.py`; DeepSeek-V3/R1 Inference System
Overview, open-source week day 6).

With expert parallelism each GPU holds a few routed experts, and a step waits for the
GPU that received the most tokens. EPLB adds *redundant* copies of the busiest experts
and places all copies so every GPU gets the same number of slots and about the same load:

1. **replicate**: start with one slot per expert; give each spare slot to the expert with
   the largest load *per replica* (its tokens split evenly over its copies);
2. **pack**: sort the replicas by load, heaviest first, and put each on the lightest GPU
   that still has a free slot (every GPU ends with `num_replicas / num_gpus` slots).

The **hierarchical** policy first packs whole expert *groups* onto nodes the same way
(equal groups per node), then replicates and packs inside each node, so a group's tokens
never leave their node (node-limited routing, V3 report 2.1.2). The **global** policy
ignores groups and nodes. Like DeepSeek's entry point, `rebalance` picks hierarchical when
the groups divide evenly over the nodes (prefill: 8 groups on 4 nodes) and global
otherwise (decode: 8 groups, 18 nodes).

Every layer is balanced independently; all layers run at once (numpy), so V3's 58 MoE
layers x 256 experts take milliseconds. Left out: the moving-average load statistics a
live system feeds in, and the cost of moving experts between GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICIES = ("hierarchical", "global")


@dataclass
class Placement:
    """Where every physical expert slot lives, for each layer."""

    phy2log: np.ndarray  # (layers, num_replicas) logical expert in each slot
    count: np.ndarray  # (layers, experts) replicas of each expert
    gpu_load: np.ndarray  # (layers, num_gpus) tokens each GPU serves
    policy: str  # "hierarchical" or "global"
    num_nodes: int
    num_gpus: int

    @property
    def per_gpu(self) -> int:
        """Slots per GPU: GPU g holds slots g*per_gpu ... (g+1)*per_gpu - 1."""
        return self.phy2log.shape[1] // self.num_gpus

    @property
    def imbalance(self) -> np.ndarray:
        """(layers,) max GPU load / mean GPU load: how much longer the busiest GPU works
        than a perfectly balanced one (1.0 is perfect)."""
        return imbalance(self.gpu_load)

    def gpu_experts(self, layer: int = 0) -> list[list[int]]:
        """The logical experts on each GPU in `layer`."""
        return self.phy2log[layer].reshape(self.num_gpus, self.per_gpu).tolist()


def imbalance(gpu_load) -> np.ndarray:
    """max / mean of a (..., num_gpus) load: 1.0 when every GPU does the same work."""
    gpu_load = np.asarray(gpu_load, dtype=float)
    mean = gpu_load.mean(-1)
    if np.any(mean <= 0):
        raise ValueError("The load is empty: no token was routed.")
    return gpu_load.max(-1) / mean


def _as_load(load) -> np.ndarray:
    load = np.asarray(load, dtype=float)
    if load.ndim == 1:
        load = load[None]
    if load.ndim != 2 or load.shape[1] < 1:
        raise ValueError(f"load must be a (layers x experts) array, not shape {load.shape}.")
    if not np.all(np.isfinite(load)) or np.any(load < 0):
        raise ValueError("load must hold finite, non-negative token counts.")
    return load


def _check(n_experts: int, num_replicas: int, num_groups: int, num_nodes: int,
           num_gpus: int) -> None:
    for name, v in (("num_replicas", num_replicas), ("num_groups", num_groups),
                    ("num_nodes", num_nodes), ("num_gpus", num_gpus)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, not {v}.")
    if num_replicas < n_experts:
        raise ValueError(f"num_replicas ({num_replicas}) is fewer than the {n_experts} "
                         "logical experts: every expert needs at least one slot.")
    if num_replicas % num_gpus:
        raise ValueError(f"num_replicas ({num_replicas}) must be a multiple of num_gpus "
                         f"({num_gpus}): every GPU holds the same number of slots.")
    if n_experts % num_groups:
        raise ValueError(f"{num_groups} groups do not divide the {n_experts} experts "
                         "evenly.")
    if num_gpus % num_nodes:
        raise ValueError(f"num_gpus ({num_gpus}) must be a multiple of num_nodes "
                         f"({num_nodes}): every node has the same number of GPUs.")


def replicate(load: np.ndarray, num_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy replication. load (L, n) -> phy2log (L, num_slots), count (L, n).
    Slot i < n holds expert i; each further slot goes to the expert whose load per
    replica is largest at that moment (ties: the lowest index)."""
    L, n = load.shape
    count = np.ones((L, n), dtype=np.int64)
    phy2log = np.empty((L, num_slots), dtype=np.int64)
    phy2log[:, :n] = np.arange(n)
    rows = np.arange(L)
    for slot in range(n, num_slots):
        best = np.argmax(load / count, axis=1)
        phy2log[:, slot] = best
        count[rows, best] += 1
    return phy2log, count


def pack(weight: np.ndarray, num_packs: int) -> np.ndarray:
    """Balanced packing with equal item counts: items sorted heaviest first, each into
    the lightest pack that still has room. weight (L, n) -> pack index (L, n)."""
    L, n = weight.shape
    per_pack = n // num_packs
    if per_pack * num_packs != n:
        raise ValueError(f"{n} items cannot be packed evenly into {num_packs} packs.")
    if per_pack == 1:  # one item per pack: nothing to choose
        return np.tile(np.arange(n), (L, 1))
    order = np.argsort(-weight, axis=1, kind="stable")
    rows = np.arange(L)
    totals = np.zeros((L, num_packs))
    items = np.zeros((L, num_packs), dtype=np.int64)
    index = np.empty((L, n), dtype=np.int64)
    for j in range(n):
        item = order[:, j]
        target = np.argmin(np.where(items < per_pack, totals, np.inf), axis=1)
        index[rows, item] = target
        totals[rows, target] += weight[rows, item]
        items[rows, target] += 1
    return index


def _slot_order(pack_index: np.ndarray, weight: np.ndarray, num_packs: int) -> np.ndarray:
    """Items reordered pack by pack (pack 0's items first), heaviest first inside a pack:
    (L, n) item indices, so position p*per_pack + r is pack p's r-th item."""
    key = pack_index * (weight.max() + 1.0) * 2 - weight  # pack first, then heavier first
    return np.argsort(key, axis=1, kind="stable")


def _hierarchical(load: np.ndarray, num_replicas: int, num_groups: int, num_nodes: int,
                  num_gpus: int) -> np.ndarray:
    """phy2log (L, num_replicas) for the hierarchical policy (global: 1 group, 1 node)."""
    L, E = load.shape
    group_size, groups_per_node = E // num_groups, num_groups // num_nodes
    # 1. groups onto nodes, balancing the tokens each node receives
    group_load = load.reshape(L, num_groups, group_size).sum(-1)
    node_of_group = pack(group_load, num_nodes)
    groups_by_node = _slot_order(node_of_group, group_load, num_nodes)  # (L, groups)
    # node m's logical experts, in a (L, num_nodes, experts_per_node) table
    experts = (groups_by_node[..., None] * group_size + np.arange(group_size)).reshape(
        L, num_nodes, groups_per_node * group_size)
    # 2. replicate inside each node: rows are (layer, node) pairs
    local_load = np.take_along_axis(load, experts.reshape(L, -1), 1).reshape(
        L * num_nodes, -1)
    slots_per_node = num_replicas // num_nodes
    local_phy, count = replicate(local_load, slots_per_node)
    # 3. replicas onto the node's GPUs, equal slots per GPU
    replica_load = np.take_along_axis(local_load / count, local_phy, 1)
    gpu_of_replica = pack(replica_load, num_gpus // num_nodes)
    order = _slot_order(gpu_of_replica, replica_load, num_gpus // num_nodes)
    local_phy = np.take_along_axis(local_phy, order, 1)  # slot order: GPU by GPU
    # back to global expert ids; nodes in order, so node m's GPUs come m-th
    return np.take_along_axis(experts.reshape(L * num_nodes, -1), local_phy, 1).reshape(
        L, num_replicas)


def rebalance(load, num_replicas: int, num_groups: int, num_nodes: int, num_gpus: int,
              policy: str | None = None) -> Placement:
    """DeepSeek's EPLB. load (layers x logical experts) tokens per expert; num_replicas
    physical slots (experts + redundant ones, a multiple of num_gpus); experts split into
    num_groups groups; num_gpus GPUs on num_nodes nodes. policy None picks "hierarchical"
    when num_groups is a multiple of num_nodes, else "global" (as DeepSeek's code does).
    Returns a `Placement` (phy2log, count, gpu_load)."""
    load = _as_load(load)
    L, E = load.shape
    _check(E, num_replicas, num_groups, num_nodes, num_gpus)
    if policy is None:
        policy = "hierarchical" if num_groups % num_nodes == 0 else "global"
    if policy not in POLICIES:
        raise ValueError(f"policy must be hierarchical or global, not {policy!r}.")
    if policy == "hierarchical":
        if num_groups % num_nodes:
            raise ValueError(f"The hierarchical policy packs whole groups onto nodes: "
                             f"{num_groups} groups do not divide over {num_nodes} nodes.")
        phy2log = _hierarchical(load, num_replicas, num_groups, num_nodes, num_gpus)
    else:
        phy2log = _hierarchical(load, num_replicas, 1, 1, num_gpus)
    count = np.stack([np.bincount(row, minlength=E) for row in phy2log])
    return Placement(phy2log, count, gpu_load(load, phy2log, count, num_gpus), policy,
                     num_nodes, num_gpus)


def gpu_load(load, phy2log: np.ndarray, count: np.ndarray, num_gpus: int) -> np.ndarray:
    """(layers, num_gpus) tokens per GPU when each expert's load splits evenly over its
    replicas."""
    load = _as_load(load)
    per_slot = np.take_along_axis(load / count, phy2log, 1)
    return per_slot.reshape(load.shape[0], num_gpus, -1).sum(-1)


def static_placement(load, num_gpus: int) -> Placement:
    """No EPLB: one copy of each expert, GPU g holding experts g*E/G ... (g+1)*E/G - 1
    (the contiguous layout of `course.moe.ep_ranks`)."""
    load = _as_load(load)
    L, E = load.shape
    if num_gpus < 1 or E % num_gpus:
        raise ValueError(f"{E} experts cannot be split evenly over {num_gpus} GPUs.")
    phy2log = np.tile(np.arange(E), (L, 1))
    count = np.ones((L, E), dtype=np.int64)
    return Placement(phy2log, count, gpu_load(load, phy2log, count, num_gpus), "static",
                     1, num_gpus)


def node_of_slot(placement: Placement) -> np.ndarray:
    """(num_replicas,) the node each slot sits on (GPUs are numbered node by node)."""
    gpus_per_node = placement.num_gpus // placement.num_nodes
    slots = np.arange(placement.phy2log.shape[1])
    return slots // placement.per_gpu // gpus_per_node


# ------------------------------------------------------------------------ a V3-like load


def skewed_load(layers: int = 58, experts: int = 256, skew: float = 1.0, seed: int = 0,
                tokens: float = 1e6) -> np.ndarray:
    """A synthetic, seeded (layers x experts) load with DeepSeek-V3's shape: each layer's
    expert shares drawn log-normally (sigma = `skew`), scaled to `tokens` routed tokens per
    layer. The skew is chosen, not measured: DeepSeek has not published its live loads."""
    if layers < 1 or experts < 1:
        raise ValueError("layers and experts must be at least 1.")
    if not 0 <= skew <= 3:
        raise ValueError(f"skew (the log-normal sigma) must be between 0 and 3, not {skew}.")
    rng = np.random.default_rng(seed)
    share = rng.lognormal(0.0, skew, size=(layers, experts))
    return tokens * share / share.sum(-1, keepdims=True)


def sweep_redundant(load, redundant, num_groups: int, num_nodes: int, num_gpus: int,
                    policy: str | None = None) -> dict:
    """Mean over layers of max/mean GPU load for each number of redundant experts (each
    a multiple of num_gpus' slot step), with the static placement as the reference."""
    load = _as_load(load)
    E = load.shape[1]
    values = []
    for r in redundant:
        p = rebalance(load, E + int(r), num_groups, num_nodes, num_gpus, policy)
        values.append(float(p.imbalance.mean()))
    return dict(redundant=list(map(int, redundant)), imbalance=values,
                static=float(imbalance(static_placement(load, num_gpus).gpu_load).mean())
                if E % num_gpus == 0 else float("nan"))


def min_replicas(load, target: float, num_groups: int, num_nodes: int, num_gpus: int,
                 max_replicas: int | None = None, policy: str | None = None) -> int | None:
    """The fewest physical slots (a multiple of num_gpus, at least the experts) whose EPLB
    placement keeps max/mean GPU load, averaged over layers, at or under `target`; None
    when even `max_replicas` (default: 4x the experts) does not."""
    load = _as_load(load)
    E = load.shape[1]
    if target < 1:
        raise ValueError(f"max/mean is never below 1: a target of {target} cannot be met.")
    limit = max_replicas or 4 * E
    first = -(-E // num_gpus) * num_gpus
    for slots in range(first, limit + 1, num_gpus):
        if rebalance(load, slots, num_groups, num_nodes, num_gpus, policy).imbalance.mean() \
                <= target:
            return slots
    return None
