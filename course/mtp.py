"""Multi-token prediction (DeepSeek-V3 report, section 2.2, eq. 21-25), notebook 12.

Depth k combines the previous depth's hidden state with the embedding of the next known
token, h'_i = M_k [RMSNorm(h_i^{k-1}); RMSNorm(Emb(t_{i+k}))] (eq. 21), runs one
transformer block (eq. 22) and shares the main model's embedding and output head (eq. 23;
see `TinyLM.mtp_forward`). The loss is L_MTP = lambda/D * sum_k CE_k (eq. 24-25,
`TinyLM._losses`). DeepSeek's released weights give each MTP module its own final norm
before the shared head; the course shares the main model's final norm (a gain vector).

Parallel heads (Gloeckle et al. 2024, "Better & faster large language models via
multi-token prediction", §2): with `heads="parallel"` (`cfg.extra["mtp_heads"]`) depth k
reads the main model's last hidden state h_i directly, M_k = RMSNorm then a d x d
projection, then its own block: each head predicts t_{i+k+1} independently from the trunk,
with no previous depth and no embedding of the next token. Same blocks, d*d fewer
parameters per depth (the embedding half of M_k). `compare_heads` trains both.

Also here: training the course's one model with and without MTP (cached by its settings),
and the teacher-forced accuracy of each depth on held-out text. Speculative decoding with
the MTP module as the draft is in `course.speculative`; measuring it on held-out prompts
(`speculate`, `prompts`, `token_type`) in `course.mtp_decode`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course import validate
from course.mtp_decode import (  # noqa: F401  (re-exported: course.moe, course.tiny_deepseek)
    Speculation,
    _corpus_lists,
    needs_mtp,
    prompts,
    sentence_position,
    speculate,
    token_type,
)
from course.mtp_module import HEADS, MTPModule  # noqa: F401  (the layer; re-exported)
from course.runcache import RunCache

#: Trained runs by (depth, lambda, steps, seed); `RUNS.clear()` forgets them.
RUNS = RunCache(16)

#: Sequences per training step when the preset gives none (the course's other runs use
#: 32; see `preset("mtp")` for why 12): a slider move that trains stays well within 5 s.
BATCH = 12


def _lam(lam) -> float:
    x = validate.number("lam (the MTP loss weight λ)", lam, "a number from 0 to 10")
    if not 0.0 <= x <= 10.0:
        raise ValueError(f"lam (the MTP loss weight λ) must be a number from 0 to 10, not {lam!r}.")
    return x


def train(depth: int = 1, lam: float = 0.3, steps: int | None = None, seed: int = 0,
          progress=None, heads: str = "sequential"):
    """The course's one model trained with `depth` MTP modules and loss weight `lam`;
    `heads="parallel"` makes them independent heads on the trunk (see the module docstring).

    Cached by (depth, lam rounded to 0.01, steps, seed[, "parallel"]): a slider that comes back to a
    setting reuses the trained model. `progress(done, total, text)` is called every step
    of a run that is not cached (see `course.widgets`). Returns `course.train.TrainResult`."""
    from course.presets import preset
    from course.train import tiny_config, train_lm

    depth = validate.integer("depth (the number of MTP modules)", depth, 0, 2)
    lam = _lam(lam)
    heads = validate.choice("heads", heads, HEADS)
    seed = validate.non_negative_int("seed", seed)
    p = preset("mtp")
    steps = validate.positive_int("steps", p["steps"] if steps is None else steps)
    heads = heads if depth else "sequential"
    lam = round(float(lam), 2) if depth else 0.0
    kind = " (parallel heads)" if heads == "parallel" else ""
    label = (f"training with MTP depth {depth}{kind}, λ = {lam:g}" if depth else
             "training without MTP")
    extra = {"mtp_heads": "parallel"} if heads == "parallel" else {}
    key = (int(depth), lam, steps, int(seed)) + ((heads,) if heads == "parallel" else ())
    return RUNS.get(key, lambda: train_lm(
        tiny_config(mtp_depth=int(depth), mtp_lambda=lam, extra=extra), steps=steps,
        batch_size=p.get("batch", BATCH), seed=int(seed), progress=progress, label=label))


@dataclass
class DepthAccuracy:
    next_token: float  # main model: argmax == t_{i+1}
    depth: list  # depth k: argmax of MTP logits == t_{i+k+1}
    agrees_with_main: list  # depth k: draft argmax == the main model's argmax at i+k


@torch.no_grad()
def depth_accuracy(model, stream: torch.Tensor, seq_len: int, max_windows: int = 64
                   ) -> DepthAccuracy:
    """Teacher-forced top-1 accuracy of the main head and each MTP depth on a token stream.

    `agrees_with_main[k-1]` is what greedy speculative decoding would accept if every earlier
    token were right: how often depth k guesses what the main model will say k steps later."""
    needs_mtp(model)
    seq_len = validate.positive_int("seq_len", seq_len)
    max_windows = validate.positive_int("max_windows", max_windows)
    if not torch.is_tensor(stream) or stream.dim() != 1 or len(stream) <= seq_len:
        raise ValueError(f"stream must be a 1-D tensor of token ids longer than seq_len "
                         f"({seq_len}).")
    model.eval()
    n = min(max_windows, (len(stream) - 1) // seq_len)
    x = stream[: n * seq_len].view(n, seq_len)
    y = stream[1: n * seq_len + 1].view(n, seq_len)
    out = model(x, y)
    main = out.logits.argmax(-1)  # (n, T): prediction of t_{i+1}
    depth, agree = [], []
    for k, logits in enumerate(out.mtp_logits, start=1):
        guess = logits.argmax(-1)  # (n, T-k): prediction of t_{i+k+1}
        depth.append((guess == y[:, k:]).float().mean().item())
        agree.append((guess == main[:, k:]).float().mean().item())
    model.train()
    return DepthAccuracy((main == y).float().mean().item(), depth, agree)


@dataclass
class HeadsComparison:
    heads: tuple  # ("sequential", "parallel")
    val_loss: dict  # heads -> the main model's held-out next-token loss
    accuracy: dict  # heads -> DepthAccuracy (teacher-forced, held-out)
    params: dict  # heads -> parameters of the MTP modules
    baseline_loss: float  # the same model trained without MTP


def compare_heads(depth: int = 2, lam: float = 0.3, steps: int | None = None, seed: int = 0,
                  progress=None) -> HeadsComparison:
    """Train DeepSeek's sequential MTP modules and independent parallel heads at the same
    depth, blocks and loss weight (cached runs) and measure on held-out text each depth's
    agreement with the main model (greedy acceptance if earlier tokens were right) and the
    main model's loss, next to the same model without MTP."""
    from course import data

    validate.integer("depth (the number of MTP modules)", depth, 1, 2)
    val = data.split()[1]
    loss, acc, params = {}, {}, {}
    for heads in HEADS:
        res = train(depth, lam, steps, seed, progress, heads=heads)
        loss[heads] = res.val_loss
        acc[heads] = depth_accuracy(res.model, val, res.model.cfg.seq_len)
        params[heads] = sum(p.numel() for p in res.model.mtp.parameters())
    base = train(0, steps=steps, seed=seed, progress=progress).val_loss
    return HeadsComparison(HEADS, loss, acc, params, base)


