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
Measured MFU helpers at the end time a real matmul and a real training step in torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from course.configs import ModelConfig, gpu, load_config

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


def _attention_params(cfg: ModelConfig) -> int:
    d, h = cfg.hidden_size, cfg.num_heads
    if cfg.attention_kind == "mla":
        qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        q = (d * cfg.q_lora_rank + cfg.q_lora_rank * h * qk) if cfg.q_lora_rank else d * h * qk
        kv = d * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)
        kv += cfg.kv_lora_rank * h * (cfg.qk_nope_head_dim + cfg.v_head_dim)
        return q + kv + h * cfg.v_head_dim * d
    return d * cfg.head_dim * (2 * h + 2 * cfg.num_kv_heads)  # q, o + k, v


def _ffn_params_per_token(cfg: ModelConfig) -> int:
    d = cfg.hidden_size
    dense = cfg.n_dense_layers * 3 * d * cfg.intermediate_size  # SwiGLU: 3 matrices
    if not cfg.is_moe:
        return dense
    experts = cfg.experts_per_token + cfg.n_shared_experts
    per_layer = experts * 3 * d * cfg.moe_intermediate_size + d * cfg.n_routed_experts
    return dense + cfg.n_moe_layers * per_layer


def matmul_params_per_token(cfg) -> int:
    """Weights one token multiplies by in a forward pass (no embedding lookup, no norms)."""
    cfg = load_config(cfg)
    head = cfg.vocab_size * cfg.hidden_size
    return cfg.num_layers * _attention_params(cfg) + _ffn_params_per_token(cfg) + head


def _mtp_params_per_token(cfg: ModelConfig) -> int:
    # One extra block on [h; emb] (eh_proj d x 2d) plus the shared head, per MTP depth.
    d = cfg.hidden_size
    experts = cfg.experts_per_token + cfg.n_shared_experts
    block = _attention_params(cfg) + experts * 3 * d * cfg.moe_intermediate_size
    return cfg.mtp_depth * (block + d * cfg.n_routed_experts + 2 * d * d
                            + cfg.vocab_size * d)


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
    if seq_len < 1:
        raise ValueError("seq_len must be at least 1 token.")
    if cfg.attention_kind == "mla":
        d_qk, d_v = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.v_head_dim
    else:
        d_qk = d_v = cfg.head_dim
    return 2 * cfg.num_heads * (d_qk + d_v) * (seq_len / 2) * cfg.num_layers


def training_flops_per_token(cfg, seq_len: int = 4096, include_attention: bool = True,
                             include_mtp: bool = False) -> FlopsPerToken:
    """Training (forward + backward) FLOPs per token for a model config."""
    cfg = load_config(cfg)
    n = matmul_params_per_token(cfg) + (_mtp_params_per_token(cfg) if include_mtp else 0)
    attn = 3 * attention_flops_per_token(cfg, seq_len) if include_attention else 0.0
    return FlopsPerToken(n, 6.0 * n, attn)


def training_flops(cfg, tokens: float, seq_len: int = 4096, **kw) -> float:
    """Total training FLOPs for `tokens` tokens."""
    if tokens <= 0:
        raise ValueError("tokens must be positive.")
    return training_flops_per_token(cfg, seq_len, **kw).total * tokens


# ------------------------------------------------------------------ time and money


def training_seconds(flops: float, n_gpus: int, peak_tflops: float, mfu: float) -> float:
    """Wall-clock seconds = FLOPs / (GPUs x peak x MFU)."""
    if n_gpus < 1:
        raise ValueError("You need at least one GPU.")
    if not 0 < mfu <= 1:
        raise ValueError("MFU must be between 0 and 1 (a fraction of the peak).")
    if peak_tflops <= 0 or flops <= 0:
        raise ValueError("FLOPs and peak TFLOP/s must be positive.")
    return flops / (n_gpus * peak_tflops * 1e12 * mfu)


def implied_mfu(flops: float, gpu_hours: float, peak_tflops: float) -> float:
    """The MFU a run must have had: achieved FLOP/s per GPU over the peak."""
    return achieved_tflops(flops, gpu_hours) / peak_tflops


def achieved_tflops(flops: float, gpu_hours: float) -> float:
    """Average useful TFLOP/s per GPU of a run that spent `gpu_hours`."""
    if gpu_hours <= 0:
        raise ValueError("gpu_hours must be positive.")
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
    if active_params <= 0:
        raise ValueError("active_params must be positive.")
    if price_per_hour < 0:
        raise ValueError("The price per GPU-hour cannot be negative.")
    per_token = 6.0 * active_params if flops_per_token is None else flops_per_token
    flops = per_token * tokens
    if tokens <= 0:
        raise ValueError("tokens must be positive.")
    peak = gpu(gpu_name).peak_tflops(precision)
    return Estimate(flops, training_seconds(flops, n_gpus, peak, mfu), int(n_gpus),
                    price_per_hour)


def days_vs_gpus(active_params: float, tokens: float, gpu_counts, **kw) -> list[float]:
    """Training days for each GPU count in `gpu_counts` (same assumptions otherwise)."""
    return [estimate(active_params, tokens, n_gpus=int(n), **kw).days for n in gpu_counts]


def throughput_for(flops: float, n_gpus: int, seconds: float) -> float:
    """TFLOP/s per GPU needed to do `flops` on `n_gpus` in `seconds`."""
    if n_gpus < 1 or seconds <= 0:
        raise ValueError("n_gpus must be ≥ 1 and seconds positive.")
    return flops / (n_gpus * seconds) / 1e12


