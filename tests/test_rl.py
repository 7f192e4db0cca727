"""Tests of course.rl: GRPO's pieces against hand computations and closed forms, the
direction of its gradient, short runs over seeds, SFT against its demonstrations'
quality, determinism, and the memory GRPO saves."""

import math

import numpy as np
import pytest
import torch

from course import memory, rl
from course.model import TinyLM
from course.presets import preset


def test_task_split_and_reward_rule():
    train, test = rl.problems()
    assert len(train) + len(test) == 10 ** train.shape[1]
    assert not {tuple(t) for t in train} & {tuple(t) for t in test}
    tok = rl.tokenizer()
    terms = np.array([[3, 1, 2], [3, 1, 2], [3, 1, 2], [3, 1, 2]])
    resp = torch.tensor([tok.encode("1 2 3 ."), tok.encode("2 1 3 ."),
                         tok.encode("1 2 . ."), [2, 3, 4, 5]])
    s = rl.score(terms, resp)
    assert s["correct"].tolist() == [True, False, False, False]
    assert s["well_formed"].tolist() == [True, True, False, False]
    np.testing.assert_allclose(s["reward"], [1 + rl.FORMAT_WEIGHT, rl.FORMAT_WEIGHT, 0, 0])
    assert s["length"].tolist() == [4, 4, 3, 4]


@pytest.mark.parametrize("quality", [0.0, 0.7, 1.0])
def test_demonstrations_have_the_asked_quality_and_the_rule_agrees(quality):
    d = rl.demonstrations(500, quality)
    assert d.correct.mean() == pytest.approx(quality)
    terms = (d.prompts[:, 2:-1] - 1).numpy()
    s = rl.score(terms, d.responses)
    assert s["well_formed"].all()
    assert (s["correct"] == d.correct).all()


def test_group_advantages_by_hand():
    # mean 0.5, population std 0.5
    adv = rl.group_advantages([[1.0, 0.0, 0.0, 1.0], [0.2, 0.2, 0.2, 0.2]])
    np.testing.assert_allclose(adv[0], [1, -1, -1, 1])
    np.testing.assert_allclose(adv[1], [0, 0, 0, 0])  # equal rewards: nothing to prefer
    r = np.array([1.1, 0.1, 0.1, 0.0])
    np.testing.assert_allclose(rl.group_advantages(r[None])[0], (r - r.mean()) / r.std())
    with pytest.raises(ValueError, match="G ≥ 2"):
        rl.group_advantages([[1.0]])


def test_clipped_objective_values():
    cases = [(1.5, 2.0, 2.4), (1.5, -2.0, -3.0), (0.5, 1.0, 0.5), (0.5, -1.0, -0.8),
             (1.1, 1.0, 1.1)]
    for ratio, adv, expected in cases:
        assert float(rl.clipped_objective(ratio, adv, 0.2)) == pytest.approx(expected)


def test_kl_estimator_is_nonnegative_and_unbiased():
    assert float(rl.kl_estimate(torch.tensor(-1.0), torch.tensor(-1.0))) == 0
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    est = rl.kl_estimate(p.log()[x], q.log()[x])
    assert (est >= 0).all()
    exact = float((p * (p / q).log()).sum())  # KL(pi || pi_ref), tokens sampled from pi
    assert float(est.mean()) == pytest.approx(exact, rel=0.02)


