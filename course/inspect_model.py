"""Looking inside the trained tiny model (notebook 01): attention maps, next-token
probabilities, knock-outs and the size of each block's update to the residual stream.

Everything runs the real `course.model.TinyLM` trained by `course.train.train_lm` on the
shipped corpus. `trained_tiny_model()` trains once per process (cached), so notebooks and
widgets share one model. Knock-outs zero a block's attention or MLP output ("zero
ablation"); the model was never trained to work without them, so a knock-out measures
how much the prediction *depends* on that part, not what the part "knows".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from course import data
from course.model import TinyLM
from course.presets import preset
from course.train import TrainResult, tiny_config, train_lm

KINDS = ("colour", "fact", "capital")


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


@torch.no_grad()
def knockout_score(model: TinyLM, kind: str, knockout: set | None = None) -> KnockoutScore:
    """Top-1 accuracy and mean answer probability over all corpus prompts of one kind."""
    pairs, tok = corpus_prompts(kind), data.tokenizer()
    by_len: dict[int, list] = {}
    for prompt, answer in pairs:  # batch prompts of equal length: no padding needed
        ids = encode_prompt(prompt)[0]
        by_len.setdefault(len(ids), []).append((ids, tok.ids[answer]))
    hits, prob = 0.0, 0.0
    for group in by_len.values():
        idx = torch.stack([ids for ids, _ in group])
        answers = torch.tensor([a for _, a in group])
        probs = model(idx, knockout=knockout).logits[:, -1].softmax(-1)
        hits += (probs.argmax(-1) == answers).sum().item()
        prob += probs[torch.arange(len(group)), answers].sum().item()
    return KnockoutScore(kind, len(pairs), hits / len(pairs), prob / len(pairs))


def knockout_table(model: TinyLM) -> dict[str, dict[str, KnockoutScore]]:
    """Scores for every kind with nothing, each layer's attention, each layer's MLP, all
    attention and all MLPs knocked out. Keys: condition label -> kind -> score."""
    L = len(model.blocks)
    conditions = {"nothing": set()}
    for i in range(L):
        conditions[f"attention {i}"] = knockout_set(attn_layers=[i])
    for i in range(L):
        conditions[f"MLP {i}"] = knockout_set(ffn_layers=[i])
    conditions["all attention"] = knockout_set(attn_layers=range(L))
    conditions["all MLPs"] = knockout_set(ffn_layers=range(L))
    return {label: {k: knockout_score(model, k, ko) for k in KINDS}
            for label, ko in conditions.items()}


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
