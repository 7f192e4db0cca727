"""Activation memory: the tensors a forward pass saves for the backward pass.

Rule used throughout (it is what autograd does): every matmul saves its input (to form the
weight gradient), every elementwise non-linearity saves its input or output, a norm saves
its input. Counted per token and per layer for a straightforward implementation with a
fused (flash) attention kernel, which keeps no (T x T) score matrix; `flash=False` adds it.
Recomputation (report 3.2.3 for DeepSeek-V3's choices):
  "none"       keep everything;
  "selective"  recompute RMSNorm outputs, MLA's up-projections (q, k, v) and SwiGLU's
               output from cached inputs, as DeepSeek-V3 does;
  "full"       keep only each layer's input, recompute the layer during backward (plus
               one layer's full working set at a time).
Tensor parallelism splits everything except the residual-stream/norm tensors, which
sequence parallelism splits too (Korthikanti et al. 2022).

The toy MLP at the bottom is the model the notebook measures with
`torch.autograd.graph.saved_tensors_hooks`; `toy_mlp_saved_bytes` predicts the measurement.
"""

from __future__ import annotations

import torch
from torch import nn

from course import validate
from course.configs import ModelConfig, load_config

RECOMPUTE = ("none", "selective", "full")


def _attention_elements(cfg: ModelConfig, seq_len: int, recompute: str, flash: bool) -> int:
    """Saved elements per token in one attention block, outside the norms (TP-split part)."""
    h = cfg.num_heads
    if cfg.attention_kind == "mla":
        qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        latents = 2 * (cfg.q_lora_rank or 0) + 2 * cfg.kv_lora_rank + cfg.qk_rope_head_dim
        qkv = 2 * h * qk + h * cfg.v_head_dim  # the up-projected q, k, v
        out = h * cfg.v_head_dim  # input of wo
        if recompute == "selective":
            qkv = 0  # recomputed from the cached latents (report 3.2.3)
        elements = latents + qkv + out
    else:
        kv = 2 * cfg.num_kv_heads * cfg.head_dim
        elements = 2 * h * cfg.head_dim + kv  # q, k, v, and the input of wo
    return elements + (0 if flash else h * seq_len)  # softmax probabilities per query


def _ffn_elements(inter: int, recompute: str) -> int:
    """SwiGLU saves gate and up outputs, silu(gate) and their product (the down input)."""
    return 2 * inter if recompute == "selective" else 4 * inter


def layer_elements(cfg: ModelConfig, moe: bool, seq_len: int, recompute: str = "none",
                   flash: bool = True) -> dict:
    """Saved elements per token in one layer: {"norm": replicated under TP, "split": rest}."""
    cfg = load_config(cfg)
    validate.choice("recompute", recompute, RECOMPUTE)
    seq_len = validate.positive_int("seq_len", seq_len)
    d = cfg.hidden_size
    norm = 2 * d if recompute == "selective" else 4 * d  # norm inputs (+ outputs)
    split = _attention_elements(cfg, seq_len, recompute, flash)
    if moe:
        k, m = cfg.experts_per_token, cfg.moe_intermediate_size
        # router scores; each routed copy: its input and weighted output; shared experts.
        split += (cfg.n_routed_experts + k * (2 * d + _ffn_elements(m, recompute))
                  + cfg.n_shared_experts * _ffn_elements(m, recompute))
    else:
        split += _ffn_elements(cfg.intermediate_size, recompute)
    return {"norm": norm, "split": split}


