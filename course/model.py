"""The course's one model: a small decoder-only transformer assembled from the course's
own components by a config with switches (DESIGN.md, "One model that grows").

    attention  "mha" (notebook 01) | "mla" (11, course.mla)
    ffn        "dense" SwiGLU (01) | "moe" (08, course.moe), first `n_dense_layers` dense
    balance    "none" | "aux" (auxiliary loss, alpha) | "bias" (DeepSeek's bias, gamma) (09)
    precision  "fp32" | "bf16" | "fp8" (10, course.fp8): how every linear layer computes
    mtp_depth  0, 1 or 2 multi-token-prediction modules (12, course.mtp)

Every notebook that trains something trains this model with different switches; the
training loop is `course.train.train_lm`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course.attention import Block, CausalSelfAttention, RMSNorm, SwiGLU, plain_linear

ATTENTION = ("mha", "mla")
FFN = ("dense", "moe")
BALANCE = ("none", "aux", "bias")
PRECISION = ("fp32", "bf16", "fp8")


@dataclass
class TinyConfig:
    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    seq_len: int = 32
    d_ff: int = 0  # dense SwiGLU hidden width; 0 means 8/3 * d_model rounded up to 8
    attention: str = "mha"
    ffn: str = "dense"
    precision: str = "fp32"
    mtp_depth: int = 0
    mtp_lambda: float = 0.3
    rope_base: float = 10000.0
    # MLA (attention="mla"): names as in DeepSeek's ModelArgs
    q_lora_rank: int = 0  # 0: queries projected directly, no low-rank query
    kv_lora_rank: int = 16
    qk_nope_head_dim: int = 16
    qk_rope_head_dim: int = 8
    v_head_dim: int = 16
    # MoE (ffn="moe")
    n_routed_experts: int = 8
    n_shared_experts: int = 1
    experts_per_token: int = 2
    moe_inter_dim: int = 32
    n_dense_layers: int = 0
    n_groups: int = 1
    topk_groups: int = 1
    # "sigmoid" (DeepSeek-V3) or "softmax" (Switch / DeepSeek-V2: top-k not renormalised)
    score_func: str = "sigmoid"
    route_scale: float = 1.0
    balance: str = "none"
    aux_alpha: float = 0.01
    bias_gamma: float = 0.001
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, allowed in (("attention", ATTENTION), ("ffn", FFN), ("balance", BALANCE),
                              ("precision", PRECISION)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"not {getattr(self, name)!r}.")
        if self.d_model % self.n_heads:
            raise ValueError(f"The width {self.d_model} is not divisible by "
                             f"{self.n_heads} heads.")
        if not 0 <= self.mtp_depth <= 2:
            raise ValueError("mtp_depth must be 0, 1 or 2.")
        if self.ffn == "moe" and not 1 <= self.experts_per_token <= self.n_routed_experts:
            raise ValueError("experts_per_token must be between 1 and n_routed_experts.")
        if not self.d_ff:
            self.d_ff = -(-8 * self.d_model // 3 // 8) * 8

    def to_dict(self) -> dict:
        return asdict(self)


def make_linear(precision: str):
    """The linear-layer factory for a precision recipe (weights are always FP32 masters)."""
    if precision == "fp32":
        return plain_linear
    if precision == "bf16":
        return lambda i, o: BF16Linear(i, o)
    from course.fp8 import FP8Linear

    return lambda i, o: FP8Linear(i, o)


class BF16Linear(nn.Linear):
    """Computes in BF16 (inputs and weights rounded), keeps FP32 master weights."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.bfloat16(), self.weight.bfloat16()).float()


def make_attention(cfg: TinyConfig, linear) -> nn.Module:
    if cfg.attention == "mla":
        from course.mla import MLAttention

        return MLAttention(cfg, linear)
    return CausalSelfAttention(cfg.d_model, cfg.n_heads, linear, rope=True,
                               rope_base=cfg.rope_base)


def make_ffn(cfg: TinyConfig, layer: int, linear) -> nn.Module:
    if cfg.ffn == "dense" or layer < cfg.n_dense_layers:
        return SwiGLU(cfg.d_model, cfg.d_ff, linear)
    from course.moe import MoE

    return MoE(cfg, linear)


def make_block(cfg: TinyConfig, layer: int) -> Block:
    linear = make_linear(cfg.precision)
    return Block(cfg.d_model, make_attention(cfg, linear), make_ffn(cfg, layer, linear))


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None  # what the optimizer minimises
    lm_loss: torch.Tensor | None = None  # next-token cross-entropy alone
    aux_loss: torch.Tensor | None = None  # balance loss, already times aux_alpha
    mtp_loss: torch.Tensor | None = None  # mean over depths, before mtp_lambda
    mtp_logits: list = field(default_factory=list)  # depth k: (B, T-k, V), predicts t+k+1
    hidden: torch.Tensor | None = None  # final residual stream before the last norm
    updates: list = field(default_factory=list)  # per layer: (attention, ffn) updates


