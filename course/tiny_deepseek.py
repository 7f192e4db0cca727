"""The tiny DeepSeek (notebook 14): the course's one model with every component on, and an
ablation that switches each one off and measures what it bought.

Full config: MLA attention (11), MoE FFN with a shared expert, top-k sigmoid routing,
group-limited choice and bias balancing (08-09), FP8 linears with fine-grained scaling
(10), one MTP module (12) — sizes from `preset("tiny_deepseek")`. Each ablation row changes
one switch: MHA instead of MLA, a dense FFN with the same *active* parameters, the
auxiliary loss instead of the bias, FP32 instead of FP8, no MTP. Measured per row:
validation loss, KV-cache bytes per token (from the real cache of a generation, checked
against `course.kvcache`), total and active parameters (counted on the model: active =
the parameters of the modules one token runs through), training tokens/s, held-out
MaxVio and decode tokens per main-model step with MTP speculation.

Runs are cached in memory by (config, training settings, seed); `measure(..., cache=False)`
reruns. The ablation over seeds, and the balancing sweep that checks row 4 is fair, are in
`course.tiny_deepseek_ablation` (shipped under assets/runs/, minutes of CPU to recompute).
Left out: multi-GPU anything; timings are this machine's and noisy.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from course import data
from course.device import size as current_size
from course.model import TinyConfig, TinyLM
from course.presets import preset
from course.timing import one_thread

TRAIN_KEYS = ("steps", "batch", "lr", "warmup", "prompts", "new_tokens")
#: variant -> (what changes, the notebook that explains the component)
VARIANTS = {
    "full": ("tiny DeepSeek (all on)", "14_tiny_deepseek"),
    "mha": ("MHA instead of MLA", "11_kv_cache_mla"),
    "dense": ("dense FFN, same active params", "08_moe_collapse"),
    "aux": ("aux loss instead of bias", "09_balancing"),
    "fp32": ("FP32 instead of FP8", "10_fp8"),
    "no_mtp": ("no MTP", "12_mtp"),
}
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def settings(size: str | None = None) -> tuple[dict, dict]:
    """(model sizes, training settings) of the preset at `size` (default: the current one)."""
    p = preset("tiny_deepseek", size)
    return ({k: v for k, v in p.items() if k not in TRAIN_KEYS},
            {k: p[k] for k in TRAIN_KEYS})


def full_config(size: str | None = None, **overrides) -> TinyConfig:
    """The tiny DeepSeek: MLA + MoE (bias balancing) + FP8 + MTP at the preset's sizes."""
    sizes, _ = settings(size)
    base = dict(vocab_size=data.tokenizer().vocab_size, attention="mla", ffn="moe",
                balance="bias", precision="fp8", score_func="sigmoid", **sizes)
    return TinyConfig(**{**base, **overrides})


def dense_width(cfg: TinyConfig) -> int:
    """The SwiGLU width whose params equal the expert FFN params one token runs through:
    the shared experts plus its top-k routed experts (the router, E x d, is left out)."""
    return (cfg.n_shared_experts + cfg.experts_per_token) * cfg.moe_inter_dim


def variant_config(name: str, cfg: TinyConfig) -> TinyConfig:
    """`cfg` with one component switched off (`name` from VARIANTS)."""
    if name not in VARIANTS:
        raise ValueError(f"No variant {name!r}; choose one of {', '.join(VARIANTS)}.")
    change = {"full": {}, "mha": dict(attention="mha"), "aux": dict(balance="aux"),
              "dense": dict(ffn="dense", balance="none", d_ff=dense_width(cfg)),
              "fp32": dict(precision="fp32"), "no_mtp": dict(mtp_depth=0)}[name]
    return replace(cfg, **change)


