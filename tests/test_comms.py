"""Notebook 06: collective time models, expert-parallel traffic, DP sync, gloo fit."""

import numpy as np
import pytest
import torch

from course import comms
from course.memory import param_count


def test_ring_all_reduce_closed_form():
    # 2(p-1) alpha + 2(p-1)/p n/B, with p = 4, n = 1 GB, B = 100 GB/s, alpha = 1 us.
    t = comms.ring_time("all_reduce", 1e9, 4, 1e-6, 100)
    assert t == pytest.approx(6e-6 + 1.5e9 / 100e9)


def test_all_reduce_is_reduce_scatter_plus_all_gather():
    args = (3e8, 8, 2e-6, 160)
    rs = comms.ring_time("reduce_scatter", *args)
    ag = comms.ring_time("all_gather", *args)
    assert comms.ring_time("all_reduce", *args) == pytest.approx(rs + ag)


def test_hierarchical_single_node_equals_flat_ring():
    flat = comms.ring_time("all_reduce", 1e8, 8, comms.ALPHA_NVLINK_S, 160)
    assert comms.collective_time("all_reduce", 1e8, 8, 1).total_s == pytest.approx(flat)


def test_hierarchical_all_reduce_moves_ib_bytes_over_g():
    # With zero latency the IB part carries 2(m-1)/m * n/g bytes.
    t = comms.collective_time("all_reduce", 8e9, 8, 16, alpha_nvlink_s=0, alpha_ib_s=0)
    assert t.inter_s == pytest.approx(2 * 15 / 16 * 1e9 / 50e9)
    assert t.intra_s == pytest.approx(2 * 7 / 8 * 8e9 / 160e9)


def test_bad_collective_inputs():
    with pytest.raises(ValueError, match="Unknown collective"):
        comms.ring_time("broadcast", 1, 2, 0, 1)
    with pytest.raises(ValueError):
        comms.collective_time("all_reduce", 1, 0, 1)
    with pytest.raises(ValueError):
        comms.ring_time("all_reduce", 1, 2, 0, 0)
    for nodes, gpus in ((0, 8), (1, 0), (1.5, 8), ("2", 8), (True, 8)):
        with pytest.raises(ValueError, match="must be a whole number"):
            comms.collective_time("all_reduce", 1e6, gpus, nodes)
    with pytest.raises(ValueError, match="pp must be"):
        comms.layout_sync(1e9, 1e8, 16, 0, 1)
    with pytest.raises(ValueError, match="Unknown link setting"):
        comms.dp_sync_time(1e9, 8, 8, ib_gbs=25)


def test_one_ring_factor_everywhere():
    from course import diloco, parallel_run, ring

    assert ring.ring_bytes("all_reduce", 1000, 4) == 1500  # 2 (p-1)/p n
    assert ring.ring_bytes("all_gather", 1000, 4) == 750
    assert comms.steps_and_volume is ring.steps_and_volume
    assert parallel_run.ring_all_reduce is ring.ring_all_reduce  # the real ring, counted
    model = diloco._mlp(2, 3, 0)
    n = sum(p.numel() for p in model.parameters())
    assert diloco._ring_bytes(model, 4) == ring.ring_bytes("all_reduce", 4 * n, 4)


def test_dispatch_and_combine_bytes_for_v3():
    assert comms.dispatch_bytes_per_copy(7168) == 7168 + 56 * 4  # FP8 + a scale per 1x128
    assert comms.combine_bytes_per_copy(7168) == 14336  # BF16


def test_route_matches_deepseek_gate_transcription():
    # Transcription of inference/model.py Gate.forward (scores already biased).
    g = torch.Generator().manual_seed(3)
    s = torch.sigmoid(torch.randn(64, 256, generator=g))
    grouped = s.view(64, 8, -1)
    group_scores = grouped.topk(2, dim=-1)[0].sum(dim=-1)
    idx = group_scores.topk(4, dim=-1)[1]
    mask = torch.ones(64, 8, dtype=torch.bool).scatter_(1, idx, False)
    ref = grouped.masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1).topk(8)[1]
    assert torch.equal(comms.route(s, 8, 8, 4).sort(1).values, ref.sort(1).values)


