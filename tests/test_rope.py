"""RoPE on the tiny model (notebook 01) and the transformer diagram: scores depend on the
relative position only (checked against explicit rotation matrices), and the diagram
names every part of the block."""

import math

import pytest
import torch

from course import data, rope
from course.attention import apply_rope, rope_cos_sin
from course.model import TinyConfig, TinyLM
from course.plots import diagram
from course.plots import rope as rope_plots


def rotation_matrix(pos: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """RoFormer eq. (15), with pairs (i, i + d/2) as course.attention pairs them."""
    r = torch.zeros(d, d, dtype=torch.float64)
    half = d // 2
    for i in range(half):
        a = pos * base ** (-2 * i / d)
        c, s = math.cos(a), math.sin(a)
        r[i, i], r[i, i + half], r[i + half, i], r[i + half, i + half] = c, -s, s, c
    return r


def test_apply_rope_is_the_rotation_matrix():
    torch.manual_seed(0)
    x = torch.randn(8, dtype=torch.float64)
    cos, sin = rope_cos_sin(torch.tensor([5]), 8)
    got = apply_rope(x, cos[0].double(), sin[0].double())
    torch.testing.assert_close(got, rotation_matrix(5, 8) @ x, rtol=1e-6, atol=1e-6)


def test_score_depends_only_on_the_offset():
    torch.manual_seed(1)
    q, k = torch.randn(16), torch.randn(16)
    for m, n in [(3, 1), (40, 38), (7, 7), (100, 0)]:
        assert rope.score(q, k, m, n) == pytest.approx(rope.score(q, k, m - n, 0), abs=1e-4)
        # and equals q^T R(m)^T R(n) k = q^T R(n - m) k
        expected = float(q.double() @ rotation_matrix(n - m, 16) @ k.double()) / 4
        assert rope.score(q, k, m, n) == pytest.approx(expected, abs=1e-4)
    assert rope.score(q, k, 3, 1) != pytest.approx(rope.score(q, k, 3, 0), abs=1e-3)
    assert rope.score(q, k, 9, 2, rope=False) == rope.score(q, k, 0, 0, rope=False)


def test_score_table_is_constant_along_diagonals():
    torch.manual_seed(2)
    q, k = torch.randn(16), torch.randn(16)
    table = rope.score_table(q, k, 12)
    for off, diag in rope.by_offset(table).items():
        assert float(diag.max() - diag.min()) < 1e-5, off
        assert float(diag[0]) == pytest.approx(rope.score(q, k, -off, 0), abs=1e-5)
    plain = rope.score_table(q, k, 12, rope=False)
    assert float(plain.max() - plain.min()) < 1e-6
    with pytest.raises(ValueError):
        rope.score_table(q, k, 0)


def test_query_key_comes_from_the_models_first_layer():
    tok = data.tokenizer()
    torch.manual_seed(0)
    model = TinyLM(TinyConfig(vocab_size=tok.vocab_size)).eval()
    q, k = rope.query_key(model, 0, 1, "has", "green", tok)
    block = model.blocks[0]
    x = block.attn_norm(model.embed(torch.tensor(tok.encode("green"))))
    hd = block.attn.head_dim
    torch.testing.assert_close(k, block.attn.wk(x[0])[hd:2 * hd].detach())
    with pytest.raises(ValueError, match="head must be"):
        rope.query_key(model, 0, 99, "has", "green", tok)


def test_rope_figure_hides_the_future():
    t = rope.score_table(torch.ones(4), torch.ones(4), 5)
    fig = rope_plots.score_tables(t, t, "a", "b")
    z = fig.data[0].z
    assert z[0][1] is None and z[4][0] is not None


def test_diagram_names_every_part_and_its_sizes():
    fig = diagram.transformer_block(2, 64, 4, 176, 500)
    texts = " ".join(a.text for a in fig.layout.annotations if a.text)
    for part in ("tokens", "embedding (500 × 64)", "RoPE", "MLP (SwiGLU)", "64 → 176 → 64",
                 "output head (64 × 500)", "block × 2", "residual", "probabilities"):
        assert part in texts, part
    assert texts.count("RMSNorm") == 3 and texts.count("<b>+</b>") == 2
    hover = " ".join(fig.data[0].hovertext)
    assert "relative position" in hover and "residual stream" in hover
    with pytest.raises(ValueError):
        diagram.transformer_block(0, 64, 4, 176, 500)
