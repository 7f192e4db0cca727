"""How long training takes: FLOPs from a config, time from GPUs x peak x MFU, and the bill.

Training FLOPs per token = 3 x forward FLOPs (the backward pass costs about twice the
forward: one matmul for input gradients, one for weight gradients). The forward counts

* matmuls: 2 FLOPs per weight a token multiplies by (attention projections, the FFN or the
  K_r routed + shared experts, the router, the output head). The input embedding is a
  lookup, not a matmul, and norms are negligible, so neither is counted. This is the
  "6 N D" rule with N = active matmul weights (36.6 B for DeepSeek-V3,
  summed from the shapes in DeepSeek-V3's `inference/model.py` and `config_671B.json`);
* attention scores and values: 2 n_h (d_qk + d_v) FLOPs per attended key, and a causal
  token attends to seq_len / 2 keys on average. For MLA in training d_qk = d_h + d_h^R
  = 192 and d_v = 128 (keys and values are expanded from the latent, the non-absorbed path).

Left out: the MTP module (about +4% for DeepSeek-V3, `include_mtp=True` adds it),
recomputation, softmax and elementwise work. With seq_len 4096 this gives ~250 GFLOPs per
token for DeepSeek-V3, the figure of the ISCA '25 paper
(Zhao et al., arXiv:2505.09343, its training-compute table).
Parameters come from `course.params` (the one place for parameter formulas); the measured
MFU helpers (a real matmul and a real training step in torch) live in `course.measured`
and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from course import params
from course import validate as check
from course.configs import ModelConfig, gpu, load_config
from course.measured import (  # noqa: F401  (re-exported: notebook 05, course.realistic)
    MeasuredStep,
    _mlp_step,
    datasheet_gpu,
    measure_matmul_tflops,
    measure_mlp_step,
    mlp_layers,
    mlp_step_flops,
)

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY

# DeepSeek-V3 technical report (arXiv:2412.19437) section 1, Table 1 and section 3.1.
DEEPSEEK_V3 = dict(tokens=14.8e12, pretrain_gpu_hours=2.664e6, context_gpu_hours=0.119e6,
                   post_gpu_hours=0.005e6, total_gpu_hours=2.788e6, price_per_hour=2.0,
                   dollars=5.576e6, gpu_hours_per_trillion=180e3, days_per_trillion=3.7,
                   n_gpus=2048, gpu="H800", seq_len=4096)
# Llama 3.1 model card (meta-llama/llama-models, MODEL_CARD.md) and the Llama 3 paper 3.3.1.
LLAMA_31_405B = dict(tokens=15.6e12, total_gpu_hours=30.84e6, flops=3.8e25, n_gpus=16384,
                     gpu="H100 SXM", seq_len=8192)
# ISCA '25 (arXiv:2505.09343) Table: training GFLOPs per token at 4K sequence length.
ISCA25_GFLOPS_PER_TOKEN = {"deepseek-v3": 250.0, "llama-3.1-405b": 2448.0}


def attention_matmul_params(cfg) -> int:
    """Weights of one attention block a token multiplies by: `course.params.attention_params`
    without MLA's two inner norms (elementwise scales, not matmuls)."""
    cfg = load_config(cfg)
    norms = (cfg.q_lora_rank or 0) + cfg.kv_lora_rank if cfg.attention_kind == "mla" else 0
    return params.attention_params(cfg) - norms




def _moe_matmul_params(cfg: ModelConfig) -> int:
    """One MoE layer, per token: K_r routed + shared SwiGLU experts and the router's d x N_r
    matrix (its balancing bias is an add, not a matmul)."""
    experts = cfg.experts_per_token + cfg.n_shared_experts
    ffn = params.ffn_params(cfg.hidden_size, cfg.moe_intermediate_size)
    return experts * ffn + cfg.hidden_size * cfg.n_routed_experts


def matmul_params_per_token(cfg) -> int:
    """Weights one token multiplies by in a forward pass (no embedding lookup, no norms)."""
    cfg = load_config(cfg)
    d = cfg.hidden_size
    dense = cfg.n_dense_layers * params.ffn_params(d, cfg.intermediate_size)
    moe = cfg.n_moe_layers * _moe_matmul_params(cfg) if cfg.is_moe else 0
    head = cfg.vocab_size * d
    return cfg.num_layers * attention_matmul_params(cfg) + dense + moe + head


