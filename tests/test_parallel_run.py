"""A real gloo run: DP and ZeRO-1 equal single-process training, ZeRO-1 shards the optimizer,
EP equals the single-process MoE, and the bytes each collective moved match course.parallel."""

import numpy as np
import pytest

from course import parallel_run as pr
from course.activations import toy_mlp_params
from course.parallel import dp_step_bytes, ep_all_to_all_bytes

WORLD = 2


@pytest.fixture(scope="module")
def runs():
    return pr.run_all(WORLD)


def test_dp_and_zero1_match_single_process(runs):
    ref = pr.train_single()["params"].numpy()
    for strategy in ("dp", "zero1"):
        for rank in runs[strategy]:
            np.testing.assert_allclose(rank["params"], ref, atol=1e-6, rtol=0)
    assert np.abs(ref - pr.train_single({"steps": 0})["params"].numpy()).max() > 1e-3


def test_zero1_optimizer_state_is_one_nth(runs):
    n = toy_mlp_params(pr.SIZES["d"], pr.SIZES["hidden"], pr.SIZES["blocks"])
    full = runs["dp"][0]["memory"]["optimizer"]
    assert full == 2 * 4 * n  # exp_avg + exp_avg_sq, FP32
    for rank in runs["zero1"]:
        assert rank["memory"]["optimizer"] == 2 * 4 * -(-n // WORLD)
        assert rank["memory"]["optimizer"] <= full / WORLD + 2 * 4


def test_bytes_match_prediction(runs):
    n = toy_mlp_params(pr.SIZES["d"], pr.SIZES["hidden"], pr.SIZES["blocks"])
    steps = pr.SIZES["steps"]
    for strategy in ("dp", "zero1"):
        expected = {k: v * steps for k, v in dp_step_bytes(n, WORLD, strategy).items()}
        for rank in runs[strategy]:
            assert rank["sent"] == pytest.approx(expected, rel=1e-12)
    for strategy in pr.STRATEGIES:  # every byte one rank sent, another received
        sent, got = ({k: sum(r[key][k] for r in runs[strategy]) for k in runs[strategy][0][key]}
                     for key in ("sent", "received"))
        assert sent == got and sum(sent.values()) > 0


def test_ep_matches_single_process_and_bytes(runs):
    sizes = {**pr.SIZES, "world": WORLD}
    ref = pr.moe_reference(sizes)
    got = np.concatenate([r["output"] for r in runs["ep"]])
    np.testing.assert_allclose(got, ref["output"].numpy(), atol=1e-6, rtol=0)
    t = sizes["tokens"]
    experts = [ref["expert"][r * t:(r + 1) * t].tolist() for r in range(WORLD)]
    predicted = ep_all_to_all_bytes(experts, sizes["experts"] // WORLD, 4 * sizes["d"])
    for rank, pred in zip(runs["ep"], predicted):
        assert rank["sent"]["all_to_all (dispatch)"] == pred["dispatch"]
        assert rank["sent"]["all_to_all (combine)"] == pred["combine"]
    assert sum(p["dispatch"] for p in predicted) > 0  # some tokens really travelled


def test_bad_requests_raise():
    with pytest.raises(ValueError, match="strategy"):
        pr.run("fsdp")
    with pytest.raises(ValueError, match="divide"):
        pr.run_all(3)


def test_failed_worker_is_reported_not_hung():
    from course.distributed import run_workers

    with pytest.raises(RuntimeError, match="strategy must be one of"):
        run_workers(pr.worker, 2, "fsdp", dict(pr.SIZES), timeout_s=30)
    import multiprocessing

    assert multiprocessing.active_children() == []  # every worker joined, none left over


def test_port_taken_in_between_is_retried(monkeypatch):
    # Another program grabs the "free" port before rank 0 listens: the run starts again
    # on a new port instead of failing.
    import socket

    from course import distributed

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real = distributed.free_port
        monkeypatch.setattr(distributed, "free_port", lambda: next(ports, None) or real())
        out = distributed.run_workers(pr.worker_many, 2, ("dp",), dict(pr.SIZES), timeout_s=30)
    n = toy_mlp_params(pr.SIZES["d"], pr.SIZES["hidden"], pr.SIZES["blocks"])
    expected = dp_step_bytes(n, WORLD, "dp")["all_reduce"] * pr.SIZES["steps"]
    assert [r["dp"]["sent"]["all_reduce"] for r in out] == [pytest.approx(expected)] * 2

