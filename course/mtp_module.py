"""One multi-token-prediction depth as a layer (DeepSeek-V3 report §2.2, eq. 21–22), apart
from `course.mtp`'s training and measuring so that `course.model` can build it without
importing the training loop (which imports the model)."""

from __future__ import annotations

import torch
from torch import nn

from course import validate
from course.attention import RMSNorm

HEADS = ("sequential", "parallel")


class MTPModule(nn.Module):
    """One MTP depth: projection M_k (d x 2d) of the two normalised inputs, then one block.
    With cfg.extra["mtp_heads"] == "parallel": M_k (d x d) of the trunk's state alone."""

    def __init__(self, cfg, block: nn.Module):
        super().__init__()
        d = cfg.d_model
        self.heads = validate.choice(
            "mtp_heads", (getattr(cfg, "extra", None) or {}).get("mtp_heads", "sequential"), HEADS)
        self.parallel = self.heads == "parallel"
        self.hnorm = RMSNorm(d)
        self.enorm = None if self.parallel else RMSNorm(d)
        self.proj = nn.Linear(d if self.parallel else 2 * d, d, bias=False)  # M_k
        self.block = block

    def new_cache(self):
        """An empty KV cache for this depth's attention (used when drafting tokens)."""
        return self.block.attn.new_cache()

    def forward(self, h: torch.Tensor, emb: torch.Tensor, cache=None) -> torch.Tensor:
        """h (B, T', d) from the previous depth, emb (B, T', d) of tokens k ahead -> (B, T', d).

        With `cache`, the T' positions continue the ones already in the cache (decoding)."""
        if self.parallel:  # an independent head: the trunk's state only
            return self.block(self.proj(self.hnorm(h)), cache)[0]
        x = self.proj(torch.cat([self.hnorm(h), self.enorm(emb)], dim=-1))  # eq. 21
        return self.block(x, cache)[0]  # eq. 22: TRM_k