def _mtp_params_per_token(cfg: ModelConfig) -> int:
    # One extra block on [h; emb] (eh_proj d x 2d) plus the shared head, per MTP depth.
    d = cfg.hidden_size
    block = attention_matmul_params(cfg) + _moe_matmul_params(cfg)
    return cfg.mtp_depth * (block + 2 * d * d + cfg.vocab_size * d)


@dataclass(frozen=True)
class FlopsPerToken:
    """Training FLOPs per token, split into the 6·N part and the attention part."""
    matmul_params: int
    matmul: float  # 6 * matmul_params
    attention: float  # 3 * forward attention-score FLOPs

    @property
    def total(self) -> float:
        return self.matmul + self.attention


def attention_flops_per_token(cfg, seq_len: int) -> float:
    """Forward FLOPs of QK^T and AV for one token, all layers, causal (seq_len/2 keys)."""
    cfg = load_config(cfg)
    seq_len = check.positive_int("seq_len", seq_len)
    if cfg.attention_kind == "mla":
        d_qk, d_v = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.v_head_dim
    else:
        d_qk = d_v = cfg.head_dim
    return 2 * cfg.num_heads * (d_qk + d_v) * (seq_len / 2) * cfg.num_layers


def training_flops_per_token(cfg, seq_len: int = 4096, include_attention: bool = True,
                             include_mtp: bool = False) -> FlopsPerToken:
    """Training (forward + backward) FLOPs per token for a model config."""
    cfg = load_config(cfg)
    seq_len = check.positive_int("seq_len", seq_len)
    n = matmul_params_per_token(cfg) + (_mtp_params_per_token(cfg) if include_mtp else 0)
    attn = 3 * attention_flops_per_token(cfg, seq_len) if include_attention else 0.0
    return FlopsPerToken(n, 6.0 * n, attn)


def training_flops(cfg, tokens: float, seq_len: int = 4096, **kw) -> float:
    """Total training FLOPs for `tokens` tokens."""
    tokens = check.positive("tokens", tokens)
    return training_flops_per_token(cfg, seq_len, **kw).total * tokens


def fp8_training_flops_share(cfg, seq_len: int = 4096) -> dict[str, float]:
    """Training FLOPs per token by the precision DeepSeek-V3's recipe runs them in (V3
    report §3.3.1): every linear layer's three GEMMs in FP8, except the output head and the
    MoE router (gating), which stay in BF16 with the attention score and value products
    (the "attention operators"). Embedding lookups and norms do no matmul work."""
    cfg = load_config(cfg)
    per_token = training_flops_per_token(cfg, seq_len)
    router = cfg.n_moe_layers * cfg.hidden_size * cfg.n_routed_experts if cfg.is_moe else 0
    higher_params = cfg.vocab_size * cfg.hidden_size + router
    higher = 6.0 * higher_params + per_token.attention
    fp8 = per_token.total - higher
    return {"fp8": fp8, "bf16": higher, "fp8_share": fp8 / per_token.total}


# ------------------------------------------------------------------ time and money


def training_seconds(flops: float, n_gpus: int, peak_tflops: float, mfu: float) -> float:
    """Wall-clock seconds = FLOPs / (GPUs x peak x MFU)."""
    n_gpus = check.integer("n_gpus (the number of GPUs)", n_gpus, 1)
    mfu = check.fraction("MFU (a fraction of the peak)", mfu, zero=False)
    flops, peak_tflops = check.positive("flops", flops), check.positive("peak_tflops", peak_tflops)
    return flops / (n_gpus * peak_tflops * 1e12 * mfu)


def implied_mfu(flops: float, gpu_hours: float, peak_tflops: float) -> float:
    """The MFU a run must have had: achieved FLOP/s per GPU over the peak."""
    return achieved_tflops(flops, gpu_hours) / check.positive("peak_tflops", peak_tflops)


def wall_clock_days(gpu_hours: float, n_gpus: int) -> float:
    """Days of wall clock for a job of `gpu_hours` spread evenly over `n_gpus` GPUs."""
    gpu_hours = check.positive("gpu_hours", gpu_hours)
    n_gpus = check.integer("n_gpus (the number of GPUs)", n_gpus, 1)
    return gpu_hours * 3600 / n_gpus / SECONDS_PER_DAY


