"""course.optim: the knob loss and its optimizers against torch and closed forms;
optimizer-state bytes read from real torch optimizers."""

import numpy as np
import pytest
import torch

from course import optim
from course.turntable import loss as turntable_loss

PTS = optim.valley_points()


def test_points_and_best_fit():
    assert PTS.x.min() >= 1 and PTS.x.max() <= 5
    w, b = np.polyfit(PTS.x, PTS.y, 1)
    assert w == pytest.approx(2.0, abs=0.2) and b == pytest.approx(-3.0, abs=0.6)
    with pytest.raises(ValueError, match="two points"):
        optim.valley_points(n=1)


def test_grid_matches_pointwise_loss():
    g = optim.loss_grid(PTS, n=11)
    assert g.loss.shape == (11, 11)
    assert g.loss[3, 7] == pytest.approx(turntable_loss(g.w[7], g.b[3], PTS), rel=1e-12)


def test_gradient_matches_closed_form():
    loss, gw, gb = optim.gradient_at(1.0, -1.0, PTS)
    r = 1.0 * PTS.x - 1.0 - PTS.y
    assert loss == pytest.approx(np.mean(r ** 2), rel=1e-12)
    assert (gw, gb) == pytest.approx((2 * np.mean(r * PTS.x), 2 * np.mean(r)), rel=1e-12)


@pytest.mark.parametrize("kind", optim.OPTIMIZERS)
@pytest.mark.parametrize("lr", [0.01, 0.05])
def test_numpy_rules_equal_torch_optim(kind, lr):
    ours = optim.trajectory(kind, PTS, (-1.0, 4.0), lr, 80).knobs
    theirs = optim.torch_trajectory(kind, PTS, (-1.0, 4.0), lr, 80)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_divergence_threshold_is_two_over_lambda_max():
    lr = optim.max_stable_lr(PTS)
    assert not optim.trajectory("sgd", PTS, (0.0, 0.0), 0.97 * lr, 400).diverged
    assert optim.trajectory("sgd", PTS, (0.0, 0.0), 1.03 * lr, 400).diverged
    h = torch.autograd.functional.hessian(
        lambda k: ((k[0] * torch.tensor(PTS.x) + k[1] - torch.tensor(PTS.y)) ** 2).mean(),
        torch.zeros(2, dtype=torch.float64))
    assert lr == pytest.approx(2 / torch.linalg.eigvalsh(h).max().item(), rel=1e-10)


def test_momentum_beats_sgd_in_the_valley():
    tr = optim.trajectories(-1.0, 4.0, 0.02, 100)
    assert tr["momentum"].loss[-1] < tr["sgd"].loss[-1]
    assert all(len(t.knobs) == 101 and len(t.loss) == 101 for t in tr.values())
    assert all(t.loss[-1] < t.loss[0] for t in tr.values())


def test_bad_settings_are_sentences():
    with pytest.raises(ValueError, match="optimizer must be"):
        optim.trajectory("lbfgs", PTS)
    with pytest.raises(ValueError, match="learning rate"):
        optim.trajectory("sgd", PTS, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        optim.trajectory("sgd", PTS, steps=-1)


def test_state_bytes_counts_two_adam_moments_per_parameter():
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.Linear(20, 3))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 10)).sum().backward()
    opt.step()
    s = optim.state_bytes(model, opt)
    n = 10 * 20 + 20 + 20 * 3 + 3
    assert s.n_params == n and s.params == s.grads == 4 * n
    assert s.states["exp_avg"] == s.states["exp_avg_sq"] == 4 * n
    assert s.total == 4 * n * 4 + s.states["step"]


def test_tiny_model_state_bytes_per_optimizer():
    sgd, mom, adam = (optim.tiny_model_state_bytes(k) for k in ("sgd", "momentum", "adamw"))
    assert sgd.states == {} and sgd.params == sgd.grads == 4 * sgd.n_params
    assert mom.states["momentum_buffer"] == mom.params
    assert adam.states["exp_avg"] == adam.states["exp_avg_sq"] == adam.params
    with pytest.raises(ValueError, match="kind must be"):
        optim.tiny_model_state_bytes("adagrad")


def test_knob_widget_updates_in_place():
    from course.widgets.backprop import knob_explorer

    live = knob_explorer()
    before = list(live.fig.data[1].x)
    live.controls["steps"].value = 50
    assert len(live.fig.data[1].x) == 51 and list(live.fig.data[1].x[:21]) == before
    live.apply(lr=0.2)
    assert live.result["paths"]["sgd"].diverged and "diverge" in live.summary.value