def hf_config(cfg: TinyConfig) -> dict:
    """A Hugging Face style config.json dict of `cfg`, for `course.memory`/`course.kvcache`."""
    raw = dict(name="tiny-deepseek", hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
               num_attention_heads=cfg.n_heads, vocab_size=cfg.vocab_size,
               intermediate_size=cfg.d_ff, tie_word_embeddings=False)
    if cfg.attention == "mla":
        raw.update(model_type="deepseek_v3", q_lora_rank=cfg.q_lora_rank or None,
                   kv_lora_rank=cfg.kv_lora_rank, qk_nope_head_dim=cfg.qk_nope_head_dim,
                   qk_rope_head_dim=cfg.qk_rope_head_dim, v_head_dim=cfg.v_head_dim,
                   num_nextn_predict_layers=cfg.mtp_depth)
        if cfg.ffn == "moe":
            raw.update(n_routed_experts=cfg.n_routed_experts,
                       n_shared_experts=cfg.n_shared_experts,
                       num_experts_per_tok=cfg.experts_per_token,
                       moe_intermediate_size=cfg.moe_inter_dim,
                       first_k_dense_replace=cfg.n_dense_layers, n_group=cfg.n_groups,
                       topk_group=cfg.topk_groups, scoring_func=cfg.score_func)
    return raw


# ---------------------------------------------------------------------------- measuring


def count_params(model: TinyLM) -> tuple[int, int]:
    """(total, active) of the main model (MTP excluded, as in DeepSeek's 671B/37B), counted
    on the module tree; the routing bias buffers count (DeepSeek stores them as weights).
    Active: parameters of every module one token's forward pass runs through."""
    ran: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, inp, out: ran.add(id(mod)))
             for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, dtype=torch.long))
    finally:
        for h in hooks:
            h.remove()
    main = [m for name, m in model.named_modules() if not name.startswith("mtp")]

    def own(m) -> int:
        n = sum(p.numel() for p in m.parameters(recurse=False))
        return n + (m.bias.numel() if hasattr(m, "update_bias") else 0)

    return sum(own(m) for m in main), sum(own(m) for m in main if id(m) in ran)


@torch.no_grad()
def kv_bytes_per_token(model: TinyLM, prompt: torch.Tensor, new_tokens: int = 8) -> float:
    """Bytes the model's own cache holds per token after a greedy generation of
    `new_tokens` tokens after `prompt` (1, T) (all layers)."""
    model.eval()
    cache = model.new_cache()
    nxt = model(prompt, cache=cache).logits[:, -1:].argmax(-1)
    for _ in range(new_tokens - 1):
        nxt = model(nxt, cache=cache).logits[:, -1:].argmax(-1)
    return sum(c.nbytes for c in cache) / (prompt.shape[1] + new_tokens - 1)


def kv_formula(cfg: TinyConfig, dtype_bytes: int = 4) -> int:
    """`course.kvcache.kv_bytes_per_token` of the same shapes (the toy caches FP32)."""
    from course import kvcache

    return kvcache.kv_bytes_per_token(hf_config(cfg), dtype_bytes)


def held_out_max_vio(model: TinyLM) -> float:
    """MaxVio of the held-out routing load, mean over MoE layers (nan for a dense model)."""
    from course import moe

    if not model.moe_layers():
        return math.nan
    load = moe.held_out_load(model, data.split()[1], model.cfg.seq_len)
    return float(moe.max_vio(load).mean())


def decode_tokens_per_step(model: TinyLM, n_prompts: int, new_tokens: int) -> float:
    """New tokens per main-model forward pass, greedy, over held-out prompts: with MTP
    speculation (course.speculative), else exactly 1."""
    if not model.cfg.mtp_depth:
        return 1.0
    from course.mtp import prompts
    from course.speculative import speculative_generate

    runs = [speculative_generate(model, p, new_tokens) for p in prompts(n_prompts, 6)]
    return sum(r.new_tokens for r in runs) / sum(r.main_steps for r in runs)


@dataclass
class Row:
    variant: str
    label: str
    notebook: str
    val_loss: float
    kv_bytes_per_token: float  # measured on the real cache
    kv_formula: int  # course.kvcache on the same shapes
    total_params: int
    active_params: int
    tokens_per_s: float  # training throughput on this machine (not deterministic)
    max_vio: float  # held-out, nan for dense
    tokens_per_step: float  # decoding with MTP speculation (1 without MTP)

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ running