class TinyLM(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(make_block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.mtp_depth:
            from course.mtp_module import MTPModule

            self.mtp = nn.ModuleList(MTPModule(cfg, make_block(cfg, cfg.n_layers + k))
                                     for k in range(cfg.mtp_depth))
        self.apply(_init_weights)

    def new_cache(self) -> list:
        return [block.attn.new_cache() for block in self.blocks]

    def moe_layers(self) -> list[nn.Module]:
        return [b.ffn for b in self.blocks if hasattr(b.ffn, "update_bias")]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache=None,
                knockout: set | None = None) -> ModelOutput:
        """idx (B, T) token ids; targets (B, T) next tokens; cache from `new_cache()`;
        knockout: a set of ("attn", layer) / ("ffn", layer) whose output is zeroed."""
        knockout = knockout or set()
        x, updates = self.embed(idx), []
        for i, block in enumerate(self.blocks):
            x, a, m = block(x, None if cache is None else cache[i],
                            skip_attn=("attn", i) in knockout, skip_ffn=("ffn", i) in knockout)
            updates.append((a, m))
        logits = self.head(self.norm(x))
        out = ModelOutput(logits=logits, hidden=x, updates=updates)
        if targets is not None:
            self._losses(out, idx, targets)
        return out

    def _losses(self, out: ModelOutput, idx: torch.Tensor, targets: torch.Tensor) -> None:
        V = self.cfg.vocab_size
        out.lm_loss = F.cross_entropy(out.logits.reshape(-1, V), targets.reshape(-1))
        out.loss = out.lm_loss
        aux = [m.aux_loss for m in self.moe_layers() if getattr(m, "aux_loss", None) is not None]
        if self.cfg.balance == "aux" and aux:
            out.aux_loss = self.cfg.aux_alpha * torch.stack(aux).mean()
            out.loss = out.loss + out.aux_loss
        if self.cfg.mtp_depth:
            out.mtp_logits = self.mtp_forward(out.hidden, idx)
            # DeepSeek-V3 eq. 24-25: L_MTP = lambda/D * sum_k CE(depth k); depth k predicts
            # the token k+1 ahead, i.e. targets shifted by k.
            losses = [F.cross_entropy(lg.reshape(-1, V), targets[:, k:].reshape(-1))
                      for k, lg in enumerate(out.mtp_logits, start=1)]
            out.mtp_loss = torch.stack(losses).mean()
            out.loss = out.loss + self.cfg.mtp_lambda * out.mtp_loss

    def mtp_forward(self, hidden: torch.Tensor, idx: torch.Tensor) -> list[torch.Tensor]:
        """Sequential MTP (DeepSeek-V3 eq. 21-23). Depth k at position i combines h^{k-1}_i
        with the embedding of token t_{i+k} and predicts t_{i+k+1}. With
        cfg.extra["mtp_heads"] == "parallel" every depth reads `hidden` (course.mtp)."""
        logits, h = [], hidden
        parallel = self.cfg.extra.get("mtp_heads") == "parallel"  # course.mtp: Gloeckle et al.
        for k, module in enumerate(self.mtp, start=1):
            h = module((hidden if parallel else h)[:, : idx.shape[1] - k],
                       self.embed(idx[:, k:]))
            logits.append(self.head(self.norm(h)))
        return logits


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def generate(model: TinyLM, idx: torch.Tensor, max_new_tokens: int, use_cache: bool = True,
             temperature: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue `idx` (B, T) by `max_new_tokens` tokens; greedy when temperature is 0.
    With `use_cache` each step feeds only the newest token and reads past keys/values from
    the cache; without it each step recomputes the whole prefix (same tokens, more work)."""
    model.eval()
    cache = model.new_cache() if use_cache else None
    out, step_input = idx, idx
    for _ in range(max_new_tokens):
        logits = model(step_input, cache=cache).logits[:, -1]
        nxt = _pick(logits, temperature, generator)
        out = torch.cat([out, nxt], dim=1)
        step_input = nxt if use_cache else out
    return out


def _pick(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1, keepdim=True)
    probs = (logits / temperature).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)


def save(model: TinyLM, folder) -> Path:
    """Save the weights and the config to `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(model.cfg.to_dict(), indent=1))
    return folder


def load(folder, cfg: TinyConfig | None = None) -> TinyLM:
    """Load a model saved by `save`. With `cfg`, refuse a checkpoint of another config."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise ValueError(f"No saved model in {folder}: train one and call save() first.")
    saved = TinyConfig(**json.loads((folder / "config.json").read_text()))
    if cfg is not None and cfg.to_dict() != saved.to_dict():
        diff = [k for k, v in cfg.to_dict().items() if saved.to_dict().get(k) != v]
        raise ValueError(f"The checkpoint in {folder} was trained with a different config "
                         f"({', '.join(diff)} differ).")
    model = TinyLM(saved)
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model
