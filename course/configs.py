"""Model configs (read from real Hugging Face style `config.json` files); the GPU specs
live in `course.gpus` and are re-exported here.

`load_config` understands three families:

* DeepSeek-V2/V3: Multi-head Latent Attention (`kv_lora_rank`, `q_lora_rank` may be null),
  MoE with shared experts, the first `first_k_dense_replace` layers dense, group-limited
  routing (`n_group`, `topk_group`), MTP depth (`num_nextn_predict_layers`).
* Mixtral/Mistral: every FFN an MoE of `num_local_experts` experts, GQA attention.
* Llama: dense, GQA when `num_key_value_heads < num_attention_heads`, MHA when equal.

Glossary (the names follow DeepSeek's `ModelArgs` and the papers):
  d / hidden_size   width of the residual stream
  n_h / num_heads   attention heads; d_h = head_dim
  d_c               kv_lora_rank, the width of MLA's compressed KV latent
  d_h^R             qk_rope_head_dim, the decoupled RoPE key shared by all heads
  N_r, N_s, K_r     n_routed_experts, n_shared_experts, experts_per_token
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from course import validate
from course.gpus import (  # noqa: F401  (the course reads them as configs.*)
    DEEPSEEK_IB_GB_S,
    DEEPSEEK_NVLINK_GB_S,
    GPUS,
    GPUSpec,
    gpu,
)
from course.paths import assets_dir

ASSETS = assets_dir()  # the repository's assets/, or the installed copy
CONFIG_DIR = ASSETS / "configs"
SHIPPED = ("deepseek-v3", "mixtral-8x7b", "llama-3-8b", "llama-3-70b", "llama-3.1-405b")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str  # "deepseek", "mixtral" or "llama"
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense FFN width (DeepSeek: the first-k dense layers)
    vocab_size: int
    tie_word_embeddings: bool = False
    # Multi-head Latent Attention (DeepSeek); kv_lora_rank == 0 means no MLA.
    q_lora_rank: int | None = None
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # Mixture of experts; n_routed_experts == 0 means a dense model.
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    first_k_dense_replace: int = 0
    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    scoring_func: str = "softmax"
    mtp_depth: int = 0
    max_position_embeddings: int = 0
    rms_norm_eps: float = 1e-6
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def attention_kind(self) -> str:
        """"mla", "mha", "mqa" or "gqa"."""
        if self.kv_lora_rank:
            return "mla"
        if self.num_kv_heads == self.num_heads:
            return "mha"
        return "mqa" if self.num_kv_heads == 1 else "gqa"

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def n_dense_layers(self) -> int:
        return self.num_layers - self.n_moe_layers

    @property
    def n_moe_layers(self) -> int:
        return self.num_layers - self.first_k_dense_replace if self.is_moe else 0


_REQUIRED = object()


def _int(raw: dict, key: str, minimum: int = 1, default=_REQUIRED) -> int:
    """raw[key] as a whole number ≥ minimum; `default` when absent or null (if allowed)."""
    value = raw.get(key)
    if value is None:
        if default is _REQUIRED:
            raise ValueError(f"config is missing the required key {key!r}")
        return default
    try:
        return validate.integer(key, value, minimum)
    except ValueError:
        raise ValueError(f"config key {key!r} must be a whole number ≥ {minimum}, "
                         f"not {value!r}.") from None


def _positive_float(raw: dict, key: str, default: float) -> float:
    value = raw.get(key)
    if value is None:
        return default
    try:
        return validate.positive(key, value)
    except ValueError:
        raise ValueError(f"config key {key!r} must be a positive number, not {value!r}.") \
            from None


def _family(raw: dict) -> str:
    kind = str(raw.get("model_type", "")).lower()
    if "deepseek" in kind or "kv_lora_rank" in raw or "n_routed_experts" in raw:
        return "deepseek"
    if "mixtral" in kind or "num_local_experts" in raw:
        return "mixtral"
    return "llama"


def _common(raw: dict, name: str, family: str) -> dict:
    d = _int(raw, "hidden_size")
    heads = _int(raw, "num_attention_heads")
    head_dim = _int(raw, "head_dim", default=None)
    if d % heads and head_dim is None and family != "deepseek":  # MLA sets its own d_h
        raise ValueError(f"hidden_size {d} is not divisible by num_attention_heads {heads}.")
    kv_heads = _int(raw, "num_key_value_heads", default=heads)
    if heads % kv_heads:
        raise ValueError(f"num_key_value_heads {kv_heads} must divide num_attention_heads "
                         f"{heads} (each KV head serves a whole group of query heads).")
    return dict(
        name=name,
        family=family,
        hidden_size=d,
        num_layers=_int(raw, "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim or d // heads,
        intermediate_size=_int(raw, "intermediate_size"),
        vocab_size=_int(raw, "vocab_size"),
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        max_position_embeddings=_int(raw, "max_position_embeddings", 0, default=0),
        rms_norm_eps=_positive_float(raw, "rms_norm_eps", 1e-6),
    )


def _deepseek(raw: dict) -> dict:
    fields = dict(
        # The paper's d_h (per-head dimension) is qk_nope_head_dim, not hidden/heads.
        head_dim=_int(raw, "qk_nope_head_dim"),
        q_lora_rank=_int(raw, "q_lora_rank", 0, default=None) or None,
        kv_lora_rank=_int(raw, "kv_lora_rank", 0),
        qk_nope_head_dim=_int(raw, "qk_nope_head_dim"),
        qk_rope_head_dim=_int(raw, "qk_rope_head_dim", 0),
        v_head_dim=_int(raw, "v_head_dim"),
        mtp_depth=_int(raw, "num_nextn_predict_layers", 0, default=0),
    )
    if _int(raw, "n_routed_experts", 0, default=0):
        fields.update(
            n_routed_experts=_int(raw, "n_routed_experts"),
            n_shared_experts=_int(raw, "n_shared_experts", 0, default=0),
            experts_per_token=_int(raw, "num_experts_per_tok"),
            moe_intermediate_size=_int(raw, "moe_intermediate_size"),
            first_k_dense_replace=_int(raw, "first_k_dense_replace", 0, default=0),
            n_group=_int(raw, "n_group", default=1),
            topk_group=_int(raw, "topk_group", default=1),
            routed_scaling_factor=_positive_float(raw, "routed_scaling_factor", 1.0),
            scoring_func=validate.choice("scoring_func", raw.get("scoring_func") or "softmax",
                                         ("softmax", "sigmoid")),
        )
    return fields


def _mixtral(raw: dict) -> dict:
    return dict(
        n_routed_experts=_int(raw, "num_local_experts"),
        experts_per_token=_int(raw, "num_experts_per_tok"),
        moe_intermediate_size=_int(raw, "intermediate_size"),
        scoring_func="softmax",
    )


def _check_consistent(f: dict, family: str) -> None:
    """Relations between keys that the shapes need; each message names the keys."""
    experts, top_k = "num_local_experts", "num_experts_per_tok"
    if family == "deepseek":
        experts = "n_routed_experts"
    n, k = f.get("n_routed_experts", 0), f.get("experts_per_token", 0)
    if n and k > n:
        raise ValueError(f"{top_k} {k} is more than the {n} routed experts ({experts}).")
    groups, topk_group = f.get("n_group", 1), f.get("topk_group", 1)
    if n and n % groups:
        raise ValueError(f"n_group {groups} must divide the {n} routed experts ({experts}).")
    if topk_group > groups:
        raise ValueError(f"topk_group {topk_group} is more than the {groups} groups (n_group).")
    dense = f.get("first_k_dense_replace", 0)
    if dense > f["num_layers"]:
        raise ValueError(f"first_k_dense_replace {dense} is more than the {f['num_layers']} "
                         f"layers (num_hidden_layers).")


def _read_json(path: Path) -> dict:
    """The top-level object of a config.json file, or a ValueError saying what is wrong."""
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file: give the path of a config.json.")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read {path.name} as JSON: {err}.") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name} holds a JSON {type(raw).__name__}, not the object "
                         f"of keys (hidden_size, num_hidden_layers, ...) a config has.")
    return raw


def config_path(name: str) -> Path:
    return CONFIG_DIR / f"{name}.json"


def load_config(source) -> ModelConfig:
    """Read a model config from a shipped name, a path to a `config.json`, or a dict.

    >>> load_config("deepseek-v3").attention_kind
    'mla'
    """
    if isinstance(source, ModelConfig):
        return source
    if not isinstance(source, (dict, str, os.PathLike)):
        raise ValueError(f"A model config is a shipped name ({', '.join(SHIPPED)}), a path to "
                         f"a config.json or a dict, not {source!r}.")
    if isinstance(source, dict):
        raw, name = source, source.get("name", source.get("model_type", "custom"))
    else:
        path = config_path(str(source)) if str(source) in SHIPPED else Path(source)
        if not path.exists():
            raise ValueError(
                f"No config {source!r}: give a path or one of {', '.join(SHIPPED)}."
            )
        raw, name = _read_json(path), path.stem
    family = _family(raw)
    fields = _common(raw, name, family)
    if family == "deepseek":
        fields.update(_deepseek(raw))
    elif family == "mixtral":
        fields.update(_mixtral(raw))
    _check_consistent(fields, family)
    known = set(ModelConfig.__dataclass_fields__)
    extra = {k: v for k, v in raw.items() if k not in known}
    return ModelConfig(**fields, extra=extra)
