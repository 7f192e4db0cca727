"""Property-based tests: every public calculator and simulator either returns a finite,
sane result (bytes and times ≥ 0, fractions in [0, 1]) or raises ValueError with a
sentence, whatever it is given: zero, negatives, nan, inf, huge values, wrong types,
unknown names. Never another exception.

Examples per test are bounded (`settings` below) so the whole file runs in well under a
minute. "Huge" means 1e30 and 10**18: large enough to be absurd, small enough that a sum
of a few thousand of them stays a finite float.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import (
    activations,
    checks,
    comms,
    configs,
    expert_traffic,
    fp8,
    fp8_accum,
    kvcache,
    memory,
    pipeline,
    planner,
    ring,
    speculative,
    units,
)

FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

#: Values no size, count or time should accept, and a few it should.
ODD = [0, -1, -0.5, 1.5, float("nan"), float("inf"), -float("inf"), 1e30, 10**18, True,
       False, None, "2", "abc", [], (1, 2), {"a": 1}, b"x", 2**63, -(10**18)]

#: Arbitrary values: the odd ones above, small and large integers and floats.
anything = st.one_of(
    st.sampled_from(ODD),
    st.integers(-10, 300),
    st.floats(-1e30, 1e30, allow_nan=False),
    st.floats(allow_nan=True, allow_infinity=True, width=32).filter(
        lambda x: not math.isfinite(x) or abs(x) < 1e30),
)
#: Mostly plausible values with odd ones mixed in (so the valid paths run too).
plausible_int = st.one_of(st.integers(1, 64), st.sampled_from(ODD))
plausible_float = st.one_of(st.floats(1e-3, 1e3), st.sampled_from(ODD))
model_name = st.one_of(st.sampled_from(configs.SHIPPED), st.sampled_from(ODD),
                       st.text(max_size=8))


def call(fn, *args, **kw):
    """fn(*args, **kw), or None when it raised ValueError; any other exception fails the
    test, and so does a ValueError without a sentence (at least a few words)."""
    try:
        return fn(*args, **kw)
    except ValueError as err:
        assert len(str(err).split()) >= 3, f"ValueError without a sentence: {err!r}"
        return None


def sane(x, *, low: float = 0.0, high: float = math.inf) -> None:
    """Every number in x (a number, dict, dataclass, tuple or array) is finite and in range."""
    if x is None or isinstance(x, str):
        return
    if isinstance(x, dict):
        for v in x.values():
            sane(v, low=low, high=high)
        return
    if hasattr(x, "__dataclass_fields__"):
        for k in x.__dataclass_fields__:
            sane(getattr(x, k), low=low, high=high)
        return
    arr = np.asarray(x.detach() if torch.is_tensor(x) else x, dtype=float)
    assert np.isfinite(arr).all(), x
    assert (arr >= low).all() and (arr <= high).all(), x


# ------------------------------------------------------------------------------- configs

CONFIG_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "intermediate_size", "vocab_size", "head_dim", "kv_lora_rank", "q_lora_rank",
               "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_routed_experts",
               "num_experts_per_tok", "moe_intermediate_size", "first_k_dense_replace",
               "n_group", "topk_group", "n_shared_experts", "num_local_experts",
               "rms_norm_eps", "routed_scaling_factor", "num_nextn_predict_layers",
               "max_position_embeddings", "scoring_func"]


@FAST
@given(base=st.sampled_from(configs.SHIPPED), key=st.sampled_from(CONFIG_KEYS), value=anything)
def test_load_config_with_any_value_for_any_key(base, key, value):
    raw = {**_raw(base), key: value}
    cfg = call(configs.load_config, raw)
    if cfg is not None:  # accepted: then the shapes make sense and the counts are sane
        assert cfg.num_heads % cfg.num_kv_heads == 0
        assert 0 <= cfg.first_k_dense_replace <= cfg.num_layers
        if cfg.is_moe:
            assert 1 <= cfg.experts_per_token <= cfg.n_routed_experts
        p = memory.param_count(cfg)
        assert 0 < p.active <= p.total
        sane(kvcache.kv_bytes_per_token(cfg))


def _raw(name: str) -> dict:
    import json

    return json.loads(configs.config_path(name).read_text())


@FAST
@given(source=st.one_of(anything, st.text(max_size=12)))
def test_load_config_with_anything_as_source(source):
    call(configs.load_config, source)


@FAST
@given(name=st.one_of(st.sampled_from(list(configs.GPUS)), anything, st.text(max_size=6)),
       precision=st.one_of(st.sampled_from(["bf16", "fp8"]), anything))
def test_gpu_specs(name, precision):
    spec = call(configs.gpu, name)
    if spec is not None:
        sane(call(spec.peak_tflops, precision))


# ------------------------------------------------------------------------ memory, kvcache


@FAST
@given(model=model_name, seq=anything, batch=plausible_int, dtype=plausible_float)
def test_memory_and_cache_calculators(model, seq, batch, dtype):
    sane(call(memory.param_count, model))
    sane(call(kvcache.kv_bytes_per_token, model, dtype))
    sane(call(kvcache.kv_cache_bytes, model, seq, batch, dtype))
    sane(call(kvcache.mha_bytes_per_token, model, dtype))
    sane(call(kvcache.reduction, model, dtype), low=-math.inf, high=1)
    sane(call(memory.inference_memory, model, dtype, seq, batch))
    sane(call(memory.training_memory, model, "bf16-mixed", "adamw", seq, batch))
    sane(call(kvcache.tokens_that_fit, model, dtype, batch))
    sane(call(kvcache.cache_gb, model, [seq], batch))


@FAST
@given(model=model_name, context=anything, batch=plausible_int,
       path=st.one_of(st.sampled_from(kvcache.DECODE_PATHS), st.sampled_from(ODD)),
       gpu=st.one_of(st.sampled_from(list(configs.GPUS)), st.sampled_from(ODD)))
def test_decode_cost_and_roofline(model, context, batch, path, gpu):
    cost = call(kvcache.decode_step_cost, model, context, batch, path)
    sane(cost)
    if cost is not None:
        r = call(kvcache.roofline_seconds, cost, gpu)
        if r is not None:
            sane({k: v for k, v in r.items() if k != "bound"})
    sane(call(kvcache.attention_flops_per_token, model, context, path))
    sane(call(kvcache.weights_touched, model, batch))
    sane(call(kvcache.ridge_intensity, gpu))


@FAST
@given(n=anything, recipe=st.one_of(st.sampled_from(list(memory.RECIPES)), st.sampled_from(ODD)),
       optimizer=st.one_of(st.sampled_from(list(memory.OPTIMIZERS)), st.sampled_from(ODD)),
       gb=anything)
def test_state_bytes_and_gpus_needed(n, recipe, optimizer, gb):
    sane(call(memory.state_bytes, n, recipe, optimizer))
    got = call(memory.gpus_needed, n, gb)
    assert got is None or got >= 1
    sane(call(memory.ffn_params, n, 7))


@FAST
@given(hidden=anything, layers=plausible_int, experts=anything, top_k=plausible_int)
def test_custom_config(hidden, layers, experts, top_k):
    cfg = call(memory.custom_config, hidden, layers, experts, top_k)
    if cfg is not None:
        sane(memory.param_count(cfg))


@FAST
@given(model=model_name, seq=anything, recompute=st.sampled_from(
    list(activations.RECOMPUTE) + ODD[:4]), tp=plausible_int, mb=plausible_int,
    flash=st.booleans())
def test_activation_memory(model, seq, recompute, tp, mb, flash):
    sane(call(activations.activation_elements, model, seq, recompute, flash, tp))
    sane(call(activations.activation_bytes, model, seq, mb, recompute, 2, flash, tp))
    sane(call(activations.toy_mlp_saved_bytes, tp, mb, 2, seq))


# ------------------------------------------------------------------------ communication

COLLECTIVE = st.one_of(st.sampled_from(ring.KINDS), st.sampled_from(ODD),
                       st.just("broadcast"))


@FAST
@given(kind=COLLECTIVE, n=anything, p=anything, alpha=anything, bw=anything)
def test_ring_time_and_bytes(kind, n, p, alpha, bw):
    sane(call(comms.ring_time, kind, n, p, alpha, bw))
    sane(call(ring.ring_bytes, kind, n, p))


@FAST
@given(kind=COLLECTIVE, n=anything, g=anything, m=anything, bw=plausible_float)
def test_hierarchical_collective(kind, n, g, m, bw):
    t = call(comms.collective_time, kind, n, g, m, nvlink_gb_s=bw)
    sane(t)
    if t is not None:
        assert t.total_s >= max(t.intra_s, t.inter_s) - 1e-12


@FAST
@given(n=anything, dp=anything, g=anything, zero1=st.booleans(), total=anything,
       pp=plausible_int, ep=plausible_int)
def test_data_parallel_sync(n, dp, g, zero1, total, pp, ep):
    sane(call(comms.dp_sync_time, n, dp, g, zero1))
    sane(call(comms.layout_sync, total, n, 2048, pp, ep))


@FAST
@given(hidden=anything, block=anything, copies=anything, experts=anything, nodes=anything,
       k=anything)
def test_expert_traffic(hidden, block, copies, experts, nodes, k):
    sane(call(expert_traffic.dispatch_bytes_per_copy, hidden, block))
    sane(call(expert_traffic.combine_bytes_per_copy, hidden))
    sane(call(expert_traffic.ep_traffic, copies, hidden))
    sane(call(expert_traffic.expert_flops_per_token, hidden, 64, k))
    sane(call(expert_traffic.compute_to_comm_ratio, copies, block, hidden))
    got = call(expert_traffic.expected_nodes_uniform, experts, nodes, k)
    if got is not None:
        sane(got, low=1 - 1e-9, high=min(nodes, k) + 1e-9)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(tokens=st.one_of(st.integers(1, 64), st.sampled_from(ODD)),
       experts=st.one_of(st.sampled_from([8, 16, 32]), st.sampled_from(ODD)),
       nodes=plausible_int, k=plausible_int, limit=st.one_of(st.none(), plausible_int),
       locality=anything)
def test_routing_simulation(tokens, experts, nodes, k, limit, locality):
    stats = call(comms.simulate_routing, tokens, experts, nodes, k, limit, locality)
    if stats is not None:
        sane(stats)
        assert 1 - 1e-6 <= stats.nodes_per_token <= min(nodes, k) + 1e-6
        assert sum(stats.histogram) == pytest.approx(1.0)


@FAST
@given(sizes=st.lists(anything, max_size=4), times=st.lists(anything, max_size=4),
       kind=COLLECTIVE, p=plausible_int)
def test_fit_alpha_beta(sizes, times, kind, p):
    try:
        alpha, bw = comms.fit_alpha_beta(kind, p, sizes, times)
    except ValueError as err:
        assert len(str(err).split()) >= 3
        return
    assert alpha >= 0 and bw > 0 and math.isfinite(alpha)


# ------------------------------------------------------------------------------ pipeline

SCHEDULE = st.one_of(st.sampled_from(pipeline.SCHEDULES), st.sampled_from(ODD),
                     st.just("pipedream"))
TIME = st.one_of(st.floats(0.1, 5), st.sampled_from(ODD))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(schedule=SCHEDULE, stages=st.one_of(st.integers(1, 8), st.sampled_from(ODD)),
       mb=st.one_of(st.integers(1, 24), st.sampled_from(ODD)), f=TIME, b=TIME,
       w=st.one_of(st.floats(0, 1), st.sampled_from(ODD)),
       fb=st.one_of(st.none(), TIME), comm=st.one_of(st.floats(0, 1), st.sampled_from(ODD)))
def test_pipeline_simulator(schedule, stages, mb, f, b, w, fb, comm):
    tl = call(pipeline.simulate, schedule, stages, mb, f, b, w, fb, comm)
    if tl is not None:
        sane(tl.makespan)
        sane(tl.idle)
        sane(tl.bubble_fraction, high=1)
        assert all(e.end >= e.start >= 0 for e in tl.events)
        assert tl.makespan >= max(tl.busy) - 1e-9
    got = call(pipeline.published_bubble, schedule, stages, f, b, w, fb)
    if got is not None:
        assert math.isfinite(got)  # a formula: may go negative outside its assumptions
    sane(call(pipeline.published_activations, schedule, stages, mb))


@FAST
@given(names=st.lists(SCHEDULE, max_size=3), stages=st.one_of(st.integers(1, 6),
       st.sampled_from(ODD)), ms=st.lists(st.one_of(st.integers(1, 16), st.sampled_from(ODD)),
                                          max_size=3))
def test_bubble_sweep(names, stages, ms):
    out = call(pipeline.bubble_sweep, names, stages, ms)
    for row in (out or {}).values():
        assert all(v is None or 0 <= v <= 1 for v in row)


# ----------------------------------------------------------------------------------- FP8

FMT = st.one_of(st.sampled_from(list(fp8.DTYPES)), st.sampled_from(ODD), st.just("e3m4"))
BLOCK = st.one_of(st.none(), st.sampled_from([fp8.TILE, fp8.BLOCK, (2, 3)]),
                  st.tuples(anything, anything), st.sampled_from(ODD))
ARRAY = st.one_of(
    st.builds(lambda r, c, s: torch.randn(r, c, generator=torch.Generator().manual_seed(s))
              * 10.0 ** (s % 7 - 3), st.integers(1, 9), st.integers(1, 20), st.integers(0, 99)),
    st.lists(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2), min_size=1, max_size=3),
    st.sampled_from([torch.tensor([[1.0, float("nan")]]), torch.ones(3), torch.zeros(2, 2),
                     "abc", None, 5, torch.tensor([[float("inf")]])]))


@FAST
@given(x=ARRAY, fmt=FMT, block=BLOCK)
def test_quantize_round_trip(x, fmt, block):
    got = call(fp8.quantize, x, fmt, block)
    if got is not None:
        q, scale = got
        sane(scale)
        assert (scale > 0).all()
        xh = fp8.dequantize(q, scale, block)
        sane(xh.abs())
        err = fp8.quantization_error(x, fmt, block)
        sane(err["underflow"], high=1)
        sane(err["rel_error"])
    sane(call(fp8.format_spec, fmt))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(outlier=anything, tokens=st.one_of(st.integers(1, 40), st.sampled_from(ODD)),
       channels=st.one_of(st.integers(1, 300), st.sampled_from(ODD)), fmt=FMT)
def test_compare_scalings(outlier, tokens, channels, fmt):
    got = call(fp8.compare_scalings, outlier, fmt, tokens, channels)
    for errs in (got or {}).values():
        sane(errs["underflow"], high=1)
        sane(errs["norm_error"])


@settings(max_examples=20, deadline=None, derandomize=True)
@given(k=st.one_of(st.sampled_from([32, 64, 128, 256]), st.sampled_from(ODD)),
       bits=st.one_of(st.integers(1, 30), st.sampled_from(ODD)),
       n_c=st.one_of(st.none(), st.sampled_from([32, 64, 100]), st.sampled_from(ODD)),
       dist=st.sampled_from(["uniform", "normal", "cauchy", None]))
def test_accumulation_error(k, bits, n_c, dist):
    got = call(fp8_accum.accumulation_error, k, bits, n_c, dist, 4, 4)
    if got is not None:
        sane(got["max"])
        sane(got["median"])


@FAST
@given(width=anything, shape=st.sampled_from([(3, 8), (2, 3, 8), (3, 5), (8,)]))
def test_fp8_linear_sizes(width, shape):
    layer = call(fp8.FP8Linear, width, 4)
    if layer is not None and layer.in_features <= 64:
        y = call(layer, torch.ones(*shape))
        if y is not None:
            assert y.shape == (*shape[:-1], 4)


# ------------------------------------------------------------------- planner, speculative


PLAN_KEYS = st.sampled_from(list(planner.Setup.__dataclass_fields__) + ["foo", "gpus"])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(key=PLAN_KEYS, value=anything)
def test_planner_with_any_setting(key, value):
    p = call(planner.plan, **{key: value})
    if p is not None:
        sane(p.memory)
        sane([p.compute_s, p.comm_s, p.steps, p.days(), p.dollars()])
        sane(p.serving_bytes)
    sane(call(planner.serving_tokens_per_dollar, "deepseek-v3", mfu=value))


@FAST
@given(rates=st.one_of(st.lists(anything, max_size=3), st.sampled_from(ODD)),
       a=anything, b=anything, c=anything, d=anything)
def test_speculative_estimates(rates, a, b, c, d):
    got = call(speculative.expected_tokens_per_step, rates)
    if got is not None:
        sane(got, low=1)
    sane(call(speculative.speedup_estimate, a, b, c, d))


@FAST
@given(x=anything)
def test_units_format_or_refuse(x):
    for fmt in (units.fmt_bytes, units.fmt_count, units.fmt_seconds):
        text = call(fmt, x)
        assert text is None or isinstance(text, str)
    for convert in (units.gib, units.gb):
        got = call(convert, x)
        assert got is None or math.isfinite(got)


# ------------------------------------------------------------------------------- checks

ANSWERS = st.one_of(st.sampled_from(ODD), st.text(max_size=10), st.floats(allow_nan=True),
                    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
                    st.just(Ellipsis))


@FAST
@given(answer=ANSWERS)
def test_a_value_exercise_answered_with_anything_prints_a_line(answer, capsys):
    assert checks.check_answer("07.dualpipe_peak_activations", answer) in (True, False)
    out = capsys.readouterr().out
    assert out.startswith(("✗ 07.", "○ 07.", "✓ 07.")) and "Traceback" not in out


@FAST
@given(answer=ANSWERS)
def test_a_function_exercise_returning_anything_prints_a_line(answer, capsys):
    from course import exercises

    ex = exercises.get("03.swiglu_params")
    use = checks.check_exercise("03.swiglu_params", lambda *args: answer)
    assert use is ex.reference or use(4, 5) == answer
    out = capsys.readouterr().out
    assert out.startswith(("✗ 03.", "✓ 03.")), out


def test_text_answers_get_the_hint_not_a_traceback(capsys):
    assert not checks.check_answer("07.dualpipe_peak_activations", "seventeen")
    use = checks.check_exercise("03.swiglu_params", lambda d, inter: "nine")
    out = capsys.readouterr().out
    assert "✗ 07.dualpipe_peak_activations: 'seventeen' is not right" in out
    assert "a number, not text" in out and "Hint:" in out
    assert "✗ 03.swiglu_params" in out and use(2, 3) == 18  # the reference takes over
    with pytest.raises(ValueError, match="No exercise named"):
        checks.check_answer("99.nothing", 1)


# ------------------------------------------------------------------- parallel layouts

LAYOUT_KEYS = st.sampled_from(["dp", "tp", "pp", "ep", "zero", "sp"])
PARALLEL_MODEL = st.one_of(st.sampled_from(["deepseek-v3", "mixtral-8x7b", "llama-3-8b"]),
                           st.sampled_from(ODD))


def _layout(key, value):
    from course import parallel

    return call(parallel.Layout, **{key: value})


@FAST
@given(key=LAYOUT_KEYS, value=anything, model=PARALLEL_MODEL, world=anything)
def test_layouts_with_any_value(key, value, model, world):
    from course import parallel

    layout = _layout(key, value)
    if layout is None:
        return
    assert all(isinstance(getattr(layout, k), int) and getattr(layout, k) >= 1
               for k in ("dp", "tp", "pp", "ep")) and 0 <= layout.zero <= 3
    call(parallel.validate, model, layout, world)
    r = call(parallel.replicas, model, layout)
    sane(r)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(model=PARALLEL_MODEL, pp=st.sampled_from([1, 2, 4]), ep=st.sampled_from([1, 2, 8]),
       zero=st.sampled_from([0, 1, 3]), seq=anything, mb=plausible_int, m=plausible_int,
       recipe=st.one_of(st.sampled_from(list(memory.RECIPES)), st.sampled_from(ODD)),
       optimizer=st.one_of(st.sampled_from(list(memory.OPTIMIZERS)), st.sampled_from(ODD)))
def test_per_gpu_memory_and_traffic(model, pp, ep, zero, seq, mb, m, recipe, optimizer):
    from course import parallel

    layout = parallel.Layout(dp=8, pp=pp, ep=ep, zero=zero)
    sane(call(parallel.per_gpu_memory, model, layout, recipe, optimizer, seq, mb,
              "selective", m))
    sane(call(parallel.comm_per_step, model, layout, recipe, seq, mb, m))


@FAST
@given(n=anything, world=anything, strategy=st.one_of(st.sampled_from(["dp", "zero1"]),
                                                     st.sampled_from(ODD)),
       grad=plausible_float, weight=plausible_float)
def test_dp_step_bytes(n, world, strategy, grad, weight):
    from course import parallel

    sane(call(parallel.dp_step_bytes, n, world, strategy, grad, weight))


ROUTING = st.one_of(
    st.lists(st.lists(st.integers(0, 15), max_size=6), min_size=1, max_size=4),
    st.lists(st.lists(anything, max_size=3), max_size=3), st.sampled_from(ODD))


@FAST
@given(experts=ROUTING, per_rank=anything, row=anything)
def test_ep_all_to_all_bytes(experts, per_rank, row):
    from course import parallel

    got = call(parallel.ep_all_to_all_bytes, experts, per_rank, row)
    if got is not None:
        for rank in got:
            sane(rank)
        assert len(got) == len(experts)
        # every token that leaves a rank arrives at another: totals match
        assert sum(g["dispatch"] for g in got) == pytest.approx(sum(g["combine"] for g in got))


@FAST
@given(a=anything, b=anything, c=anything, tokens=anything)
def test_global_batch_and_v3_schedule(a, b, c, tokens):
    from course import parallel

    g = call(parallel.global_batch, a, b, c)
    assert g is None or (isinstance(g, int) and g >= 1)
    steps = call(parallel.accumulation_steps, a, b, c)
    assert steps is None or (isinstance(steps, int) and steps >= 1)
    got = call(parallel.v3_batch, tokens)
    if got is not None:
        sane(got, low=3072, high=15360)
    m = call(parallel.v3_microbatches, a)
    assert m is None or m >= 1


# ----------------------------------------------------------------------- compute, FLOPs

@FAST
@given(model=model_name, seq=anything, tokens=anything, mtp=st.booleans(),
       recompute=st.one_of(st.sampled_from(list(activations.RECOMPUTE)), st.sampled_from(ODD)))
def test_flops_calculators(model, seq, tokens, mtp, recompute):
    from course import compute

    sane(call(compute.matmul_params_per_token, model))
    sane(call(compute.attention_flops_per_token, model, seq))
    sane(call(compute.training_flops_per_token, model, seq, include_mtp=mtp))
    sane(call(compute.training_flops, model, tokens, seq))
    sane(call(compute.recompute_flops_per_token, model, seq, recompute))


@FAST
@given(flops=anything, gpus=anything, peak=anything, mfu=anything, hours=anything)
def test_time_and_mfu_calculators(flops, gpus, peak, mfu, hours):
    from course import compute

    sane(call(compute.training_seconds, flops, gpus, peak, mfu))
    sane(call(compute.achieved_tflops, flops, hours))
    sane(call(compute.implied_mfu, flops, hours, peak))
    sane(call(compute.throughput_for, flops, gpus, hours))
    sane(call(compute.mfu_against_roofline, flops, "H800"))


ESTIMATE_KEYS = st.sampled_from(["gpu_name", "n_gpus", "precision", "mfu", "price_per_hour",
                                 "flops_per_token"])


@FAST
@given(params=anything, tokens=anything, key=ESTIMATE_KEYS, value=anything,
       counts=st.one_of(st.lists(anything, max_size=3), st.sampled_from(ODD)))
def test_estimate_and_days_vs_gpus(params, tokens, key, value, counts):
    from course import compute

    est = call(compute.estimate, params, tokens, **{key: value})
    if est is not None:
        sane([est.flops, est.seconds, est.days, est.gpu_hours, est.dollars])
        assert est.n_gpus >= 1
    sane(call(compute.days_vs_gpus, 37e9, 1e12, counts))


@FAST
@given(mfu=anything, bubble=anything, ceiling=anything, model=st.one_of(
    st.sampled_from(["deepseek-v3", "llama-3-8b"]), st.sampled_from(ODD)),
    recompute=st.one_of(st.sampled_from(list(activations.RECOMPUTE)), st.sampled_from(ODD)))
def test_hfu_and_time_budget(mfu, bubble, ceiling, model, recompute):
    from course import compute

    sane(call(compute.hfu, mfu, model, 4096, recompute))
    shares = call(compute.time_budget, mfu, model, 4096, recompute, bubble, ceiling)
    if shares is not None:
        sane(shares, high=1 + 1e-9)
        assert sum(shares.values()) == pytest.approx(1.0)


@FAST
@given(d=anything, f=plausible_int, layers=plausible_int, tokens=anything)
def test_mlp_step_flops(d, f, layers, tokens):
    from course import compute

    got = call(compute.mlp_step_flops, d, f, layers, tokens)
    if got is not None:
        assert isinstance(got, int) and got > 0


@settings(max_examples=10, deadline=None, derandomize=True)
@given(n=st.one_of(st.integers(1, 48), st.sampled_from(ODD)),
       repeats=st.one_of(st.integers(1, 3), st.sampled_from(ODD)))
def test_measured_matmul(n, repeats):
    from course import compute

    got = call(compute.measure_matmul_tflops, n, repeats=repeats)
    if got is not None:
        assert got > 0 and math.isfinite(got)