_RUNS: dict[tuple, object] = {}


def train(variant: str = "full", size: str | None = None, seed: int = 0, on_step=None,
          cache: bool = True, **overrides):
    """Train one variant with `course.train.train_lm`; returns its TrainResult (cached).
    `overrides` change the full config first, e.g. `aux_alpha=0.1` or `bias_gamma=0.001`."""
    from course.train import train_lm

    size = size or current_size()
    cfg = variant_config(variant, full_config(size, **overrides))
    _, t = settings(size)
    key = (json.dumps(cfg.to_dict(), sort_keys=True), json.dumps(t, sort_keys=True), seed)
    if cache and key in _RUNS:
        return _RUNS[key]
    with one_thread():
        res = train_lm(cfg, steps=t["steps"], batch_size=t["batch"], lr=t["lr"], seed=seed,
                       warmup=t["warmup"], on_step=on_step)
    _RUNS[key] = res
    return res


def measure(variant: str = "full", size: str | None = None, seed: int = 0, on_step=None,
            cache: bool = True) -> Row:
    """Train `variant` (or reuse the cached run) and measure its ablation row."""
    size = size or current_size()
    res = train(variant, size, seed, on_step, cache)
    model, (_, t) = res.model, settings(size)
    prompt = torch.tensor([data.tokenizer().encode("the green forest has")])
    total, active = count_params(model)
    with one_thread():
        row = Row(variant, *VARIANTS[variant], val_loss=res.val_loss,
                  kv_bytes_per_token=kv_bytes_per_token(model, prompt, 8),
                  kv_formula=kv_formula(model.cfg), total_params=total, active_params=active,
                  tokens_per_s=res.tokens_per_s, max_vio=held_out_max_vio(model),
                  tokens_per_step=decode_tokens_per_step(model, t["prompts"], t["new_tokens"]))
    model.train()
    return row


# ---------------------------------------------------------------------------- generation


@dataclass
class Continuation:
    prompt: list  # words
    plain: list  # words of plain greedy decoding
    speculative: list  # words of speculative decoding (equal to plain when greedy)
    accepted: list  # per speculative word: True where an MTP draft was accepted
    main_steps: int  # main-model passes of the speculative run (prefill included)
    plain_steps: int  # main-model passes of plain decoding


def continue_text(model: TinyLM, text: str, new_tokens: int = 12,
                  progress=None) -> Continuation:
    """Continue `text` greedily, plainly and with MTP speculation; unknown words raise the
    tokenizer's ValueError sentence. `progress(done, total, text)` is called before each of
    the two decodings and at the end (see `course.widgets`)."""
    from course.model import generate

    if not text.strip():
        raise ValueError("Type a few words first, e.g. 'babe ruth played'.")
    if not 1 <= new_tokens <= 64:
        raise ValueError("Ask for between 1 and 64 new words.")
    tick = progress or (lambda done, total, text: None)
    tok = data.tokenizer()
    idx = torch.tensor([tok.encode(text)])
    tick(0, 2, f"decoding {new_tokens} words plainly")
    with one_thread():
        plain = generate(model, idx, new_tokens)[0, idx.shape[1]:].tolist()
    words = tok.words
    if not model.cfg.mtp_depth:
        spec, accepted, steps = plain, [False] * new_tokens, new_tokens
    else:
        from course.speculative import speculative_generate

        tick(1, 2, f"decoding {new_tokens} words with MTP drafts")
        with one_thread():
            run = speculative_generate(model, idx, new_tokens)
        spec, steps = run.tokens[0, idx.shape[1]:].tolist(), run.main_steps
        hits = {d.position - idx.shape[1] for d in run.drafts if d.accepted}
        accepted = [i in hits for i in range(new_tokens)]
    model.train()
    tick(2, 2, "done")
    return Continuation([words[i] for i in idx[0].tolist()], [words[i] for i in plain],
                        [words[i] for i in spec], accepted, steps, new_tokens)