def test_grpo_loss_against_a_hand_computation():
    logp = torch.log(torch.tensor([[0.5, 0.9], [0.2, 0.4]]))
    old = torch.log(torch.tensor([[0.4, 0.9], [0.25, 0.4]]))
    ref = torch.log(torch.tensor([[0.5, 0.8], [0.2, 0.5]]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # second response is one token long
    adv = torch.tensor([1.0, -1.0])
    eps, beta = 0.2, 0.1

    def kl(p, r):
        return r / p - math.log(r / p) - 1

    # response 1: ratios 1.25 (clipped to 1.2 since A > 0) and 1.0; KL 0 and kl(0.9, 0.8)
    j1 = ((1.2 - beta * 0) + (1.0 - beta * kl(0.9, 0.8))) / 2
    # response 2: ratio 0.8 with A = -1: min(-0.8, -0.8) = -0.8; KL 0
    j2 = -0.8
    loss, stats = rl.grpo_loss(logp, old, ref, adv, mask, eps, beta)
    assert float(loss) == pytest.approx(-(j1 + j2) / 2, rel=1e-6)
    assert stats["kl"] == pytest.approx((kl(0.9, 0.8) / 2 + 0) / 2, rel=1e-4)  # float32


def test_clipping_stops_the_gradient_past_the_trust_region():
    old = torch.zeros(1, 1)
    for start, adv, moves in [(0.5, 1.0, False), (0.1, 1.0, True), (-0.5, -1.0, False)]:
        logp = torch.tensor([[start]], requires_grad=True)  # ratio e^start
        loss, _ = rl.grpo_loss(logp, old, logp.detach(), torch.tensor([adv]),
                               torch.ones(1, 1), eps=0.2, beta=0.0)
        loss.backward()
        assert (logp.grad.abs().item() > 0) == moves


def test_gradient_raises_the_probability_of_above_average_answers():
    torch.manual_seed(0)
    model = TinyLM(rl.task_config())
    tok = rl.tokenizer()
    terms = np.array([[3, 1, 2]] * 4)
    prompts = rl.encode_prompts(terms)
    responses = torch.tensor([tok.encode(s) for s in
                              ("1 2 3 .", "2 1 3 .", "1 3 2 .", "1 2 3 .")])
    rewards = rl.score(terms, responses)["reward"].reshape(1, 4)
    adv = rl.group_advantages(rewards)[0].float()
    assert (adv[[0, 3]] > 0).all() and (adv[[1, 2]] < 0).all()
    mask = rl.response_mask(responses)
    before = (rl.token_logprobs(model, prompts, responses) * mask).sum(1).detach()
    logp = rl.token_logprobs(model, prompts, responses)
    loss, _ = rl.grpo_loss(logp, logp.detach(), logp.detach(), adv, mask, beta=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss.backward()
    opt.step()
    after = (rl.token_logprobs(model, prompts, responses) * mask).sum(1).detach()
    assert (after[[0, 3]] > before[[0, 3]]).all()
    assert (after[[1, 2]] < before[[1, 2]]).all()


def test_pass_at_k_against_brute_force():
    from itertools import combinations

    n, c = 7, 3
    outcomes = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        sets = list(combinations(outcomes, k))
        brute = sum(any(s) for s in sets) / len(sets)
        assert rl.pass_at_k(n, c, k) == pytest.approx(brute)
    assert rl.pass_at_k(16, 4, 1) == pytest.approx(4 / 16)
    assert rl.pass_at_k(16, 0, 16) == 0.0
    with pytest.raises(ValueError, match="c ≤ n"):
        rl.pass_at_k(4, 5, 1)


def test_sft_reproduces_demonstration_quality():
    _, test = rl.problems()
    good = rl.evaluate(rl.sft(1.0).model, test, samples=4)["accuracy"]
    noisy = rl.evaluate(rl.sft(0.7).model, test, samples=4)["accuracy"]
    assert good > 0.85  # learns the task from clean demonstrations
    assert 0.7 - 0.15 < noisy <= 0.7  # ...copies the slips of noisy ones, never beats them
    assert noisy < good - 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grpo_raises_held_out_accuracy(seed):
    base, run = rl.sft_then_grpo(0.7, seed=seed)
    assert run.accuracy[-3:].mean() > run.accuracy[0] + 0.15
    assert run.reward[-10:].mean() > run.reward[:10].mean()
    assert run.kl[0] == pytest.approx(0.0, abs=1e-6)  # the first samples come from the ref
    assert (run.kl >= 0).all()


def test_deterministic_under_a_seed():
    a = rl.sft(0.7, steps=20, seed=3, cache=False)
    b = rl.sft(0.7, steps=20, seed=3, cache=False)
    np.testing.assert_array_equal(a.loss, b.loss)
    r1 = rl.grpo(a.model, steps=4, seed=5)
    r2 = rl.grpo(b.model, steps=4, seed=5)
    np.testing.assert_array_equal(r1.reward, r2.reward)
    np.testing.assert_array_equal(r1.kl, r2.kl)
    for p, q in zip(r1.model.parameters(), r2.model.parameters()):
        assert torch.equal(p, q)


def test_progress_is_reported():
    calls = []
    rl.grpo(rl.sft(0.7, steps=10, seed=9).model, steps=5, progress=lambda *a: calls.append(a))
    assert calls[-1][0] == calls[-1][1] == 5 and "reward" in calls[-1][2]


def test_bad_input_gets_a_sentence():
    with pytest.raises(ValueError, match="quality"):
        rl.demonstrations(10, 1.5)
    model = TinyLM(rl.task_config())
    with pytest.raises(ValueError, match="at least 2"):
        rl.grpo(model, steps=1, group=1)
    with pytest.raises(ValueError, match="n_terms"):
        rl.problems(9)


def test_memory_saved_by_dropping_the_value_model():
    mem = rl.ppo_vs_grpo_memory()
    n = memory.param_count("deepseek-v3").total
    assert mem["params"] == n == 671_026_419_200
    # FP8 recipe: 1 B weights + 4 B grads + 4 B master + 2 x 2 B moments = 13 B/param
    assert mem["value_model_bytes"] == 13 * n
    assert mem["ppo_total"] - mem["grpo_total"] == 13 * n + n  # value + reward models


def test_widgets_build_at_defaults():
    from course.widgets import rl as w

    live = w.imitation_explorer()
    assert live.error is None and live.result.demo_quality == pytest.approx(0.7)
    live.controls["quality"].set_state({"value": 1.0})  # as a browser would
    run = live.wait()
    assert live.error is None and run.demo_quality == 1.0
    assert list(live.fig.data[1].y) == [1.0, 1.0]
    live = w.grpo_explorer()
    assert live.error is None and set(live.controls) == {"group", "beta", "eps", "lr"}
    assert live.result["base"].demo_quality == pytest.approx(0.7)
    assert live.result["run"].accuracy[-1] > live.result["run"].accuracy[0]
    with pytest.raises(ValueError, match="quality"):
        w.grpo_explorer(quality=1.5)


def test_shipped_comparison_matches_a_fresh_run():
    shipped = rl.compare()  # from assets/runs/rl_compare.json
    assert shipped.seeds == (0, 1, 2) and (shipped.sft_grpo > shipped.sft).all()
    fresh = rl.compare(seeds=(0,), cache=False)
    for name in ("sft", "sft_grpo", "student_sft", "student_grpo", "student_distilled"):
        assert getattr(fresh, name)[0] == pytest.approx(getattr(shipped, name)[0], abs=0.03), name
    assert fresh.base_pass[16][0] == pytest.approx(shipped.base_pass[16][0], abs=0.03)


def test_comparison_round_trips_through_the_shipped_json(tmp_path):
    comp = rl.compare()
    path = rl.save_comparison(comp, folder=tmp_path)
    assert path == tmp_path / "rl_compare.json"
    from course import seeds

    raw = seeds.shipped("rl_compare", rl._compare_key(comp.seeds, comp.quality),
                        lambda: None, folder=tmp_path)
    back = rl.comparison_from_json(raw)
    assert back.seeds == comp.seeds and np.array_equal(back.student_grpo, comp.student_grpo)
    assert np.array_equal(back.grpo_pass[4], comp.grpo_pass[4])
    assert np.array_equal(back.curves[2][1], comp.curves[2][1])
    spread = comp.spread("sft_grpo")
    assert spread.values == tuple(comp.sft_grpo) and spread.lo == comp.sft_grpo.min()


def test_grpo_widget_trains_a_new_run_for_a_new_beta():
    from course.widgets import rl as w

    live = w.grpo_explorer()
    live.controls["beta"].set_state({"value": 0.2})  # as a browser would
    result = live.wait(timeout=600)
    assert live.error is None and result["run"].settings["beta"] == 0.2
    assert list(live.fig.data[2].y) == list(result["run"].kl)
    assert "GRPO steps" in live.summary.value


def test_group_slider_keeps_the_samples_per_step():
    from course.widgets import rl as w

    p = preset("rl")
    assert rl.samples_per_step() == p["prompts_per_step"] * p["group"] == 64
    assert [rl.prompts_at_budget(g) for g in (2, 8, 10, 16)] == [32, 8, 6, 4]
    with pytest.raises(ValueError, match="group"):
        rl.prompts_at_budget(1)
    live = w.grpo_explorer()
    assert live.result["run"].settings["prompts_per_step"] == p["prompts_per_step"]
    live.controls["group"].set_state({"value": 16})  # as a browser would
    result = live.wait(timeout=600)
    assert live.error is None
    settings = result["run"].settings
    assert settings["group"] == 16 and settings["prompts_per_step"] == 4
    assert "4 prompts × G = 16" in live.summary.value
