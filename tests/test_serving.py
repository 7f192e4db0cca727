"""course.serving: the toy server's tokens, memory and prefix cache; V3 on paper; the
published economics of DeepSeek's day of service."""

import math

import numpy as np
import pytest

from course import serving


@pytest.fixture(scope="module")
def model():
    return serving.toy_model()


@pytest.fixture(scope="module")
def requests():
    return serving.workload(n_requests=16, rate=60.0, prefix_share=0.5, seed=1)


@pytest.fixture(scope="module")
def served(model, requests):
    return serving.serve(model, requests, max_batch=6, budget_tokens=256)


# ------------------------------------------------------------------------ the toy server


def test_batched_server_equals_one_request_at_a_time(model, requests, served):
    """Continuous batching changes when a token is computed, never which token."""
    assert [r.rid for r in served.requests] == [q.rid for q in requests]
    for req, stats in zip(requests, served.requests):
        assert stats.tokens == serving.generate_alone(model, req), req.rid
        assert len(stats.tokens) == req.max_new


def test_requests_really_shared_decode_steps(served):
    decode = [s.batch for s in served.steps if s.kind == "decode"]
    assert max(decode) > 1 and max(decode) <= served.max_batch


def test_prefix_cache_changes_work_not_tokens(model, requests, served):
    plain = serving.serve(model, requests, max_batch=6, budget_tokens=256, prefix_cache=False)
    assert [r.tokens for r in plain.requests] == [r.tokens for r in served.requests]
    shared = [q for q in requests if q.prefix_len]
    assert len(shared) >= 2
    # the first shared request computes the prefix, every later one reuses it
    saved = (len(shared) - 1) * shared[0].prefix_len
    assert plain.prefill_tokens - served.prefill_tokens == saved
    assert plain.prefill_tokens == plain.prompt_tokens


def test_admission_never_exceeds_the_budget(model, requests):
    need = max(len(q.prompt) + q.max_new for q in requests)
    for budget in (need, need + 40, 4 * need):
        r = serving.serve(model, requests, max_batch=16, budget_tokens=budget)
        assert all(s.reserved_tokens <= budget for s in r.steps)
        assert all(s.used_tokens <= s.reserved_tokens for s in r.steps)
    tight = serving.serve(model, requests, max_batch=16, budget_tokens=need)
    assert max(s.batch for s in tight.steps) < max(
        s.batch for s in serving.serve(model, requests, 16, 4 * need).steps)


def test_times_are_consistent(served):
    for r in served.requests:
        assert r.arrival <= r.admitted <= r.first_token <= r.finish
        assert r.ttft > 0 and (math.isnan(r.tpot) or r.tpot > 0)
    busy = served.busy_seconds
    assert busy <= served.makespan + 1e-9
    assert served.output_tokens_per_s == pytest.approx(served.output_tokens / served.makespan)


def test_expert_load_is_measured_while_serving(model, served):
    k = model.cfg.experts_per_token
    tokens = served.prefill_tokens + sum(len(r.tokens) - 1 for r in served.requests)
    assert served.expert_load.shape == (len(model.moe_layers()), model.cfg.n_routed_experts)
    assert np.allclose(served.expert_load.sum(1), k * tokens)


def test_progress_is_reported(model, requests):
    calls = []
    serving.serve(model, requests[:4], progress=lambda d, t, text: calls.append((d, t, text)))
    assert calls[-1][0] == calls[-1][1] == 4 and "requests done" in calls[-1][2]


