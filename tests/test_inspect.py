"""course.inspect_model on the real trained tiny model (trained once per test module)."""

import pytest
import torch

from course import inspect_model as im


@pytest.fixture(scope="module")
def model():
    return im.trained_tiny_model().model


def test_trained_once_and_cached():
    assert im.trained_tiny_model() is im.trained_tiny_model()


def test_model_learned_the_corpus():
    assert im.trained_tiny_model().val_loss < 1.0


def test_corpus_prompts_are_what_the_text_says():
    colour = dict(im.corpus_prompts("colour"))
    assert colour["the green forest has"] == "green"
    assert colour["in the blue lake every flower is"] == "blue"
    facts = dict(im.corpus_prompts("fact"))
    assert facts["babe ruth played"] == "baseball"
    assert facts["people say michael jordan played"] == "basketball"
    assert all(p.split()[-1] == "played" for p in facts)
    capitals = dict(im.corpus_prompts("capital"))
    assert capitals["the capital of peru is"] == "lima"
    with pytest.raises(ValueError, match="kind must be"):
        im.corpus_prompts("sport")


def test_attention_maps_are_causal_distributions(model):
    maps = im.attention_maps(model, "babe ruth played")
    assert maps.tokens == [".", "babe", "ruth", "played"]
    L, H = model.cfg.n_layers, model.cfg.n_heads
    assert maps.weights.shape == (L, H, 4, 4)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(L, H, 4))
    assert torch.all(maps.weights.triu(1) == 0)
    assert all(b.attn.last_weights is None and not b.attn.store_weights for b in model.blocks)


def test_unknown_word_is_a_sentence(model):
    with pytest.raises(ValueError, match="never saw"):
        im.next_token_probs(model, "the green dragon has")
    with pytest.raises(ValueError, match="at least one word"):
        im.next_token_probs(model, "   ")


def test_next_token_probs_match_the_models_softmax(model):
    pairs = im.next_token_probs(model, "babe ruth played", top_k=5)
    assert pairs[0][0] == "baseball" and pairs[0][1] > 0.5
    probs = [p for _, p in pairs]
    assert probs == sorted(probs, reverse=True)
    logits = model(im.encode_prompt("babe ruth played")).logits[0, -1]
    assert probs[0] == pytest.approx(logits.softmax(-1).max().item(), rel=1e-6)


def test_knockout_score_without_knockout_is_high_and_batched_equals_single(model):
    score = im.knockout_score(model, "colour")
    assert score.n == len(im.corpus_prompts("colour"))
    assert score.accuracy > 0.95
    # the length-batched computation equals one prompt at a time
    pairs = im.corpus_prompts("fact")
    single = sum(im.next_token_probs(model, p, top_k=1)[0][0] == a for p, a in pairs)
    assert im.knockout_score(model, "fact").accuracy == pytest.approx(single / len(pairs))


def test_knockout_changes_predictions(model):
    table = im.knockout_table(model)
    L = model.cfg.n_layers
    assert len(table) == 1 + 2 * L + 2
    base = table["nothing"]["colour"].accuracy
    worst = min(table[f"attention {i}"]["colour"].accuracy for i in range(L))
    assert worst < base - 0.3  # some attention layer carries the colour to the end
    assert table["all attention"]["colour"].accuracy < 0.5


def test_residual_norms_add_up(model):
    r = im.residual_norms(model, "the green forest has")
    L, T = model.cfg.n_layers, 5
    assert r.attn.shape == (L, T) and r.ffn.shape == (L, T) and r.stream.shape == (2 * L + 1, T)
    out = model(im.encode_prompt("the green forest has"))
    torch.testing.assert_close(r.stream[-1], out.hidden[0].norm(dim=-1))
    assert torch.all(r.attn >= 0) and torch.all(r.ffn > 0)


def test_widgets_update_in_place_and_report_unknown_words():
    from course.widgets.transformer import attention_explorer, knockout_explorer

    ko = knockout_explorer()
    assert ko.result[0][0] == "green"
    ko.controls["attn_0"].value = True
    assert ko.result[0][0] != "green" and list(ko.fig.data[0].y)[0] == ko.result[0][0]
    live = attention_explorer()
    live.apply(text="babe ruth played", layer=1, head=2)
    assert len(live.fig.data[0].z) == 4 and live.error is None
    live.apply(text="the purple dragon")
    assert "never saw" in live.error and len(live.fig.data[0].z) == 4  # last good figure kept


