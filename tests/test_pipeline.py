"""The pipeline simulator against DeepSeek-V3 Table 2 / the DualPipe README, and against
its own invariants (every operation once, every dependency respected)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import pipeline, pipeline_timing, schedules
from course.pipeline import bubble_sweep, published_activations, simulate

SETTINGS = settings(max_examples=40, deadline=None)
times = st.floats(0.1, 5.0, allow_nan=False)
frac = st.floats(0.05, 1.0)


def assert_dependencies_hold(tl: pipeline.Timeline) -> None:
    """Independent check of a timeline: one operation at a time per device, every forward
    after the previous stage's forward, every backward after the next stage's backward and
    its own forward, every W after its backward; each (stage, micro-batch) once."""
    by_device: dict = {}
    f_end, b_end, w_end = {}, {}, {}
    for e in tl.events:
        by_device.setdefault(e.device, []).append(e)
        b_mb = e.other if e.kind == "F&B" else e.microbatch
        if e.kind in ("F", "F&B"):
            assert (e.stage, e.microbatch) not in f_end
            f_end[e.stage, e.microbatch] = e
        if e.kind in ("B", "Bi", "F&B"):
            key = (_b_stage(tl, e), b_mb)
            assert key not in b_end
            b_end[key] = e
        if e.kind == "W":
            w_end[e.stage, e.microbatch] = e
    for evs in by_device.values():
        evs.sort(key=lambda e: e.start)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(evs, evs[1:]))
    assert len(f_end) == len(b_end) == _positions(tl) * tl.microbatches
    for (stage, m), e in f_end.items():
        prev = _upstream(tl, stage, m)
        if prev is not None:
            assert f_end[prev].end <= e.start + 1e-9
    for (stage, m), e in b_end.items():
        assert f_end[stage, m].end <= e.start + 1e-9
        nxt = _downstream(tl, stage, m)
        if nxt is not None:
            assert b_end[nxt].end <= e.start + 1e-9
    for key, e in w_end.items():
        assert b_end[key].end <= e.start + 1e-9


def _positions(tl):
    """Model pieces along the chain: stages, or stages x virtual chunks when interleaved."""
    return tl.stages * tl.virtual


def _upstream(tl, stage, m):
    """Forwards run stage 0 -> PP-1 in every direction; only the device placement differs."""
    return None if stage == 0 else (stage - 1, m)


def _downstream(tl, stage, m):
    return None if stage == _positions(tl) - 1 else (stage + 1, m)


def _b_stage(tl, e):
    # The backward half of a pair runs the other stage its device holds: PP-1-stage.
    return tl.stages - 1 - e.stage if e.kind == "F&B" else e.stage


# ------------------------------------------------------------------ the published table


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 40), times, times, st.sampled_from(["gpipe", "1f1b"]))
def test_1f1b_and_gpipe_bubble_is_pp_minus_1_times_f_plus_b(pp, m, f, b, schedule):
    tl = simulate(schedule, pp, m, f=f, b=b)
    assert tl.idle == pytest.approx([(pp - 1) * (f + b)] * pp)
    assert tl.bubble == pytest.approx(pipeline.published_bubble(schedule, pp, f, b))


@SETTINGS
@given(st.integers(2, 12), st.integers(0, 24), times, frac, frac)
def test_zb1p_bubble_matches_table_when_w_fits(pp, extra, f, b_in_ratio, w_ratio):
    # ZB-H1's formula assumes each deferred W fits a gap: W <= F and W <= B - W.
    b_input = f * (0.5 + b_in_ratio)
    w = min(f, b_input) * w_ratio
    tl = simulate("zb1p", pp, pp + extra, f=f, b=b_input + w, w=w)
    expected = (pp - 1) * (f + b_input + w - 2 * w)
    assert tl.idle == pytest.approx([expected] * pp)


def test_zb1p_formula_fails_where_w_does_not_fit():
    # W > F: the published formula would go below the (PP-1)F the last stage must wait.
    tl = simulate("zb1p", 4, 12, f=1.0, b=3.0, w=2.0)
    assert pipeline.published_bubble("zb1p", 4, 1.0, 3.0, 2.0) == pytest.approx(0.0)
    assert tl.bubble >= 3 * 1.0 - 1e-9 and tl.bubble > 0


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 10), times, frac, frac,
       st.sampled_from(["dualpipe", "dualpipev"]))
def test_dualpipe_bubble_matches_table_on_balanced_chunks(half, extra, f, w_ratio, fb_ratio,
                                                          schedule):
    # The table's balance: the input-gradient backward as long as the forward (B - W = F),
    # W <= F; F&B anywhere between the longer half (B) and no overlap (F + B).
    pp, w = 2 * half, f * w_ratio
    b = f + w
    fb = b + fb_ratio * f
    m = 2 * pp + 2 * extra if schedule == "dualpipe" else pp + extra
    tl = simulate(schedule, pp, m, f=f, b=b, w=w, fb=fb)
    expected = (pp / 2 - 1) * (fb + b - 3 * w)
    # The table describes the middle ranks, which overlap the most pairs.
    assert max(tl.idle) == pytest.approx(expected)
    if fb == pytest.approx(f + b):  # without an overlap gain every rank idles the same
        assert tl.bubble == pytest.approx(expected)


def test_dualpipe_differs_from_table_when_forward_and_input_backward_differ():
    # Worked at PP=4: F=1, B=3, W=0 -> formula (F&B + B) = 7, but the simulation finds 6,
    # because the gaps the formula counts assumed B - W = F.
    tl = simulate("dualpipe", 4, 8, f=1.0, b=3.0)
    assert pipeline.published_bubble("dualpipe", 4, 1.0, 3.0) == 7.0
    assert tl.bubble == pytest.approx(6.0)


@pytest.mark.parametrize("schedule,pp,ms", [
    ("gpipe", 5, [1, 3, 5, 17]), ("1f1b", 6, [1, 4, 6, 13, 40]), ("zb1p", 7, [7, 9, 30]),
    ("dualpipe", 6, [12, 14, 20, 64]), ("dualpipev", 6, [6, 7, 11, 30])])
def test_bubble_does_not_grow_with_microbatches(schedule, pp, ms):
    bubbles = [simulate(schedule, pp, m, f=1.0, b=2.3, w=0.9, fb=2.9).bubble for m in ms]
    assert bubbles == pytest.approx([bubbles[0]] * len(bubbles))


@pytest.mark.parametrize("pp", [2, 4, 6, 10])
def test_peak_activations_and_parameters_match_table(pp):
    kw = dict(f=1.0, b=2.0, w=0.7, fb=2.6)
    for schedule in ("gpipe", "1f1b", "zb1p", "dualpipe", "dualpipev"):
        m = 3 * pp
        tl = simulate(schedule, pp, m, **kw)
        assert max(tl.peak_activations) == pipeline.published_activations(schedule, pp, m)
        assert set(tl.params_per_device) == {2 if schedule.startswith("dualpipe") else 1}
    assert simulate("dualpipev", pp, 3 * pp, **kw).devices == pp // 2


def test_1f1b_stage_i_stores_pp_minus_i_microbatches():
    assert simulate("1f1b", 5, 12).peak_activations == (5, 4, 3, 2, 1)


# ------------------------------------------------------------- interleaved 1F1B


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 5), st.integers(1, 6), times, times)
def test_interleaved_bubble_is_pp_minus_1_times_f_plus_b_over_v(pp, v, groups, f, b):
    # Narayanan et al. 2021 §2.2.2: (p-1)(t_f+t_b)/v with micro-batches a multiple of p;
    # the simulation finds it on every device, for any F and B.
    tl = simulate("interleaved", pp, pp * groups, f=f, b=b, virtual=v)
    expected = (pp - 1) * (f + b) / v
    assert tl.idle == pytest.approx([expected] * pp)
    assert pipeline.published_bubble("interleaved", pp, f, b, virtual=v) == pytest.approx(
        expected)
    assert tl.makespan == pytest.approx(pp * groups * (f + b) + expected)


@pytest.mark.parametrize("pp,m", [(1, 3), (4, 1), (4, 6), (5, 12), (3, 9)])
def test_interleaved_with_one_chunk_is_1f1b(pp, m):
    one = simulate("interleaved", pp, m, f=1.3, b=2.1, virtual=1)
    assert one.events == simulate("1f1b", pp, m, f=1.3, b=2.1).events
    assert one.virtual == 1 and one.params_per_device == (1,) * pp


@pytest.mark.parametrize("pp,v", [(2, 2), (4, 2), (4, 4), (8, 3)])
def test_interleaved_memory_and_communication(pp, v):
    tl = simulate("interleaved", pp, 2 * pp, virtual=v)
    assert tl.params_per_device == pytest.approx([1.0] * pp)  # v chunks of 1/v of a stage
    # every chunk boundary is a hop, forward and backward: 2(pv - 1) against 1F1B's 2(p - 1)
    assert tl.sends_per_microbatch == 2 * (pp * v - 1)
    assert simulate("1f1b", pp, 2 * pp).sends_per_microbatch == 2 * (pp - 1)
    # device 0 warms up 2(p-1) + (v-1)p chunks, then holds one more: (pv + p - 1) / v stages
    assert max(tl.peak_activations) == pytest.approx((pp * v + pp - 1) / v)


@pytest.mark.parametrize("pp,v,comm", [(4, 2, 0.1), (4, 4, 0.05), (8, 2, 0.1)])
def test_interleaved_pays_every_hop_once_the_messages_take_time(pp, v, comm):
    # Where the formula stops holding: it assumes free messages. A small per-hop delay adds
    # one delay per hop of one micro-batch's round trip, 2(pv - 1) comm, to every device.
    for m in (2 * pp, 4 * pp):
        tl = simulate("interleaved", pp, m, virtual=v, comm=comm)
        expected = pipeline.published_bubble("interleaved", pp, virtual=v)
        assert tl.bubble == pytest.approx(expected + 2 * (pp * v - 1) * comm)


def test_interleaved_order_breaks_on_partial_groups():
    # Micro-batches not a multiple of PP: the simulator refuses (as the paper does); run
    # anyway, Megatron-LM's order either deadlocks or idles longer than the formula.
    with pytest.raises(RuntimeError, match="deadlocked"):
        pipeline._run(schedules.interleaved(4, 5, 3), [[k % 4 for k in range(12)]], 12,
                      dict(F=1 / 3, B=2 / 3), 0.0, (0,))
    events = pipeline._run(schedules.interleaved(2, 3, 2), [[k % 2 for k in range(4)]], 4,
                           dict(F=0.5, B=1.0), 0.0, (0,))
    tl = pipeline.timeline_from_events("interleaved", 2, 3, events, 2, virtual=2)
    assert tl.bubble == pytest.approx(2.5)
    assert pipeline.published_bubble("interleaved", 2, virtual=2) == pytest.approx(1.5)


def test_equal_parameter_memory_dualpipev_halves_the_devices():
    # D = 4 devices, each holding 1/4 of the model: 1F1B, interleaved v = 2 and DualPipeV
    # (8 stages of 1/8, two per device) -- DualPipe needs 2/4 of the model per device.
    d, m, t = 4, 16, dict(f=1.0, b=2.0, w=1.0, fb=2.5)
    half = {k: x / 2 for k, x in t.items()}  # a DualPipeV stage is half a device's share
    v = simulate("dualpipev", 2 * d, m, **half)
    assert v.devices == d and max(v.idle) == pytest.approx((d - 1) * (2.5 + 2.0 - 3.0) / 2)
    assert v.sends_per_microbatch == 2 * (2 * d - 2)  # the V's turn stays on device D-1
    dual = simulate("dualpipe", d, m, **t)
    assert max(dual.params_per_device) == 2 and max(v.params_per_device) == 2  # half stages
    assert simulate("interleaved", d, m, virtual=2).bubble == pytest.approx(4.5)
    assert max(v.idle) < 4.5


# --------------------------------------------------------------- schedule structure


@pytest.mark.parametrize("schedule,pp,m", [
    ("gpipe", 3, 5), ("1f1b", 4, 3), ("1f1b", 5, 11), ("zb1p", 4, 9), ("dualpipe", 4, 8),
    ("dualpipe", 8, 20), ("dualpipe", 6, 30), ("dualpipev", 8, 10), ("interleaved", 4, 8),
    ("interleaved", 3, 3), ("interleaved", 5, 20)])
def test_every_dependency_is_respected(schedule, pp, m):
    kw = dict(virtual=3) if schedule == "interleaved" else {}
    tl = simulate(schedule, pp, m, f=1.3, b=2.1, w=0.8, fb=2.7, **kw)
    assert_dependencies_hold(tl)
    assert sum(tl.busy) == pytest.approx(sum(e.end - e.start for e in tl.events))


def test_dualpipe_follows_the_readme_example_step_counts():
    # FACTS.md §3.3, PP=8, 20 chunks: rank r runs steps 4 and 5 (F&B pairs) this often.
    steps = {0: [6, 1, 3, 3, 3, 1, 3, 1], 1: [4, 2, 2, 4, 2, 2, 2, 2],
             2: [2, 3, 1, 5, 1, 3, 1, 3], 3: [0, 4, 0, 6, 0, 4, 0, 4]}
    programs = schedules.dualpipe(8, 20, split=True)
    for rank, s in steps.items():
        middle = rank == 3
        for r in (rank, 7 - rank):
            kinds = [kind for kind, _ in programs[r]]
            assert kinds.count("F&B") == 2 * s[3] - middle + s[4]
            assert kinds[: s[0] + 2 * s[1]] == ["F"] * (s[0] + 2 * s[1])
            assert kinds.count("F") == s[0] + 2 * s[1] + s[2] + middle
            assert kinds.count("W") == s[2] + s[6] + s[7]


def test_comm_delay_adds_to_the_pipeline_fill_and_drain():
    # GPipe: (PP-1)(F+B) plus one hop per stage boundary on the way down and back up.
    assert simulate("gpipe", 4, 8, comm=0.5).bubble == pytest.approx(3 * 3.0 + 2 * 3 * 0.5)
    assert simulate("1f1b", 4, 8, comm=0.5).bubble > simulate("1f1b", 4, 8).bubble


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("args,kwargs,words", [
    (("dualpipe", 5, 20), {}, "even number of stages"),
    (("dualpipe", 8, 14), {}, "at least"),
    (("dualpipe", 8, 21), {}, "even number of micro-batches"),
    (("dualpipev", 8, 6), {}, "at least as many"),
    (("1f1b", 4, 0), {}, "at least one"),
    (("1f1b", 0, 4), {}, "stages"),
    (("1f1b", 4, 8), dict(f=0.0), "positive"),
    (("1f1b", 4, 8), dict(b=-1.0), "positive"),
    (("zb1p", 4, 8), dict(w=2.0), "0 <= w < b"),
    (("dualpipe", 4, 8), dict(fb=1.5), "max(f, b)"),
    (("pipedream", 4, 8), {}, "Unknown schedule"),
    (("1f1b", 4, 8), dict(f=None), "f must be a positive number"),
    (("1f1b", 4, 8), dict(f=float("nan")), "f must be a positive number"),
    (("1f1b", 4, 8), dict(comm=float("nan")), "comm must be a number"),
    (("1f1b", 2.5, 8), {}, "stages must be a whole number"),
    (("1f1b", "4", 8), {}, "stages must be a whole number"),
    (("interleaved", 4, 8), dict(virtual=0), "virtual must be a whole number from 1"),
    (("interleaved", 4, 8), dict(virtual=2.5), "virtual must be a whole number"),
    (("interleaved", 4, 8), dict(virtual="2"), "virtual must be a whole number"),
    (("interleaved", 4, 8), dict(virtual=True), "virtual must be a whole number"),
    (("interleaved", 4, 10), dict(virtual=2), "multiple of the stages"),
    (("1f1b", 4, 8), dict(virtual=2), "only to the interleaved schedule"),
])
def test_invalid_shapes_raise_value_error(args, kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        simulate(*args, **kwargs)


def test_formulas_and_sweeps_reject_unknown_names():
    with pytest.raises(ValueError, match="Unknown schedule 'foo'"):
        published_activations("foo", 4, 8)
    with pytest.raises(ValueError, match="Unknown schedule 'foo'"):
        bubble_sweep(["1f1b", "foo"], 4, [8])
    with pytest.raises(ValueError, match="Unknown time 'x'"):
        bubble_sweep(["1f1b"], 4, [8], x=1.0)
    assert bubble_sweep(["dualpipe"], 4, [4, 8])["dualpipe"][0] is None  # shape, not name
    with pytest.raises(ValueError, match="no interleaved row"):
        published_activations("interleaved", 4, 8)
    sweep = bubble_sweep(["1f1b", "interleaved"], 4, [6, 8], virtual=2)
    assert sweep["interleaved"][0] is None and sweep["1f1b"][0] is not None
    assert sweep["interleaved"][1] == pytest.approx(4.5 / (8 * 3 + 4.5))


# ----------------------------------------------------------------- speed and inputs


def test_dualpipe_64_stages_256_microbatches_is_fast():
    start = time.process_time()
    tl = simulate("dualpipe", 64, 256, f=1.0, b=2.0, w=0.8, fb=2.5)
    assert time.process_time() - start < 1.0
    assert max(tl.peak_activations) == 65


def test_overlap_pair_hides_communication():
    seq = pipeline_timing.overlap_pair(overlap=False)
    both = pipeline_timing.overlap_pair()
    assert pipeline_timing.pair_time(seq) == pytest.approx(10.0)  # 2 + 2 comm, 2 + 4 compute
    # Overlapped, the pair can be no faster than its compute stream (6) and beats 10.
    assert 6.0 <= pipeline_timing.pair_time(both) < 10.0
    for stream in ("compute", "comm"):
        ps = sorted((p for p in both if p.stream == stream), key=lambda p: p.start)
        assert all(a.end <= b.start for a, b in zip(ps, ps[1:]))


def test_measured_chunk_times_are_consistent():
    from course.model import make_block
    from course.train import tiny_config

    block = make_block(tiny_config(), 0)
    t = pipeline_timing.measure_chunk_times(block, batch=2, seq_len=8, repeats=2)
    assert min(t.f, t.b, t.b_input, t.fb) > 0
    sim = t.for_simulator()
    assert 0 <= sim["w"] < sim["b"] and max(sim["f"], sim["b"]) <= sim["fb"] <= sim["f"] + sim["b"]
    simulate("dualpipe", 4, 8, **sim)  # the measured numbers are valid simulator input


def test_gantt_widget_follows_its_controls_and_reports_bad_shapes():
    from course.widgets.pipeline import pipeline_gantt

    live = pipeline_gantt()
    assert live.result.schedule == "dualpipe" and len(live.fig.data) == 5
    live.apply(schedule="1f1b", stages=4, microbatches=8, f=1.0, b=2.0)
    assert live.result.bubble == pytest.approx(9.0)
    assert sum(len(t.x) for t in live.fig.data) == len(live.result.events)
    live.apply(schedule="dualpipe", stages=5)
    assert live.error and "even number of stages" in live.error
    assert live.result.schedule == "1f1b"  # the last good figure stays
    assert live.controls["virtual"].disabled
    live.apply(schedule="interleaved", stages=4, microbatches=8, virtual=2)
    assert not live.controls["virtual"].disabled and live.error is None
    assert live.result.bubble == pytest.approx(4.5) and "4.5" in live.summary.value
    live.apply(microbatches=10)
    assert live.error and "multiple of the stages" in live.error


def test_real_1f1b_on_gloo_processes_respects_the_schedule():
    from course import pipeline_real

    tl = pipeline_real.run_1f1b(stages=2, microbatches=3, batch=2, seq_len=8, timeout_s=90)
    assert_dependencies_hold(tl)
    for rank in range(2):  # each rank ran the simulator's own 1F1B program, in order
        ran = [(e.kind, e.microbatch) for e in sorted(tl.events, key=lambda e: e.start)
               if e.device == rank]
        program = schedules.one_direction("1f1b", 2, 3, split=False)[rank]
        assert ran == [(kind, m) for kind, ((_, _, m, _),) in program]
    assert min(tl.idle) > 0  # the last rank waits for the first forward, rank 0 for the drain
    sim = simulate("1f1b", 2, 3, **pipeline_real.median_times(tl))
    assert tl.makespan > 0.3 * sim.makespan