def test_workload_is_seeded_and_validated():
    a, b = serving.workload(seed=3), serving.workload(seed=3)
    assert a == b and a != serving.workload(seed=4)
    assert all(q.prompt[: q.prefix_len] == serving.system_prompt(q.prefix_len)
               for q in a if q.prefix_len)
    assert not any(q.prefix_len for q in serving.workload(prefix_share=0.0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        serving.workload(prefix_share=1.5)
    with pytest.raises(ValueError, match="positive rate"):
        serving.workload(rate=0.0)


def test_bad_server_settings_get_a_sentence(model, requests):
    with pytest.raises(ValueError, match="cannot hold the longest request"):
        serving.serve(model, requests, budget_tokens=8)
    with pytest.raises(ValueError, match="batch cap"):
        serving.serve(model, requests, max_batch=0)


# ----------------------------------------------------------------------------- V3 on paper


def test_v3_decode_step_from_first_principles():
    s = serving.v3_decode(1, context=4989)
    # one request: the step reads the resident weights (attention, dense, shared, head)
    # and 2 x 58 routed experts in FP8 from 3.35 TB/s HBM
    from course.memory import ffn_params, param_count

    parts = param_count("deepseek-v3").by_part
    resident = sum(parts[k] for k in ("attention", "dense_mlp", "shared_experts", "router",
                                      "norms", "output_head"))
    assert s.weight_s == pytest.approx((resident + 116 * ffn_params(7168, 2048)) / 3.35e12)
    assert s.kv_s == pytest.approx(4989 * 70_272 / 3.35e12)
    # all-to-all: 8 experts x 58 layers over 50 GB/s; dispatch 7168 FP8 values plus one
    # FP32 scale per 128 (56 x 4 bytes), combine 7168 BF16 values
    assert s.comm_s == pytest.approx(8 * (7168 + 56 * 4 + 7168 * 2) * 58 / 50e9)
    assert s.tokens_per_s_per_node == pytest.approx(8 / s.seconds)


def test_v3_decode_trades_speed_per_request_for_throughput():
    curve = serving.v3_decode_curve([1, 8, 64, 256])
    node, req = curve["serial"]["per_node"], curve["serial"]["per_request"]
    assert node == sorted(node) and req == sorted(req, reverse=True)
    # hiding the all-to-all can only help
    assert all(o >= s for o, s in zip(curve["overlap"]["per_node"], node))


def test_published_decode_point_sits_under_the_roofline():
    """At the published 20-22 tokens/s per request the roofline bound exceeds 14.8k."""
    step = next(serving.v3_decode(b) for b in range(1, 512)
                if serving.v3_decode(b).tokens_per_s_per_request < 22)
    assert step.tokens_per_s_per_node > 14.8e3


def test_v3_prefill_implied_efficiency():
    p = serving.v3_prefill(context=2500)
    assert p["cache_hit"] == pytest.approx(342 / 608)
    computed = 73.7e3 * (1 - 342 / 608)
    assert p["implied_efficiency"] == pytest.approx(
        computed * (p["matmul_s"] + p["attention_s"]) / 8)
    assert 0.05 < p["implied_efficiency"] < 0.5
    full = serving.v3_prefill(context=2500, efficiency=p["implied_efficiency"])
    assert full["input_per_node"] == pytest.approx(73.7e3)


# ------------------------------------------------------------------------------ economics


def test_daily_cost_is_reproduced_exactly():
    assert serving.daily_cost(226.75, 2.0) == 87_072  # 226.75 x 8 x 24 x 2


def test_revenue_from_the_published_token_counts():
    """The published counts are rounded to a billion tokens: they give $562,100, and the
    published $562,027 lies inside the range that rounding allows."""
    assert serving.published_revenue() == pytest.approx(562_100.0)
    low, high = serving.published_revenue(rounding=True)
    assert low < serving.PUBLISHED["revenue"] < high
    # an output count of 167.97 B (which rounds to 168 B) gives exactly $562,027
    out = (562_027 - 342e9 * 0.14 / 1e6 - 266e9 * 0.55 / 1e6) / 2.19 * 1e6
    assert round(out / 1e9) == 168
    assert serving.daily_revenue(342e9, 266e9, out) == pytest.approx(562_027, abs=1e-6)


def test_545_percent_is_profit_over_cost():
    P = serving.PUBLISHED
    margin = serving.cost_profit_margin(P["revenue"], P["cost"])
    assert round(100 * margin) == 545
    assert serving.revenue_margin(P["revenue"], P["cost"]) == pytest.approx(0.845, abs=5e-4)


def test_published_rates_explain_the_node_count():
    """608 B input at 73.7k/s and 168 B output at 14.8k/s per node keep ~226.9 nodes busy:
    the published average is 226.75."""
    n = serving.nodes_needed(608e9, 168e9, 73.7e3, 14.8e3)
    assert n["total"] == pytest.approx(226.75, rel=1e-3)


def test_scenario_defaults_reproduce_the_day_and_respond():
    s = serving.scenario()
    assert s["revenue"] == pytest.approx(serving.published_revenue())
    assert s["cost"] == pytest.approx(87_072, rel=1e-3)
    half = serving.scenario(billed=0.5)
    assert half["revenue"] == pytest.approx(s["revenue"] / 2)
    assert serving.scenario(idle=0.5)["cost"] == pytest.approx(2 * s["cost"])
    with pytest.raises(ValueError, match="billed"):
        serving.scenario(billed=2.0)


# -------------------------------------------------------------------------------- widgets


def test_widgets_build_and_answer(model):
    from course.widgets import serving as w

    live = w.server(model)
    assert live.error is None and live.result.output_tokens > 0
    r = live.apply(max_batch=1)
    assert max(s.batch for s in r.steps if s.kind == "decode") == 1
    r = live.apply(budget_tokens=64, max_batch=8)  # the slider's least: one request fits
    assert live.error is None and r.peak_reserved <= 64
    with pytest.raises(ValueError, match="cannot hold the longest request"):
        w.serve_toy(8, 40.0, 32, 0.5, model=model)
    if getattr(live, "uses_progress", False):  # a browser change runs in the background
        live.controls["max_batch"].set_state({"value": 2})
        r = live.wait()
        assert live.error is None and max(s.batch for s in r.steps) <= 2

    first = serving.run(model=model)  # the defaults, served once
    again = w.server(model, first=first)
    assert again.result is first and len(again.fig.data[0].x) > 0
    with pytest.raises(ValueError, match="defaults"):
        w.server(model, first=serving.run(max_batch=2, model=model))

    dec = w.v3_decode()
    assert dec.result["step"].batch == 128 and dec.error is None
    dec.apply(batch=1)
    assert list(dec.fig.data[-1].x) == [1]

    bal = w.eplb_v3()
    assert bal.result["placement"].policy == "hierarchical"
    bal.apply(layout=list(w.LAYOUTS)[1], extra_slots=0)
    assert bal.result["placement"].policy == "global" and bal.result["redundant"] == 32

    eco = w.economics_widget()
    assert eco.result["revenue"] == pytest.approx(serving.published_revenue())
    eco.apply(billed=0.0)
    assert eco.result["revenue"] == 0.0 and list(eco.fig.data[1].y)[1] == 0.0


def test_prefill_seconds_compares_whole_and_cached_prefill(model, requests):
    shared = next(q for q in requests if q.prefix_len)
    t = serving.prefill_seconds(model, shared, repeats=3)
    assert t["whole_tokens"] == len(shared.prompt)
    assert t["rest_tokens"] == len(shared.prompt) - shared.prefix_len
    assert t["whole_s"] > 0 and t["rest_s"] > 0
    with pytest.raises(ValueError, match="no shared prefix"):
        serving.prefill_seconds(model, next(q for q in requests if not q.prefix_len))