def test_mean_outputs_are_the_average_over_held_out_sentences(model):
    from course import data

    means = im.mean_outputs(model)
    assert set(means) == {(p, i) for p in ("attn", "ffn") for i in range(model.cfg.n_layers)}
    sentences = data.load_corpus()
    held_out = sentences[-int(len(sentences) * 0.1):]
    # position 0 is always "." and sees only itself: every sentence gives the same output
    out = model(im.encode_prompt("babe ruth played"))
    torch.testing.assert_close(means[("ffn", 0)][0], out.updates[0][1][0, 0])
    torch.testing.assert_close(means[("attn", 1)][0], out.updates[1][0][0, 0])
    # row 2, recomputed one sentence at a time from the model's own updates
    rows = [model(im.encode_prompt(s)).updates[1][1][0, 2] for s in held_out if len(s.split()) >= 2]
    torch.testing.assert_close(means[("ffn", 1)][2], torch.stack(rows).mean(0), rtol=1e-4,
                               atol=1e-5)
    longest = max(len(s.split()) for s in held_out) + 1
    assert len(means[("ffn", 0)]) == min(longest, 16)


def test_mean_ablation_replaces_outputs_and_cleans_up(model):
    idx = im.encode_prompt("the green forest has")
    plain = model(idx).logits
    ko = im.knockout_set(ffn_layers=[0])
    with im.ablated(model, ko, "mean") as k:
        assert k is None
        out = model(idx, knockout=k)
    # the "." position's mean is its own output: nothing changes there, the rest does
    torch.testing.assert_close(out.logits[0, 0], plain[0, 0])
    assert not torch.allclose(out.logits[0, -1], plain[0, -1])
    torch.testing.assert_close(out.updates[0][1][0], im.mean_outputs(model)[("ffn", 0)][:5])
    torch.testing.assert_close(model(idx).logits, plain)  # hooks removed
    with im.ablated(model, ko, "zero") as k:
        assert k == ko
    with pytest.raises(ValueError, match="ablation must be"):
        with im.ablated(model, ko, "random"):
            pass
    with pytest.raises(ValueError, match="Mean ablation knows the first"):
        with im.ablated(model, ko, "mean") as k:
            model(im.encode_prompt(" ".join(["the"] * 40)), knockout=k)


def test_zero_and_mean_ablation_disagree_where_the_notebook_says(model):
    zero, mean = im.knockout_table(model), im.knockout_table(model, "mean")
    assert all(mean["nothing"][k].accuracy == zero["nothing"][k].accuracy for k in im.KINDS)
    # zeroing both MLPs keeps more facts than zeroing MLP 0 alone; the mean removes them
    assert zero["all MLPs"]["fact"].accuracy > zero["MLP 0"]["fact"].accuracy
    assert mean["all MLPs"]["fact"].accuracy < 0.5 < zero["all MLPs"]["fact"].accuracy
    shift = im.output_shift(model, "fact", im.knockout_set(ffn_layers=[0]), ("ffn", 1))
    assert shift.cosine < 0.9
    same = im.output_shift(model, "fact", set(), ("ffn", 1))
    assert same.cosine == pytest.approx(1.0, abs=1e-5) and same.norm_ratio == pytest.approx(1.0)


def test_knockout_widget_mean_ablation_matches_the_function(model):
    from course.widgets.transformer import knockout_explorer

    ko = knockout_explorer()
    ko.controls["ffn_0"].value = True
    ko.controls["ablation"].value = "mean"
    with im.ablated(model, im.knockout_set(ffn_layers=[0]), "mean") as k:
        expected = im.next_token_probs(model, "the green forest has", k)
    assert ko.result == expected


@torch.no_grad()
def test_stream_norm_is_the_final_norms_input(model):
    pairs = im.corpus_prompts("capital")
    direct = [model(im.encode_prompt(p)).hidden[0, -1].norm() for p, _ in pairs]
    assert im.stream_norm(model, "capital") == pytest.approx(float(torch.stack(direct).mean()))
    ko = im.knockout_set(ffn_layers=range(model.cfg.n_layers))
    with im.ablated(model, ko, "mean") as k:
        by_mean = [model(im.encode_prompt(p), knockout=k).hidden[0, -1].norm() for p, _ in pairs]
    assert im.stream_norm(model, "capital", ko, "mean") == pytest.approx(
        float(torch.stack(by_mean).mean()))
    assert im.stream_norm(model, "capital", ko) < im.stream_norm(model, "capital")


@torch.no_grad()
def test_output_shift_equals_the_models_own_updates(model):
    ko = im.knockout_set(ffn_layers=[0])
    prompts = [p for p, _ in im.corpus_prompts("capital")]
    before = torch.stack([model(im.encode_prompt(p)).updates[1][1][0, -1] for p in prompts])
    with im.ablated(model, ko, "mean") as k:
        after = torch.stack([model(im.encode_prompt(p), knockout=k).updates[1][1][0, -1]
                             for p in prompts])
    shift = im.output_shift(model, "capital", ko, ("ffn", 1), "mean")
    cos = torch.nn.functional.cosine_similarity(before, after, dim=-1).mean()
    assert shift.cosine == pytest.approx(float(cos), rel=1e-5)
    ratio = (after.norm(dim=-1) / before.norm(dim=-1)).mean()
    assert shift.norm_ratio == pytest.approx(float(ratio), rel=1e-5)
