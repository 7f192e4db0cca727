"""The toy corpus shipped in `assets/corpus/tiny.txt` and its tokenizer.

Words, not characters: the vocabulary is about 100 words, so one token is one idea
("forest", "baseball") and an attention heat map reads like the sentence. The price is
that a word the corpus never uses cannot be encoded; `encode` says so in a sentence.

Sentences are joined into one stream with "." between them (the separator also acts as
the start-of-sentence token) and training windows are cut from that stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from course.paths import assets_dir

CORPUS = assets_dir() / "corpus" / "tiny.txt"  # the repository's or the installed copy
SEP = "."


@lru_cache(maxsize=4)
def load_corpus(path: str | None = None) -> tuple[str, ...]:
    """The corpus as a tuple of sentences (lower-case words separated by spaces)."""
    text = Path(path or CORPUS).read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Tokenizer:
    words: tuple[str, ...]  # id -> word; id 0 is the separator "."

    @classmethod
    def from_sentences(cls, sentences) -> "Tokenizer":
        vocab = sorted({w for s in sentences for w in s.split()} - {SEP})
        return cls((SEP, *vocab))

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def ids(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, text: str) -> list[int]:
        ids, words = self.ids, text.lower().replace(".", " . ").split()
        unknown = [w for w in words if w not in ids]
        if unknown:
            raise ValueError(f"The tiny model never saw the word(s) {', '.join(unknown)!s}; "
                             "use words from the course corpus.")
        return [ids[w] for w in words]

    def decode(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids)


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    return Tokenizer.from_sentences(load_corpus())


def token_stream(sentences, tok: Tokenizer) -> torch.Tensor:
    """All sentences as one 1-D LongTensor: `. s1 . s2 . s3 ...`."""
    ids: list[int] = []
    for s in sentences:
        ids.append(0)
        ids.extend(tok.encode(s))
    return torch.tensor(ids, dtype=torch.long)


def split(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation token streams: the last `val_fraction` of sentences is held out."""
    sentences, tok = load_corpus(), tokenizer()
    n_val = int(len(sentences) * val_fraction)
    return token_stream(sentences[:-n_val], tok), token_stream(sentences[-n_val:], tok)


def batch(stream: torch.Tensor, batch_size: int, seq_len: int,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs (B, T) and next-token targets (B, T)."""
    if seq_len + 1 > len(stream):
        raise ValueError(f"seq_len {seq_len} is longer than the corpus stream.")
    starts = torch.randint(0, len(stream) - seq_len - 1, (batch_size,), generator=generator)
    x = torch.stack([stream[s:s + seq_len] for s in starts.tolist()])
    y = torch.stack([stream[s + 1:s + seq_len + 1] for s in starts.tolist()])
    return x, y