# ------------------------------------------------------------- measured on this machine


def _sync(dev) -> None:
    import torch

    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn, dev, repeats: int) -> float:
    fn()  # warm-up: allocations, kernel selection
    _sync(dev)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]  # median: robust to a noisy shared machine


def measure_matmul_tflops(n: int, dtype=None, device=None, repeats: int = 10) -> float:
    """Achieved TFLOP/s of an (n, n) @ (n, n) matmul: 2 n^3 FLOPs over its median time."""
    import torch

    if n < 1:
        raise ValueError("n must be positive.")
    dev = torch.device(device or "cpu")
    dtype = dtype or torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev, dtype)
    b = torch.randn(n, n, generator=g).to(dev, dtype)
    return 2 * n**3 / _best_seconds(lambda: a @ b, dev, repeats) / 1e12


def mlp_layers(d_model: int, d_ff: int, n_layers: int):
    """A small residual MLP stack (Linear-GELU-Linear per layer) for the measured MFU step."""
    import torch

    if min(d_model, d_ff, n_layers) < 1:
        raise ValueError("d_model, d_ff and n_layers must be positive.")
    blocks = [torch.nn.Sequential(torch.nn.Linear(d_model, d_ff, bias=False), torch.nn.GELU(),
                                  torch.nn.Linear(d_ff, d_model, bias=False))
              for _ in range(n_layers)]
    return torch.nn.ModuleList(blocks)


def mlp_step_flops(d_model: int, d_ff: int, n_layers: int, tokens: int) -> int:
    """Matmul FLOPs of one training step of `mlp_layers`: forward, backward, no optimizer.

    Each weight W costs 2·T·|W| forward, 2·T·|W| for its gradient and 2·T·|W| for the
    input gradient, so 6·T·|W| -- except the first layer: its input needs no gradient.
    """
    per_layer = 2 * d_model * d_ff
    first = d_model * d_ff
    return 6 * tokens * per_layer * n_layers - 2 * tokens * first


def _mlp_step(blocks, x, opt) -> None:
    h = x
    for block in blocks:
        h = h + block(h)  # residual, as in a transformer
    loss = h.pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@dataclass(frozen=True)
class MeasuredStep:
    seconds: float
    flops: int
    peak_tflops: float  # the measured matmul peak it is compared with

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def mfu(self) -> float:
        return self.tflops / self.peak_tflops


def measure_mlp_step(d_model: int, d_ff: int, n_layers: int, tokens: int,
                     peak_tflops: float, dtype=None, device=None,
                     repeats: int = 5) -> MeasuredStep:
    """Time one real training step of the MLP stack; MFU against `peak_tflops`."""
    import torch

    dev = torch.device(device or "cpu")
    torch.manual_seed(0)
    blocks = mlp_layers(d_model, d_ff, n_layers).to(dev, dtype or torch.float32)
    x = torch.randn(tokens, d_model, device=dev, dtype=dtype or torch.float32)
    opt = torch.optim.SGD(blocks.parameters(), lr=1e-3)
    seconds = _best_seconds(lambda: _mlp_step(blocks, x, opt), dev, repeats)
    return MeasuredStep(seconds, mlp_step_flops(d_model, d_ff, n_layers, tokens), peak_tflops)


def datasheet_gpu(device_name: str | None) -> str | None:
    """The `configs.GPUS` key for a CUDA device name such as 'NVIDIA H100 80GB HBM3'."""
    if not device_name:
        return None
    for key in ("H800", "H200", "H100", "A100"):
        if key in device_name:
            return "H100 SXM" if key == "H100" else key
    return None


# ------------------------------------------------- MFU vs HFU, and where the time goes

#: ISCA '25 (arXiv:2505.09343) Table 4, DeepSeek-V3 on 2,048 H800s: MFU with causal
#: attention FLOPs counted as they are computed (half the score matrix), and non-causal.
ISCA25_MFU = {"causal": 0.3894, "non_causal": 0.4373}


def mfu_against_roofline(tflops: float, gpu_name: str = "H800",
                         precision: str = "bf16") -> float:
    """MFU = achieved useful TFLOP/s over the roofline's flat roof (the dense peak)."""
    from course import roofline

    if tflops < 0:
        raise ValueError(f"Achieved TFLOP/s cannot be negative (got {tflops}).")
    return tflops / roofline.machine(gpu_name, precision).tflops


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
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, not {recompute!r}.")
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
    if not 0 <= mfu <= 1:
        raise ValueError(f"MFU must be between 0 and 1, not {mfu}.")
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
    if not 0 <= bubble_share < 1:
        raise ValueError(f"bubble_share must be in [0, 1), not {bubble_share}.")
    if not 0 < roofline_ceiling <= 1:
        raise ValueError(f"roofline_ceiling must be in (0, 1], not {roofline_ceiling}.")
    h = hfu(mfu, cfg, seq_len, recompute)
    memory_bound = mfu / roofline_ceiling - mfu
    rest = 1 - h - memory_bound - bubble_share
    if rest < 0:
        raise ValueError(f"MFU {mfu:.0%} with {recompute} recomputation and a "
                         f"{bubble_share:.0%} bubble leaves no time for anything else.")
    return {"model FLOPs at peak": mfu, "recomputation at peak": h - mfu,
            "memory-bound work (roofline)": memory_bound, "pipeline bubble": bubble_share,
            "everything else": rest}