def module_params(depth: int = 2, heads: str = "sequential") -> int:
    """Parameters of the course model's `depth` MTP modules (sequential) or heads (parallel)."""
    from course.model import TinyLM
    from course.train import tiny_config

    depth = validate.integer("depth (the number of MTP modules)", depth, 1, 2)
    extra = {"mtp_heads": validate.choice("heads", heads, HEADS)}
    with torch.random.fork_rng():  # an untrained model; the global generator is left alone
        model = TinyLM(tiny_config(mtp_depth=depth, extra=extra))
    return sum(p.numel() for p in model.mtp.parameters())


@torch.no_grad()
def two_token_guesses(model, text: str) -> list[tuple[str, str, str]]:
    """For each word of `text`: (word, main head's guess of the next word, depth-1 MTP's guess
    of the word after that, given the true next word). The last word has no MTP guess."""
    from course.data import tokenizer

    needs_mtp(model)
    if not isinstance(text, str) or not text.split():
        raise ValueError(f"text must be a few words of the corpus, not {text!r}.")
    tok = tokenizer()
    idx = torch.tensor([tok.encode(text)])
    model.eval()
    out = model(idx)
    main = out.logits[0].argmax(-1).tolist()
    two = model.mtp_forward(out.hidden, idx)[0][0].argmax(-1).tolist() if idx.shape[1] > 1 else []
    words = tok.words
    return [(words[t], words[main[i]], words[two[i]] if i < len(two) else "")
            for i, t in enumerate(idx[0].tolist())]
