"""The one expert-parallel byte model (course.expert_traffic), used by notebooks 04 and 06,
checked against counts made independently from a real routing of random logits."""

import pytest
import torch

from course import expert_traffic as et
from course.configs import load_config
from course.parallel import DEEPSEEK_V3_LAYOUT, Layout, comm_per_step


def _gate(scores, top_k, n_group, topk_group):
    """Transcription of DeepSeek-V3's inference/model.py Gate.forward (group-limited)."""
    t = scores.shape[0]
    grouped = scores.view(t, n_group, -1)
    best = grouped.topk(2, dim=-1)[0].sum(dim=-1).topk(topk_group, dim=-1)[1]
    mask = torch.ones(t, n_group, dtype=torch.bool).scatter_(1, best, False)
    return grouped.masked_fill(mask.unsqueeze(-1), float("-inf")).flatten(1).topk(top_k)[1]


def _counted_ib_bytes_per_token(seed: int, gpus: int = 64, tokens_per_gpu: int = 64) -> float:
    """Route every GPU's tokens, and for each token add up, in plain Python, one FP8
    dispatch copy (1 byte + a 4-byte scale per 128 values) and one BF16 combine copy per
    node other than its own that holds one of its experts; forward and backward."""
    cfg = load_config("deepseek-v3")
    g = torch.Generator().manual_seed(seed)
    scores = torch.sigmoid(torch.randn(gpus * tokens_per_gpu, 256, generator=g))
    experts = _gate(scores, 8, 8, 4).tolist()
    per_copy = (cfg.hidden_size + cfg.hidden_size // 128 * 4) + 2 * cfg.hidden_size
    total = 0
    for token, chosen in enumerate(experts):
        home = (token // tokens_per_gpu) // 8  # 8 GPUs per node; 32 experts per node
        total += 2 * per_copy * len({e // 32 for e in chosen} - {home})
    return total / len(experts)


def test_v3_step_bytes_equal_an_independent_count():
    c = comm_per_step("deepseek-v3", DEEPSEEK_V3_LAYOUT, "deepseek-fp8", seq_len=4096,
                      micro_batch=1, microbatches=8)
    per_token = c["EP all-to-all (IB)"] / (8 * 4096 * 58 / 16)
    assert per_token == pytest.approx(_counted_ib_bytes_per_token(seed=11), rel=0.02)
    # without per-node dedup every remote expert would get its own copy: 7 of 8 on average
    naive = 2 * 7 * et.ep_traffic(1).total_bytes
    assert per_token < 0.6 * naive


def test_no_limit_closed_form_equals_routed_count():
    routed = et._routed_places(256, 8, 8, n_group=8, topk_group=8, n_tokens=4096, seed=3)
    assert routed == pytest.approx(et.expected_nodes_uniform(256, 8, 8), rel=0.01)
    assert et.places_reached(256, 8, 8) == et.expected_nodes_uniform(256, 8, 8)
    # the group limit (at most 4 of 8 groups) is what keeps a token under 4 nodes
    assert et.places_reached(256, 8, 8, n_group=8, topk_group=4) <= 4.0 < routed


def test_one_node_sends_over_nvlink_one_copy_per_other_gpu():
    link, copies = et.ep_copies(64, 6, 4, gpus_per_node=8)
    assert link == "NVLink"
    assert copies == pytest.approx(et.expected_nodes_uniform(64, 4, 6) * 3 / 4)
    link, copies = et.ep_copies(256, 8, 64, n_group=8, topk_group=4)
    assert link == "IB" and copies == pytest.approx(
        et.places_reached(256, 8, 8, 8, 4) * 7 / 8)


def test_bytes_per_copy_follow_the_formats():
    assert et.dispatch_bytes_per_copy(7168) == 7168 + 56 * 4  # FP8 + one FP32 scale per 128
    assert et.dispatch_bytes_per_copy(7168, value_bytes=2) == 2 * 7168  # BF16, no scales
    t = et.ep_traffic(3.5, 7168)
    assert t.total_bytes == pytest.approx(3.5 * (7168 + 224 + 2 * 7168))
    # a BF16 recipe dispatches in BF16: more bytes than FP8 for the same routing
    fp8 = comm_per_step("deepseek-v3", Layout(dp=64, ep=64), "deepseek-fp8")
    bf16 = comm_per_step("deepseek-v3", Layout(dp=64, ep=64), "bf16-mixed")
    assert bf16["EP all-to-all (IB)"] / fp8["EP all-to-all (IB)"] == pytest.approx(
        4 * 7168 / (7168 + 224 + 2 * 7168))


@pytest.mark.parametrize("call, message", [
    (lambda: et.ep_traffic(-1), "copies must be"),
    (lambda: et.ep_copies(256, 8, 12), "does not fill whole nodes"),
    (lambda: et.places_reached(256, 8, 0), "places must be"),
    (lambda: et._routed_places(256, 8, 7, 8, 4, 64, 0), "do not hold the 256 experts"),
    (lambda: et.dispatch_bytes_per_copy(7168, value_bytes=0), "value_bytes must be"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
