"""Widgets for notebook 06: collective times on a cluster, and node-limited routing."""

from __future__ import annotations

from functools import lru_cache

from course import comms
from course.plots import comms as plots
from course.units import fmt_bytes, fmt_seconds
from course.widgets import LiveFigure, log_slider, register_bench, slider
from course.widgets.gates import Rule, gate


def collectives(size_mb: float, gpus_per_node: int, nodes: int, nvlink_gb_s: float,
                ib_gb_s: float) -> dict:
    """Time of each collective for one message size on the chosen cluster."""
    times = [comms.collective_time(k, size_mb * 1e6, gpus_per_node, nodes,
                                   nvlink_gb_s=nvlink_gb_s, ib_gb_s=ib_gb_s)
             for k in comms.KINDS]
    return dict(kinds=comms.KINDS, times=times, size=size_mb * 1e6)


def _draw_collectives(fig, result) -> None:
    fig.data[0].y = [t.intra_s * 1e3 for t in result["times"]]
    fig.data[1].y = [t.inter_s * 1e3 for t in result["times"]]


def _summary_collectives(result) -> str:
    parts = [f"{plots.LABELS[k]} <b>{fmt_seconds(t.total_s)}</b>"
             for k, t in zip(result["kinds"], result["times"])]
    return f"{fmt_bytes(result['size'])} per GPU: " + " · ".join(parts)


@register_bench("collectives", notebook="06", sweep=lambda: [
    dict(size_mb=1.0), dict(size_mb=1000.0, nodes=16), dict(gpus_per_node=4, nodes=64),
    dict(ib_gb_s=25.0), dict(nvlink_gb_s=400.0, nodes=1)])
def collectives_widget() -> LiveFigure:
    """Message size, GPUs per node, nodes and bandwidths -> time of each collective."""
    controls = dict(
        size_mb=log_slider("message (MB)", -3, 4, 100.0, step=0.1),
        gpus_per_node=slider("GPUs per node", 1, 16, 8),
        nodes=slider("nodes", 1, 256, 16),
        nvlink_gb_s=slider("NVLink GB/s", 10, 900, 160, step=10),
        ib_gb_s=slider("InfiniBand GB/s", 5, 100, 50, step=5),
    )
    hint = gate(controls,
                Rule(("nvlink_gb_s",), lambda v: v["gpus_per_node"] > 1,
                     "NVLink joins the GPUs of one node: with one GPU per node it carries "
                     "nothing."),
                Rule(("ib_gb_s",), lambda v: v["nodes"] > 1,
                     "InfiniBand joins nodes: with one node it carries nothing."))
    fig = plots.collective_bars(comms.KINDS, [0] * 4, [0] * 4)
    return LiveFigure(controls, collectives, _draw_collectives, fig,
                      summary=_summary_collectives, extra=[hint])


@lru_cache(maxsize=128)
def routing(max_nodes: int, locality: float) -> dict:
    """Simulated routing over 256 experts on 8 nodes, and IB bytes per token per MoE layer."""
    limit = None if max_nodes >= 8 else int(max_nodes)
    stats = comms.simulate_routing(n_tokens=2048, max_nodes=limit, locality=round(locality, 2))
    return dict(stats=stats, dedup=comms.ep_traffic(stats.remote_nodes),
                naive=comms.ep_traffic(stats.remote_experts))


def _draw_routing(fig, result) -> None:
    fig.data[0].y = list(result["stats"].histogram)


def _summary_routing(result) -> str:
    s, d, n = result["stats"], result["dedup"], result["naive"]
    return (f"{s.nodes_per_token:.2f} nodes per token ({s.remote_nodes:.2f} remote) · "
            f"IB per token per MoE layer: <b>{fmt_bytes(d.total_bytes)}</b> "
            f"(one copy per node) vs {fmt_bytes(n.total_bytes)} (one per expert)")


@register_bench("routing_nodes", notebook="06", sweep=lambda: [
    dict(max_nodes=m, locality=loc) for m in (1, 2, 4, 8) for loc in (0.0, 1.0)])
def routing_widget() -> LiveFigure:
    """Node limit M and router locality -> nodes per token and IB bytes per token."""
    controls = dict(max_nodes=slider("max nodes per token (8 = no limit)", 1, 8, 4),
                    locality=slider("router locality", 0.0, 3.0, 0.0, step=0.25, fmt=".2f"))
    fig = plots.nodes_histogram({"tokens": [0.0] * 8})
    return LiveFigure(controls, routing, _draw_routing, fig, summary=_summary_routing)