def achieved_tflops(flops: float, gpu_hours: float) -> float:
    """Average useful TFLOP/s per GPU of a run that spent `gpu_hours`."""
    flops, gpu_hours = check.positive("flops", flops), check.positive("gpu_hours", gpu_hours)
    return flops / (gpu_hours * 3600) / 1e12


@dataclass(frozen=True)
class Estimate:
    flops: float
    seconds: float
    n_gpus: int
    price_per_hour: float

    @property
    def days(self) -> float:
        return self.seconds / SECONDS_PER_DAY

    @property
    def years(self) -> float:
        return self.seconds / SECONDS_PER_YEAR

    @property
    def gpu_hours(self) -> float:
        return self.seconds * self.n_gpus / 3600

    @property
    def dollars(self) -> float:
        return self.gpu_hours * self.price_per_hour


def estimate(active_params: float, tokens: float, gpu_name: str = "H800", n_gpus: int = 2048,
             precision: str = "bf16", mfu: float = 0.4, price_per_hour: float = 2.0,
             flops_per_token: float | None = None) -> Estimate:
    """Days, GPU-hours and dollars to train on `tokens` (6·N·D unless `flops_per_token`)."""
    active_params = check.positive("active_params", active_params)
    tokens = check.positive("tokens", tokens)
    price_per_hour = check.non_negative("price_per_hour (the price per GPU-hour)",
                                        price_per_hour)
    n_gpus = check.integer("n_gpus (the number of GPUs)", n_gpus, 1)
    per_token = (6.0 * active_params if flops_per_token is None
                 else check.positive("flops_per_token", flops_per_token))
    flops = per_token * tokens
    peak = gpu(gpu_name).peak_tflops(precision)
    return Estimate(flops, training_seconds(flops, n_gpus, peak, mfu), n_gpus, price_per_hour)


def training_estimate(cfg, tokens: float, seq_len: int = 4096, gpu_name: str = "H800",
                      n_gpus: int = 2048, precision: str = "bf16", mfu: float = 0.4,
                      price_per_hour: float = 2.0) -> Estimate:
    """`estimate` for a model config, its FLOPs from `training_flops_per_token` (6·N plus
    attention at `seq_len`): the one count notebook 05 derives and its widget uses."""
    per_token = training_flops_per_token(cfg, seq_len)
    return estimate(per_token.matmul_params, tokens, gpu_name, n_gpus, precision, mfu,
                    price_per_hour, flops_per_token=per_token.total)


def days_vs_gpus(active_params: float, tokens: float, gpu_counts, **kw) -> list[float]:
    """Training days for each GPU count in `gpu_counts` (same assumptions otherwise)."""
    if isinstance(gpu_counts, (str, bytes)) or not hasattr(gpu_counts, "__iter__"):
        raise ValueError(f"gpu_counts must be a list of GPU counts, not {gpu_counts!r:.40}.")
    return [estimate(active_params, tokens, n_gpus=n, **kw).days for n in gpu_counts]


def throughput_for(flops: float, n_gpus: int, seconds: float) -> float:
    """TFLOP/s per GPU needed to do `flops` on `n_gpus` in `seconds`."""
    flops = check.non_negative("flops", flops)
    n_gpus = check.integer("n_gpus (the number of GPUs)", n_gpus, 1)
    seconds = check.positive("seconds", seconds)
    return flops / (n_gpus * seconds) / 1e12


def mfu_needed(flops: float, n_gpus: int, seconds: float, gpu_name: str = "H800",
               precision: str = "bf16") -> float:
    """The MFU at which `flops` take `seconds` on `n_gpus` GPUs (the inverse of
    `training_seconds`)."""
    return throughput_for(flops, n_gpus, seconds) / gpu(gpu_name).peak_tflops(precision)


# ------------------------------------------------- MFU vs HFU, and where the time goes

#: ISCA '25 (arXiv:2505.09343) Table 4, DeepSeek-V3 on 2,048 H800s: MFU with causal
#: attention FLOPs counted as they are computed (half the score matrix), and non-causal.
ISCA25_MFU = {"causal": 0.3894, "non_causal": 0.4373}