def test_random_routing_matches_hypergeometric_closed_form():
    stats = comms.simulate_routing(n_tokens=8192, max_nodes=None)
    expected = comms.expected_nodes_uniform(256, 8, 8)
    assert stats.nodes_per_token == pytest.approx(expected, abs=0.05)
    assert stats.remote_experts == pytest.approx(7.0, abs=0.1)  # 8 x 7/8


def test_node_limit_caps_nodes_and_cuts_ib_bytes():
    free = comms.simulate_routing(max_nodes=None)
    limited = comms.simulate_routing(max_nodes=4)
    assert max(i + 1 for i, h in enumerate(limited.histogram) if h > 0) == 4
    assert limited.remote_nodes < free.remote_nodes
    assert comms.ep_traffic(limited.remote_nodes).total_bytes < comms.ep_traffic(
        free.remote_nodes).total_bytes
    assert sum(limited.histogram) == pytest.approx(1.0)


def test_locality_concentrates_routing():
    assert (comms.simulate_routing(locality=2.0).nodes_per_token
            < comms.simulate_routing(locality=0.0).nodes_per_token)


def test_route_rejects_impossible_limits():
    with pytest.raises(ValueError):
        comms.route(torch.rand(4, 16), 8, 8, 1)  # 1 node holds 2 experts, need 8


def test_v3_layout_replicas_and_sync_is_small():
    p = param_count("deepseek-v3")
    sync = comms.layout_sync(p.total, p.by_part["routed_experts"], 2048, 16, 64)
    assert (sync.dense_dp, sync.expert_dp) == (128, 2)
    assert sync.expert_params_per_gpu * 16 * 64 == pytest.approx(p.by_part["routed_experts"])
    assert 0 < sync.seconds < 1  # vs a ~20 s step at 15360 x 4096 tokens
    with pytest.raises(ValueError):
        comms.layout_sync(p.total, p.by_part["routed_experts"], 1000, 16, 64)


def test_zero1_sends_less_than_fp32_all_reduce_when_weights_are_bf16():
    plain = comms.dp_sync_time(1e9, 16, 8, zero1=False, grad_bytes=4)
    zero = comms.dp_sync_time(1e9, 16, 8, zero1=True, grad_bytes=4, param_bytes=2)
    assert zero < plain


def test_compute_to_comm_ratio_definition():
    # 1 GFLOP at 1000 TFLOP/s = 1 us; 50 kB at 50 GB/s = 1 us.
    assert comms.compute_to_comm_ratio(1e9, 1000, 50e3) == pytest.approx(1.0)


def test_fit_recovers_alpha_and_bandwidth():
    sizes = np.array([1e3, 1e4, 1e5, 1e6, 1e7])
    times = [comms.ring_time("all_reduce", n, 4, 20e-6, 2.5) for n in sizes]
    alpha, bw = comms.fit_alpha_beta("all_reduce", 4, sizes, times)
    assert alpha == pytest.approx(20e-6, rel=1e-6) and bw == pytest.approx(2.5, rel=1e-6)


def test_real_gloo_collectives_grow_with_size():
    sizes = (2**12, 2**24)  # 4 KB vs 16 MB: robust to a busy machine
    got = comms.measure_gloo(("all_reduce", "all_to_all"), world_size=2, sizes=sizes,
                             repeats=5)
    for kind in got:
        assert got[kind][1] > got[kind][0] > 0


def test_widgets_update_and_report_errors():
    from course.widgets.comms import collectives_widget, routing_widget

    live = collectives_widget()
    before = live.result["times"][0].total_s
    live.apply(ib_gb_s=25.0)
    assert live.result["times"][0].total_s > before
    r = routing_widget()
    r.apply(max_nodes=2)
    assert r.result["stats"].nodes_per_token <= 2
    assert list(r.fig.data[0].y)[2:] == [0.0] * 6
