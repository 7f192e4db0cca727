"""The economics of DeepSeek's published day of service (notebook 15, `course.serving`):
DeepSeek's "Day 6: DeepSeek-V3/R1 Inference System Overview" (open-source week,
2025-03-01): cost, revenue, the "545% cost profit margin" and what-if scenarios.
"""

from __future__ import annotations

import math

#: DeepSeek, "Day 6: One More Thing, DeepSeek-V3/R1 Inference System Overview" (2025-03-01),
#: one day from 2025-02-27 12:00 to 02-28 12:00 UTC+8, V3 and R1 together.
PUBLISHED = dict(
    peak_nodes=278, average_nodes=226.75, gpus_per_node=8, hours=24, gpu_hour_price=2.0,
    input_tokens=608e9, cache_hit_tokens=342e9, output_tokens=168e9,
    price_hit=0.14, price_miss=0.55, price_output=2.19,  # R1 API, $ per million tokens
    cost=87_072, revenue=562_027, cost_profit_margin_pct=545,
    tokens_per_s_per_request=(20, 22), kv_length_per_output_token=4989,
    prefill_tokens_per_s_per_node=73.7e3, decode_tokens_per_s_per_node=14.8e3,
)


def daily_cost(nodes: float = PUBLISHED["average_nodes"], price: float = 2.0,
               gpus_per_node: int = 8, hours: float = 24) -> float:
    """Dollars a day: nodes x GPUs per node x hours x price per GPU-hour."""
    if nodes < 0 or price < 0 or gpus_per_node < 1 or hours < 0:
        raise ValueError("Nodes, price and hours must not be negative.")
    return nodes * gpus_per_node * hours * price


def daily_revenue(cache_hit_tokens: float, cache_miss_tokens: float, output_tokens: float,
                  price_hit: float = 0.14, price_miss: float = 0.55,
                  price_output: float = 2.19) -> float:
    """Dollars a day if every token were billed, prices in $ per million tokens."""
    if min(cache_hit_tokens, cache_miss_tokens, output_tokens) < 0:
        raise ValueError("Token counts must not be negative.")
    return (cache_hit_tokens * price_hit + cache_miss_tokens * price_miss
            + output_tokens * price_output) / 1e6


def cost_profit_margin(revenue: float, cost: float) -> float:
    """DeepSeek's "cost profit margin": profit / cost (5.45 means 545%)."""
    if cost <= 0:
        raise ValueError("The cost must be positive.")
    return revenue / cost - 1


def revenue_margin(revenue: float, cost: float) -> float:
    """The margin as most accounts quote it: profit / revenue."""
    if revenue <= 0:
        raise ValueError("The revenue must be positive.")
    return (revenue - cost) / revenue


def published_revenue(rounding: bool = False):
    """Revenue from the published (rounded) token counts; with `rounding`, the (low, high)
    range every count within half a billion of its published value allows."""
    P = PUBLISHED
    hit, inp, out = P["cache_hit_tokens"], P["input_tokens"], P["output_tokens"]
    prices = (P["price_hit"], P["price_miss"], P["price_output"])
    if not rounding:
        return daily_revenue(hit, inp - hit, out, *prices)
    h = 0.5e9  # the miss price is higher, so fewer hits and more input give the most
    return (daily_revenue(hit + h, inp - h - (hit + h), out - h, *prices),
            daily_revenue(hit - h, inp + h - (hit - h), out + h, *prices))


def nodes_needed(input_tokens: float, output_tokens: float, prefill_per_node: float,
                 decode_per_node: float, seconds: float = 86_400) -> dict:
    """Average nodes busy all day to serve the tokens at the given per-node rates."""
    if prefill_per_node <= 0 or decode_per_node <= 0:
        raise ValueError("Tokens per second per node must be positive.")
    prefill = input_tokens / (prefill_per_node * seconds)
    decode = output_tokens / (decode_per_node * seconds)
    return dict(prefill=prefill, decode=decode, total=prefill + decode)


def scenario(price: float = 2.0, cache_hit: float = 0.5625, billed: float = 1.0,
             decode_per_node: float = 14.8e3, prefill_per_node: float = 73.7e3,
             idle: float = 0.0, price_scale: float = 1.0) -> dict:
    """The published day's tokens, served at your rates and prices.

    Nodes = the nodes the tokens keep busy at `decode_per_node` / `prefill_per_node`,
    plus `idle` (a share of capacity kept but unused: night-time slack, peaks);
    revenue = `billed` share of the tokens at R1 prices x `price_scale` with `cache_hit`
    of the input hitting the cache. Returns cost, revenue, both margins and the nodes."""
    P = PUBLISHED
    if not 0 <= cache_hit <= 1 or not 0 <= billed <= 1 or not 0 <= idle < 1:
        raise ValueError("cache_hit and billed must be in [0, 1], idle in [0, 1).")
    if price_scale < 0:
        raise ValueError("The price scale must not be negative.")
    busy = nodes_needed(P["input_tokens"], P["output_tokens"], prefill_per_node,
                        decode_per_node)
    nodes = busy["total"] / (1 - idle)
    cost = daily_cost(nodes, price)
    hit = P["input_tokens"] * cache_hit
    revenue = billed * price_scale * daily_revenue(
        hit, P["input_tokens"] - hit, P["output_tokens"], P["price_hit"], P["price_miss"],
        P["price_output"])
    return dict(nodes=nodes, busy=busy, cost=cost, revenue=revenue,
                profit=revenue - cost,
                cost_profit_margin=cost_profit_margin(revenue, cost) if cost else math.nan,
                revenue_margin=revenue_margin(revenue, cost) if revenue else math.nan)