def mfu_against_roofline(tflops: float, gpu_name: str = "H800",
                         precision: str = "bf16") -> float:
    """MFU = achieved useful TFLOP/s over the roofline's flat roof: the GPU's dense peak
    (`roofline.machine(gpu_name).tflops`; a measured `roofline.Machine` is used as is)."""
    tflops = check.non_negative("tflops (achieved TFLOP/s)", tflops)
    peak = getattr(gpu_name, "tflops", None)  # a roofline.Machine (no import: no cycle)
    return tflops / (peak if peak is not None else gpu(gpu_name).peak_tflops(precision))


def recompute_flops_per_token(cfg, seq_len: int = 4096, recompute: str = "selective") -> float:
    """Forward FLOPs per token computed a second time in the backward pass, for the
    recomputation options of `course.activations` (notebook 03):

    * "none": nothing;
    * "selective" (DeepSeek-V3, report 3.2.3): RMSNorm and SwiGLU outputs (elementwise,
      counted as 0 matmul FLOPs) and MLA's up-projections of q, k and v: 2 FLOPs per
      up-projection weight per token (0 for non-MLA models);
    * "full": the whole forward again, one third of the training FLOPs.
    """
    from course.activations import RECOMPUTE

    cfg = load_config(cfg)
    if not isinstance(recompute, str) or recompute not in RECOMPUTE:  # wording: test_compute
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, "
                         f"not {recompute!r:.40}.")
    seq_len = check.positive_int("seq_len", seq_len)
    if recompute == "none":
        return 0.0
    if recompute == "full":
        return training_flops_per_token(cfg, seq_len).total / 3
    if cfg.attention_kind != "mla":
        return 0.0
    h, qk = cfg.num_heads, cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
    q_up = (cfg.q_lora_rank or 0) * h * qk  # W^UQ (with W^QR); 0 without a q latent
    kv_up = cfg.kv_lora_rank * h * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # W^UK, W^UV
    return 2.0 * (q_up + kv_up) * cfg.num_layers


def hfu(mfu: float, cfg, seq_len: int = 4096, recompute: str = "selective") -> float:
    """Hardware FLOPs utilisation: like MFU but counting every FLOP the GPU executes,
    recomputation included, so HFU = MFU x (model + recomputed) / model FLOPs >= MFU."""
    mfu = check.fraction("MFU", mfu)
    model = training_flops_per_token(cfg, seq_len).total
    return mfu * (model + recompute_flops_per_token(cfg, seq_len, recompute)) / model


def time_budget(mfu: float, cfg, seq_len: int = 4096, recompute: str = "selective",
                bubble_share: float = 0.0, roofline_ceiling: float = 1.0) -> dict:
    """Where a step's time goes, as shares that sum to 1, at a measured `mfu`:

    * "model FLOPs at peak": the MFU itself;
    * "recomputation at peak": HFU - MFU;
    * "memory-bound work (roofline)": what even perfect kernels lose to operations below
      the ridge, given the best MFU the roofline allows (`roofline.roofline_mfu`):
      the model's FLOPs take mfu / ceiling of the step at the roofline, not mfu;
    * "pipeline bubble": `bubble_share` (from `course.pipeline.simulate`);
    * "everything else": the rest -- exposed communication, kernels below the roofline
      (real kernels are not perfect), load imbalance, FP8 scaling work, stragglers.
    """
    bubble_share = check.fraction("bubble_share", bubble_share)
    if bubble_share == 1:
        raise ValueError("bubble_share must be below 1: a step that is all bubble does no work.")
    roofline_ceiling = check.fraction("roofline_ceiling", roofline_ceiling, zero=False)
    h = hfu(mfu, cfg, seq_len, recompute)
    memory_bound = mfu / roofline_ceiling - mfu
    rest = 1 - h - memory_bound - bubble_share
    if rest < 0:
        raise ValueError(f"MFU {mfu:.0%} with {recompute} recomputation and a "
                         f"{bubble_share:.0%} bubble leaves no time for anything else.")
    return {"model FLOPs at peak": mfu, "recomputation at peak": h - mfu,
            "memory-bound work (roofline)": memory_bound, "pipeline bubble": bubble_share,
            "everything else": rest}
