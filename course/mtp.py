"""Multi-token prediction (DeepSeek-V3 report, section 2.2, eq. 21-25).

Depth k combines the previous depth's hidden state with the embedding of the next known
token, h'_i = M_k [RMSNorm(h_i^{k-1}); RMSNorm(Emb(t_{i+k}))], runs one transformer block,
and shares the main model's embedding and output head (see `TinyLM.mtp_forward`).
"""

from __future__ import annotations

import torch
from torch import nn

from course.attention import RMSNorm


class MTPModule(nn.Module):
    def __init__(self, cfg, block: nn.Module):
        super().__init__()
        d = cfg.d_model
        self.hnorm, self.enorm = RMSNorm(d), RMSNorm(d)
        self.proj = nn.Linear(2 * d, d, bias=False)  # M_k in R^{d x 2d}
        self.block = block

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """h (B, T', d) from the previous depth, emb (B, T', d) of tokens k ahead -> (B, T', d)."""
        x = self.proj(torch.cat([self.hnorm(h), self.enorm(emb)], dim=-1))
        return self.block(x)[0]
