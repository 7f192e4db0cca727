"""How many bytes a model needs to train or serve.

Parameter counts come from `course.params` (re-exported here: `memory.param_count`).
Training memory per replica = weights + gradients + optimizer states + activations, for a
precision recipe (`RECIPES`); activations live in `course.activations`. Inference memory =
weights + KV cache (`course.kvcache`). Left out: framework buffers, fragmentation,
communication buffers and the CUDA context (a few GB on a real GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from course import validate
from course.activations import activation_bytes
from course.configs import ModelConfig, load_config
from course.kvcache import kv_cache_bytes
from course.params import (  # noqa: F401  (the course's notebooks read them as memory.*)
    FP8_BLOCK,
    ParamCount,
    attention_params,
    ffn_params,
    hf_checkpoint_params,
    mtp_params,
    param_count,
    router_params,
)

# ----------------------------------------------------------------------------- bytes


@dataclass(frozen=True)
class Recipe:
    """Bytes per parameter kept by a precision recipe (activations: bytes per element)."""

    name: str
    weights: float  # the copy the matmuls read
    master: float  # a higher-precision copy the optimizer updates (0: none)
    grads: float
    moment: float  # each optimizer moment (Adam keeps two)
    activations: float


RECIPES = {
    "fp32": Recipe("FP32", 4, 0, 4, 4, 4),
    # Mixed precision as in the ZeRO paper: 2 + 2 + (4 + 4 + 4) = 16 bytes per param.
    "bf16-mixed": Recipe("BF16 mixed (FP32 master + moments)", 2, 4, 2, 4, 2),
    # DeepSeek-V3 report 3.3.3: FP8 GEMMs, FP32 master weights and gradients, BF16 AdamW
    # moments; activations cached in FP8 (a few, e.g. the attention output, in BF16/E5M6).
    "deepseek-fp8": Recipe("DeepSeek-V3 FP8 (FP32 master + grads, BF16 moments)", 1, 4, 4, 2, 1),
    # What the essay's 5,120 GB needs: everything in BF16, no master copy.
    "bf16-pure": Recipe("pure BF16 (no master copy)", 2, 0, 2, 2, 2),
}

#: Optimizer -> number of per-parameter moments it keeps.
OPTIMIZERS = {"adamw": 2, "sgd-momentum": 1, "sgd": 0}

#: The GPU the course sizes replicas against (H100/H800: 80 GB, decimal as in datasheets).
GPU_GB = 80


def recipe(name: str) -> Recipe:
    return RECIPES[validate.choice("precision recipe", name, RECIPES)]


def state_bytes(n_params: int, recipe_name: str = "bf16-mixed",
                optimizer: str = "adamw") -> dict:
    """Bytes of weights, gradients and optimizer states (master copy + moments) for
    `n_params` parameters; every parameter has a gradient, routed experts included."""
    validate.non_negative("n_params", n_params)
    validate.choice("optimizer", optimizer, OPTIMIZERS)
    r = recipe(recipe_name)
    return {
        "weights": n_params * r.weights,
        "gradients": n_params * r.grads,
        "optimizer": n_params * (r.master + OPTIMIZERS[optimizer] * r.moment),
    }


def training_memory(cfg, recipe_name: str = "bf16-mixed", optimizer: str = "adamw",
                    seq_len: int = 4096, micro_batch: int = 1,
                    recompute: str = "none") -> dict:
    """Bytes one model replica needs to train: weights, gradients, optimizer, activations.

    Activations are for one micro-batch of `micro_batch` sequences of `seq_len` tokens.
    """
    cfg = load_config(cfg)
    out = state_bytes(param_count(cfg).total, recipe_name, optimizer)
    out["activations"] = activation_bytes(cfg, seq_len, micro_batch, recompute,
                                          recipe(recipe_name).activations)
    return out


def inference_memory(cfg, weight_bytes: float = 2, seq_len: int = 4096, batch: int = 1,
                     kv_bytes: float = 2) -> dict:
    """Bytes to serve: the weights at `weight_bytes` per param plus the KV cache."""
    cfg = load_config(cfg)
    validate.positive("weight_bytes", weight_bytes)
    return {"weights": param_count(cfg).total * weight_bytes,
            "kv_cache": kv_cache_bytes(cfg, seq_len, batch, kv_bytes)}


def gpus_needed(n_bytes: float, gpu_gb: float = GPU_GB) -> int:
    """How many GPUs of `gpu_gb` decimal GB hold `n_bytes` (memory only, no headroom)."""
    n_bytes = validate.non_negative("n_bytes", n_bytes)
    gpu_gb = validate.positive("gpu_gb", gpu_gb)
    return max(1, math.ceil(n_bytes / (gpu_gb * 1e9)))


def custom_config(hidden_size: int = 4096, num_layers: int = 32, n_experts: int = 0,
                  top_k: int = 2, vocab_size: int = 128256) -> ModelConfig:
    """A Llama-style model (GQA with 8 KV heads, 128-wide heads, FFN 3.5 d), or a
    Mixtral-style MoE when `n_experts` > 0, for the calculators' custom sliders."""
    hidden_size = validate.positive_int("hidden_size", hidden_size)
    num_layers = validate.positive_int("num_layers", num_layers)
    n_experts = validate.non_negative_int("n_experts", n_experts)
    top_k = validate.positive_int("top_k", top_k)
    vocab_size = validate.positive_int("vocab_size", vocab_size)
    if hidden_size % 128 or hidden_size < 128:
        raise ValueError("hidden size must be a positive multiple of the 128-wide heads.")
    if n_experts and not 1 <= top_k <= n_experts:
        raise ValueError(f"top-k {top_k} must be between 1 and the {n_experts} experts.")
    raw = dict(model_type="mixtral" if n_experts else "llama", hidden_size=hidden_size,
               num_hidden_layers=num_layers, num_attention_heads=hidden_size // 128,
               num_key_value_heads=min(8, hidden_size // 128),
               intermediate_size=hidden_size * 7 // 2, vocab_size=vocab_size, name="custom")
    if n_experts:
        raw.update(num_local_experts=n_experts, num_experts_per_tok=top_k)
    return load_config(raw)
