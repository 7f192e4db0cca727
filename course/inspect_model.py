"""Looking inside the trained tiny model (notebook 01): attention maps, next-token
probabilities, knock-outs and the size of each block's update to the residual stream.

Everything runs the real `course.model.TinyLM` trained by `course.train.train_lm` on the
shipped corpus. `trained_tiny_model()` trains once per process (cached), so notebooks and
widgets share one model. Knock-outs remove a block's attention or MLP output in one of
two ways: "zero" (replace it by zeros) or "mean" (replace it, position by position, by its
average over the held-out sentences). The model was never trained without them, so a
knock-out measures how much the prediction *depends* on that part, not what the part
"knows"; zeroing also moves the later layers' inputs off the distribution they were
trained on, which mean ablation avoids for the part's average contribution.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import torch

from course import data
from course.model import TinyLM
from course.presets import preset
from course.train import TrainResult, tiny_config, train_lm

KINDS = ("colour", "fact", "capital")
ABLATIONS = ("zero", "mean")


@lru_cache(maxsize=4)
def trained_tiny_model(seed: int = 0, steps: int | None = None) -> TrainResult:
    """Train the default tiny model once per process (MHA, dense SwiGLU, FP32) and cache it.

    Always at the toy preset, also on a GPU: this is the model small enough to look
    inside (2 layers, 4 heads), and the notebook's statements about it must hold there.
    """
    p = preset("tiny_lm", "toy")
    cfg = tiny_config(**{k: p[k] for k in ("d_model", "n_layers", "n_heads", "seq_len")})
    result = train_lm(cfg, steps=steps or p["steps"], batch_size=p["batch"], lr=p["lr"],
                      seed=seed)
    result.model.eval()
    return result


def encode_prompt(text: str) -> torch.Tensor:
    """(1, T) token ids of `text` after the "." separator the corpus starts sentences with."""
    ids = data.tokenizer().encode(text)
    if not ids:
        raise ValueError("Type at least one word.")
    return torch.tensor([[0, *ids]])


def knockout_set(attn_layers=(), ffn_layers=()) -> set:
    """The `knockout=` argument of `TinyLM.forward` for the given layer indices."""
    return {("attn", i) for i in attn_layers} | {("ffn", i) for i in ffn_layers}


@dataclass
class AttentionMaps:
    tokens: list[str]  # the T words of the prompt, "." first
    weights: torch.Tensor  # (L, H, T, T): row t is where token t looks


@torch.no_grad()
def attention_maps(model: TinyLM, text: str) -> AttentionMaps:
    """Attention weights of every layer and head for one prompt."""
    idx = encode_prompt(text)
    attns = [b.attn for b in model.blocks]
    for a in attns:
        a.store_weights = True
    try:
        model(idx)
        weights = torch.stack([a.last_weights[0] for a in attns])
    finally:
        for a in attns:
            a.store_weights, a.last_weights = False, None
    return AttentionMaps(data.tokenizer().decode(idx[0]).split(), weights)


@torch.no_grad()
def next_token_probs(model: TinyLM, text: str, knockout: set | None = None,
                     top_k: int = 8) -> list[tuple[str, float]]:
    """The `top_k` most likely next words after `text` and their probabilities."""
    probs = model(encode_prompt(text), knockout=knockout).logits[0, -1].softmax(-1)
    values, ids = probs.topk(top_k)
    words = data.tokenizer().words
    return [(words[i], float(v)) for v, i in zip(values, ids.tolist())]


def corpus_prompts(kind: str) -> list[tuple[str, str]]:
    """Every distinct (prompt, answer) pair of one kind in the corpus.

    colour: the prompt ends just before a word seen earlier in the sentence ("the green
    forest has" -> green); fact: ends at "played" (-> the sport); capital: the capital
    sentences without their last word.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    pairs = set()
    for sentence in data.load_corpus():
        words = sentence.split()
        if kind == "colour":
            repeats = [i for i, w in enumerate(words) if w != "the" and w in words[:i]]
            if repeats:
                pairs.add((" ".join(words[:repeats[0]]), words[repeats[0]]))
        elif kind == "fact" and "played" in words:
            i = words.index("played")
            pairs.add((" ".join(words[:i + 1]), words[i + 1]))
        elif kind == "capital" and "capital" in words:
            pairs.add((" ".join(words[:-1]), words[-1]))
    return sorted(pairs)


@dataclass
class KnockoutScore:
    kind: str
    n: int  # distinct prompts
    accuracy: float  # share whose top-1 next word is the answer
    mean_prob: float  # mean probability given to the answer


@lru_cache(maxsize=4)
@torch.no_grad()
def mean_outputs(model: TinyLM, max_len: int = 16) -> dict[tuple[str, int], torch.Tensor]:
    """Each part's output averaged at each position over the held-out sentences (the last
    10% of the corpus), each fed as the prompts are: "." then the words.

    Keys ("attn" | "ffn", layer) -> (positions, d_model); row t is the mean at position t,
    for every position some held-out sentence reaches (at most `max_len`)."""
    sentences = data.load_corpus()
    held_out = sentences[-int(len(sentences) * 0.1):]  # the split train_lm validates on
    by_len: dict[int, list] = {}
    for s in held_out:
        ids = encode_prompt(s)[0][:max_len]
        by_len.setdefault(len(ids), []).append(ids)
    seen, sums = {}, {}
    counts = torch.zeros(max_len)
    hooks = [getattr(b, part).register_forward_hook(
                 lambda m, i, out, key=(part, n): seen.__setitem__(key, out))
             for n, b in enumerate(model.blocks) for part in ("attn", "ffn")]
    try:
        for length, group in by_len.items():
            model(torch.stack(group))
            for key, out in seen.items():
                sums.setdefault(key, torch.zeros(max_len, out.shape[-1]))[:length] += out.sum(0)
            counts[:length] += len(group)
    finally:
        for h in hooks:
            h.remove()
    rows = int((counts > 0).sum())  # positions some held-out sentence reaches
    return {key: total[:rows] / counts[:rows, None] for key, total in sums.items()}


@contextmanager
def ablated(model: TinyLM, knockout: set | None, ablation: str = "zero"):
    """Yield the `knockout=` argument for `model(...)` inside the block: the set itself for
    "zero"; for "mean", nothing, with each listed part's output replaced by
    `mean_outputs(model)` (forward hooks, removed on exit)."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, not {ablation!r:.40}.")
    if ablation == "zero" or not knockout:
        yield knockout
        return
    means = mean_outputs(model)

    def replace(module, inputs, out, mu):
        if out.shape[1] > len(mu):
            raise ValueError(f"Mean ablation knows the first {len(mu)} positions (the longest "
                             f"held-out sentence); this prompt has {out.shape[1]} tokens.")
        return mu[:out.shape[1]].expand_as(out)

    hooks = [getattr(model.blocks[i], part).register_forward_hook(
                 lambda m, inp, out, mu=means[(part, i)]: replace(m, inp, out, mu))
             for part, i in knockout]
    try:
        yield None
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def knockout_score(model: TinyLM, kind: str, knockout: set | None = None,
                   ablation: str = "zero") -> KnockoutScore:
    """Top-1 accuracy and mean answer probability over all corpus prompts of one kind,
    with the parts in `knockout` zeroed or replaced by their mean (`ablation`)."""
    pairs, tok = corpus_prompts(kind), data.tokenizer()
    by_len: dict[int, list] = {}
    for prompt, answer in pairs:  # batch prompts of equal length: no padding needed
        ids = encode_prompt(prompt)[0]
        by_len.setdefault(len(ids), []).append((ids, tok.ids[answer]))
    hits, prob = 0.0, 0.0
    with ablated(model, knockout, ablation) as ko:
        for group in by_len.values():
            idx = torch.stack([ids for ids, _ in group])
            answers = torch.tensor([a for _, a in group])
            probs = model(idx, knockout=ko).logits[:, -1].softmax(-1)
            hits += (probs.argmax(-1) == answers).sum().item()
            prob += probs[torch.arange(len(group)), answers].sum().item()
    return KnockoutScore(kind, len(pairs), hits / len(pairs), prob / len(pairs))


def knockout_conditions(n_layers: int) -> dict[str, set]:
    """Label -> knock-out set: nothing, each layer's attention, each layer's MLP, all
    attention, all MLPs."""
    conditions = {"nothing": set()}
    for i in range(n_layers):
        conditions[f"attention {i}"] = knockout_set(attn_layers=[i])
    for i in range(n_layers):
        conditions[f"MLP {i}"] = knockout_set(ffn_layers=[i])
    conditions["all attention"] = knockout_set(attn_layers=range(n_layers))
    conditions["all MLPs"] = knockout_set(ffn_layers=range(n_layers))
    return conditions


def knockout_table(model: TinyLM, ablation: str = "zero") -> dict[str, dict[str, KnockoutScore]]:
    """Scores for every kind under every `knockout_conditions`. Keys: condition label ->
    kind -> score."""
    return {label: {k: knockout_score(model, k, ko, ablation) for k in KINDS}
            for label, ko in knockout_conditions(len(model.blocks)).items()}


@dataclass
class Shift:
    cosine: float  # mean cosine between the part's output with and without the knock-out
    norm_ratio: float  # mean |output with| / |output without|


@torch.no_grad()
def output_shift(model: TinyLM, kind: str, knockout: set, part: tuple[str, int],
                 ablation: str = "zero") -> Shift:
    """How a later part's output at each prompt's last word changes when the parts in
    `knockout` are knocked out (`ablation`): it was trained on a residual stream that
    contained them."""
    outs = []
    for ko in (set(), knockout):
        seen = []
        with ablated(model, ko, ablation) as k:  # (computes the means first, unhooked)
            hook = getattr(model.blocks[part[1]], part[0]).register_forward_hook(
                lambda m, i, out, seen=seen: seen.append(out[0, -1]))
            try:
                for prompt, _ in corpus_prompts(kind):
                    model(encode_prompt(prompt), knockout=k)
            finally:
                hook.remove()
        outs.append(torch.stack(seen))
    cos = torch.nn.functional.cosine_similarity(outs[0], outs[1], dim=-1)
    return Shift(float(cos.mean()), float((outs[1].norm(dim=-1) / outs[0].norm(dim=-1)).mean()))


@torch.no_grad()
def stream_norm(model: TinyLM, kind: str, knockout: set | None = None,
                ablation: str = "zero") -> float:
    """Mean length of the residual stream at each prompt's last word, where the final
    RMSNorm reads it, with the parts in `knockout` knocked out (`ablation`)."""
    lengths = []
    with ablated(model, knockout, ablation) as k:
        for prompt, _ in corpus_prompts(kind):
            lengths.append(model(encode_prompt(prompt), knockout=k).hidden[0, -1].norm())
    return float(torch.stack(lengths).mean())


@dataclass
class ResidualNorms:
    tokens: list[str]
    stream: torch.Tensor  # (2L+1, T): |x| after the embedding, then after each update
    attn: torch.Tensor  # (L, T): |attention update| per layer and token
    ffn: torch.Tensor  # (L, T): |MLP update| per layer and token


@torch.no_grad()
def residual_norms(model: TinyLM, text: str) -> ResidualNorms:
    """How much each block's attention and MLP change each token's residual vector."""
    idx = encode_prompt(text)
    out = model(idx)
    x = model.embed(idx)[0]
    stream = [x.norm(dim=-1)]
    for a, m in out.updates:
        x = x + a[0]
        stream.append(x.norm(dim=-1))
        x = x + m[0]
        stream.append(x.norm(dim=-1))
    attn = torch.stack([a[0].norm(dim=-1) for a, _ in out.updates])
    ffn = torch.stack([m[0].norm(dim=-1) for _, m in out.updates])
    return ResidualNorms(data.tokenizer().decode(idx[0]).split(), torch.stack(stream), attn, ffn)
