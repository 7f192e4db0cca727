"""course.eplb: DeepSeek's expert-parallel load balancer, rebuilt from its description."""

import time

import numpy as np
import pytest

from course import eplb

README_LOAD = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
               [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]


def _valid(p: eplb.Placement, load, num_replicas, num_gpus):
    load = np.asarray(load, dtype=float)
    L, E = load.shape
    assert p.phy2log.shape == (L, num_replicas) and p.count.shape == (L, E)
    assert p.gpu_load.shape == (L, num_gpus)
    assert (p.count >= 1).all(), "every expert needs at least one slot"
    assert (p.count.sum(1) == num_replicas).all()
    for layer in range(L):  # count agrees with phy2log
        assert np.array_equal(np.bincount(p.phy2log[layer], minlength=E), p.count[layer])
    # an expert's load splits evenly over its replicas: the GPUs carry all the tokens
    assert np.allclose(p.gpu_load.sum(1), load.sum(1))
    assert p.per_gpu * num_gpus == num_replicas


def test_readme_example_is_reproduced_exactly():
    """deepseek-ai/EPLB README: 12 experts in 4 groups, 16 slots, 2 nodes x 4 GPUs."""
    p = eplb.rebalance(README_LOAD, 16, 4, 2, 8)
    assert p.policy == "hierarchical"
    assert p.phy2log.tolist() == [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                                  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]
    _valid(p, README_LOAD, 16, 8)


def test_replication_goes_to_the_largest_load_per_replica():
    phy2log, count = eplb.replicate(np.array([[10.0, 1.0, 4.0]]), 6)
    # 10 -> 5 per copy, then 5 vs 4: the second spare goes to expert 0 again (10/2 = 5 > 4),
    # then 10/3 = 3.33 < 4: the third spare goes to expert 2
    assert phy2log.tolist() == [[0, 1, 2, 0, 0, 2]]
    assert count.tolist() == [[3, 1, 2]]


def test_packing_is_balanced_with_equal_counts():
    w = np.array([[7.0, 5, 4, 3, 2, 1]])
    index = eplb.pack(w, 2)
    assert np.bincount(index[0]).tolist() == [3, 3]
    totals = [w[0][index[0] == k].sum() for k in range(2)]
    assert sorted(totals) == [11.0, 11.0]  # 7+3+1 and 5+4+2


def test_hierarchical_keeps_every_group_on_one_node():
    load = eplb.skewed_load(61, 256, 1.2, seed=3)
    p = eplb.rebalance(load, 288, 8, 4, 32)
    assert p.policy == "hierarchical"
    _valid(p, load, 288, 32)
    nodes = eplb.node_of_slot(p)
    for layer in range(61):
        group_of_slot = p.phy2log[layer] // 32
        for g in range(8):
            assert len(set(nodes[group_of_slot == g])) == 1, (layer, g)
        # each node holds exactly 8 / 4 = 2 whole groups
        for n in range(4):
            assert len(set(group_of_slot[nodes == n])) == 2


def test_decode_layout_uses_the_global_policy():
    load = eplb.skewed_load(58, 256, 1.0, seed=0)
    p = eplb.rebalance(load, 288, 8, 18, 144)  # 8 groups do not divide over 18 nodes
    assert p.policy == "global" and p.per_gpu == 2
    _valid(p, load, 288, 144)


def test_never_worse_than_no_replication_on_skewed_and_measured_loads():
    from course import moe

    loads = [eplb.skewed_load(8, 64, s, seed=k) for k in range(6) for s in (0.5, 1.0, 2.0)]
    for load in loads:
        static = eplb.static_placement(load, 8).imbalance
        for extra in (0, 8, 32):
            p = eplb.rebalance(load, 64 + extra, 8, 2, 8)
            assert (p.imbalance <= static + 1e-12).all()
    run = moe.train("none", steps=20)  # the collapsed toy MoE of notebook 08, measured
    measured = run.load[-10:].mean(0, keepdims=True)
    static = eplb.static_placement(measured, 4).imbalance
    for extra in (0, 4, 8):
        assert eplb.rebalance(measured, 16 + extra, 4, 2, 4).imbalance <= static + 1e-12


def test_more_redundancy_helps_a_skewed_load():
    load = eplb.skewed_load(58, 256, 1.0, seed=0)
    slots = [0, 32, 64, 128, 256]
    flat = eplb.sweep_redundant(load, slots, 8, 4, 32, policy="global")["imbalance"]
    assert flat[0] > flat[1] >= flat[-1] >= 1.0
    assert flat[-1] < 1.01  # with spare slots everywhere the GPUs almost level
    nested = eplb.sweep_redundant(load, slots, 8, 4, 32)["imbalance"]
    assert nested[0] > nested[1]


def test_hierarchical_cannot_beat_its_node_packing():
    """Groups stay on their node, so no replication inside a node can move load between
    nodes: the busiest GPU is at least as far above average as the busiest node."""
    load = eplb.skewed_load(58, 256, 1.0, seed=0)
    p = eplb.rebalance(load, 256 + 256, 8, 4, 32)
    node_load = p.gpu_load.reshape(58, 4, 8).sum(-1)
    assert (p.imbalance >= eplb.imbalance(node_load) - 1e-12).all()
    assert p.imbalance.mean() > eplb.rebalance(load, 512, 8, 4, 32, "global").imbalance.mean()


def test_uniform_load_is_already_balanced():
    p = eplb.rebalance(np.ones((3, 16)), 16, 4, 2, 4)
    assert np.allclose(p.imbalance, 1.0)


@pytest.mark.parametrize("args, words", [
    ((288 + 1, 8, 18, 144), "multiple of num_gpus"),
    ((200, 8, 18, 144), "fewer than the 256"),
    ((288, 7, 18, 144), "do not divide the 256"),
    ((288, 8, 5, 144), "multiple of num_nodes"),
    ((288, 8, 0, 144), "at least 1"),
])
def test_bad_arguments_get_a_sentence(args, words):
    with pytest.raises(ValueError, match=words):
        eplb.rebalance(np.ones((2, 256)), *args)


def test_bad_loads_and_policies():
    with pytest.raises(ValueError, match="layers x experts"):
        eplb.rebalance(np.ones((2, 3, 4)), 4, 1, 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        eplb.rebalance([[1.0, -1.0]], 2, 1, 1, 1)
    with pytest.raises(ValueError, match="divide over"):
        eplb.rebalance(np.ones((1, 256)), 288, 8, 18, 144, policy="hierarchical")


def test_min_replicas_meets_its_target():
    load = eplb.skewed_load(20, 256, 1.0, seed=1)
    slots = eplb.min_replicas(load, 1.1, 8, 4, 32)
    assert eplb.rebalance(load, slots, 8, 4, 32).imbalance.mean() <= 1.1
    assert eplb.rebalance(load, slots - 32, 8, 4, 32).imbalance.mean() > 1.1
    with pytest.raises(ValueError, match="never below 1"):
        eplb.min_replicas(load, 0.9, 8, 4, 32)


def test_61_layers_of_256_experts_in_under_a_second():
    load = eplb.skewed_load(61, 256, 1.0, seed=0)
    eplb.rebalance(load, 288, 8, 18, 144)  # warm-up (imports, allocator)
    start = time.perf_counter()
    eplb.rebalance(load, 288, 8, 18, 144)
    eplb.rebalance(load, 288, 8, 4, 32)
    assert time.perf_counter() - start < 1.0