def activation_elements(cfg, seq_len: int, recompute: str = "none", flash: bool = True,
                        tp: int = 1, sp: bool = False) -> float:
    """Saved elements per token for the whole model (per GPU when split by `tp`)."""
    cfg = load_config(cfg)
    validate.choice("recompute", recompute, RECOMPUTE)
    seq_len = validate.positive_int("seq_len", seq_len)
    tp = validate.positive_int("tp", tp)
    kinds = [(False, cfg.n_dense_layers), (True, cfg.n_moe_layers)]
    per = {moe: layer_elements(cfg, moe, seq_len, recompute, flash) for moe, _ in kinds}
    size = {moe: p["norm"] / (tp if sp else 1) + p["split"] / tp for moe, p in per.items()}
    logits = cfg.vocab_size / tp  # the output head's logits, kept for the loss
    if recompute == "full":
        kept = cfg.num_layers * cfg.hidden_size / (tp if sp else 1)  # layer inputs
        return kept + max(size[moe] for moe, n in kinds if n) + logits
    return sum(n * size[moe] for moe, n in kinds) + logits


def activation_bytes(cfg, seq_len: int, micro_batch: int = 1, recompute: str = "none",
                     dtype_bytes: float = 2, flash: bool = True, tp: int = 1,
                     sp: bool = False) -> int:
    """Bytes of saved activations for one micro-batch: linear in seq_len and micro_batch
    with a flash kernel (quadratic in seq_len only through the score matrix)."""
    micro_batch = validate.positive_int("micro_batch", micro_batch)
    validate.positive("dtype_bytes", dtype_bytes)
    per_token = activation_elements(cfg, seq_len, recompute, flash, tp, sp)
    return int(round(per_token * seq_len * micro_batch * dtype_bytes))


# ----------------------------------------------------------------------------- toy model


def toy_mlp(d: int = 64, hidden: int = 256, blocks: int = 2, seed: int = 0) -> nn.Sequential:
    """A residual-free MLP: `blocks` x (Linear d->hidden, GELU, Linear hidden->d)."""
    d, hidden = validate.integer("d", d, 1, 8192), validate.integer("hidden", hidden, 1, 8192)
    blocks = validate.integer("blocks", blocks, 1, 64)
    g = torch.Generator().manual_seed(validate.integer("seed", seed, 0, 2**63 - 1))
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    return model


def toy_mlp_params(d: int, hidden: int, blocks: int) -> int:
    """Weights and biases of `toy_mlp`."""
    d, hidden, blocks = _sizes(d=d, hidden=hidden, blocks=blocks)
    return blocks * (2 * d * hidden + hidden + d)


def toy_mlp_saved_bytes(d: int, hidden: int, blocks: int, batch: int,
                        dtype_bytes: int = 4) -> int:
    """Predicted bytes saved for backward by `toy_mlp` + MSE loss: per block the first
    Linear's input (d), GELU's input (hidden) and the second Linear's input (hidden);
    then the MSE loss keeps the output and the target (d each)."""
    d, hidden, blocks, batch = _sizes(d=d, hidden=hidden, blocks=blocks, batch=batch)
    validate.positive("dtype_bytes", dtype_bytes)
    return batch * (blocks * (d + 2 * hidden) + 2 * d) * dtype_bytes


def _sizes(**sizes) -> tuple:
    return tuple(validate.positive_int(name, n) for name, n in sizes.items())


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          lr: float = 1e-3) -> dict:
    """Run one MSE + AdamW step and measure bytes from torch: parameters, gradients,
    AdamW moments (exp_avg, exp_avg_sq), AdamW's step counters, and the distinct tensors
    autograd saved for backward (parameters excluded: they are counted once as weights)."""
    if not isinstance(model, nn.Module) or not (torch.is_tensor(x) and torch.is_tensor(y)):
        raise ValueError("measure_training_step takes a torch model and tensors x and y.")
    validate.positive("lr", lr)
    params = list(model.parameters())
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_ptrs:  # subtle: one storage saved twice counts once
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    opt = torch.optim.AdamW(params, lr=lr)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    states = [s for p in params for s in opt.state[p].items()]
    return {
        "weights": _nbytes(params),
        "gradients": _nbytes(p.grad for p in params),
        "optimizer": _nbytes(v for k, v in states if k in ("exp_avg", "exp_avg_sq")),
        "optimizer_step_counters": _nbytes(v for k, v in states if k == "step"),
        "activations": sum(saved.values()),
    }
