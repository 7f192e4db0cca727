"""The whole bill in one place: memory (course.memory, course.parallel), time
(course.compute) and communication (course.parallel bytes, course.comms links) for a model,
a cluster, a layout and a precision recipe.

Step time = compute + communication, or max(compute, communication) when communication is
overlapped with computation (what DualPipe achieves). Compute runs at `mfu` of the dense
peak of `precision`. Communication: the bytes course.parallel counts per GPU per step,
tensor-parallel traffic over NVLink and everything else over the GPU's own InfiniBand link
(conservative: some DP and EP traffic stays inside a node; no node-deduplication of
expert traffic). Pipeline bubbles are left out of `step_s()` unless asked for:
`step_s(bubble=True)` divides by (1 - the idle share) of a course.pipeline simulation of
`schedule` at the layout's PP and the step's micro-batches. Serving memory: the weights
plus the KV cache of one million tokens (course.kvcache).

`training_gains` and `decode_gains` take DeepSeek-V3 apart: each switches one of MoE, FP8
and MLA off alone and says how much slower training or a memory-bound decode step gets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from course import compute, kvcache, pipeline, validate
from course.activations import RECOMPUTE
from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S, gpu, load_config
from course.kvcache import kv_bytes_per_token
from course.memory import param_count, recipe
from course.parallel import DEEPSEEK_V3_LAYOUT, Layout, comm_per_step, per_gpu_memory

#: DeepSeek-V3's measured MFU, ISCA '25 (arXiv:2505.09343) Table 4: 38.94% of the H800's
#: dense BF16 peak with causal attention FLOPs. The planner runs V3's matmuls at the dense
#: FP8 peak, so the same achieved TFLOP/s is this fraction of it (about 0.195). It comes
#: from DeepSeek's measurement of the cluster, not from the GPU-hour bill.
V3_MEASURED_MFU_OF_FP8 = (compute.ISCA25_MFU["causal"] * gpu("H800").peak_tflops("bf16")
                          / gpu("H800").peak_tflops("fp8"))


@dataclass(frozen=True)
class Setup:
    """Everything the planner needs; the presets below are two real runs."""
    model: str = "deepseek-v3"
    gpu_name: str = "H800"
    layout: Layout = DEEPSEEK_V3_LAYOUT
    recipe: str = "deepseek-fp8"  # a course.memory recipe
    precision: str = "fp8"  # which dense peak the matmuls run at
    mfu: float = V3_MEASURED_MFU_OF_FP8  # of that peak, for the compute alone
    tokens: float = 14.8e12
    batch_tokens: float = 15360 * 4096  # V3 report 4.2: final batch 15360 x 4K sequence
    seq_len: int = 4096
    micro_batch: int = 1
    recompute: str = "selective"  # V3 report 3.2.3: recompute RMSNorm and MLA up-projections
    price_per_hour: float = 2.0
    nvlink_gb_s: float = DEEPSEEK_NVLINK_GB_S
    ib_gb_s: float = DEEPSEEK_IB_GB_S
    schedule: str = "dualpipe"  # a course.pipeline schedule, for step_s(bubble=True)


PRESETS = {
    # DeepSeek-V3 report 3.1-3.3 and 4.2, Table 1; MFU measured (ISCA '25 Table 4).
    "DeepSeek-V3": Setup(),
    # Llama 3.1 405B: 16K H100s (Llama 3 paper 3.3.1); the layout TP8 x PP16 x DP128 and the
    # 16M-token batch are the paper's 16K-GPU setting as we read it (not stated as a table); BF16
    # mixed precision at 40% MFU; sequence parallelism, ZeRO-1 and selective recomputation are
    # our assumptions, not published. Schedule: 1F1B (Llama 3 used an interleaved variant
    # the course does not simulate, so its bubble here is an upper bound).
    "Llama 3.1 405B": Setup(model="llama-3.1-405b", gpu_name="H100 SXM", schedule="1f1b",
                            layout=Layout(dp=128, tp=8, pp=16, sp=True, zero=1),
                            recipe="bf16-mixed", recompute="selective",
                            precision="bf16", mfu=0.4, tokens=15.6e12,
                            batch_tokens=2048 * 8192, seq_len=8192),
}


@dataclass(frozen=True)
class Plan:
    setup: Setup
    memory: dict  # bytes per GPU by part
    gpu_bytes: float
    compute_s: float  # per step
    comm_s: float  # per step
    steps: float
    flops_per_token: float
    serving_bytes: dict  # weights + KV cache of 1M tokens
    microbatches: int = 1  # per data-parallel replica per step

    @property
    def per_gpu_bytes(self) -> float:
        return sum(self.memory.values())

    @property
    def fits(self) -> bool:
        return self.per_gpu_bytes <= self.gpu_bytes

    def bubble_fraction(self) -> float:
        """Idle share of a step in the pipeline schedule: course.pipeline.simulate at the
        layout's PP and this step's micro-batches, with notebook 07's chunk times
        (`pipeline.CHUNK_TIMES`; 0 without PP)."""
        if self.setup.layout.pp == 1:
            return 0.0
        return pipeline.simulate(self.setup.schedule, self.setup.layout.pp, self.microbatches,
                                 **pipeline.CHUNK_TIMES).bubble_fraction

    def step_s(self, overlap: bool = True, bubble: bool = False) -> float:
        busy = max(self.compute_s, self.comm_s) if overlap else self.compute_s + self.comm_s
        return busy / (1 - self.bubble_fraction()) if bubble else busy

    def days(self, overlap: bool = True, bubble: bool = False) -> float:
        return self.steps * self.step_s(overlap, bubble) / compute.SECONDS_PER_DAY

    def gpu_hours(self, overlap: bool = True, bubble: bool = False) -> float:
        return self.steps * self.step_s(overlap, bubble) * self.setup.layout.world / 3600

    def dollars(self, overlap: bool = True, bubble: bool = False) -> float:
        return self.gpu_hours(overlap, bubble) * self.setup.price_per_hour

    def tokens_per_dollar(self, overlap: bool = True, bubble: bool = False) -> float:
        return self.setup.tokens / self.dollars(overlap, bubble)


def _microbatches(s: Setup) -> int:
    per_replica = s.batch_tokens / (s.layout.dp * s.seq_len * s.micro_batch)
    if per_replica < 1:
        raise ValueError("The batch is smaller than one micro-batch per data-parallel replica.")
    return max(1, round(per_replica))


def _over_nvlink(kind: str) -> bool:
    """Tensor parallelism, and an expert group that fits in one node, stay on NVLink."""
    return kind.startswith("TP") or "(NVLink)" in kind


def _comm_seconds(s: Setup, bytes_by_kind: dict) -> float:
    total = 0.0
    for kind, n in bytes_by_kind.items():
        bw = s.nvlink_gb_s if _over_nvlink(kind) else s.ib_gb_s
        total += n / (bw * 1e9)
    return total


def _checked(s: Setup) -> Setup:
    """The setup with every number checked (ValueError naming the field otherwise)."""
    if not isinstance(s.layout, Layout):
        raise ValueError(f"layout must be a parallel.Layout, not {s.layout!r}.")
    gpu(s.gpu_name)
    recipe(s.recipe)
    validate.choice("precision", s.precision, ("bf16", "fp8"))
    validate.choice("recompute", s.recompute, RECOMPUTE)
    validate.choice("schedule", s.schedule, pipeline.SCHEDULES)
    return replace(
        s, mfu=validate.fraction("MFU", s.mfu, zero=False),
        tokens=validate.positive("tokens", s.tokens),
        batch_tokens=validate.positive("batch_tokens", s.batch_tokens),
        seq_len=validate.positive_int("seq_len", s.seq_len),
        micro_batch=validate.positive_int("micro_batch", s.micro_batch),
        price_per_hour=validate.positive("price_per_hour", s.price_per_hour),
        nvlink_gb_s=validate.positive("nvlink_gb_s", s.nvlink_gb_s),
        ib_gb_s=validate.positive("ib_gb_s", s.ib_gb_s))


def plan(setup: Setup | None = None, **changes) -> Plan:
    """Memory, step time, days and dollars for a setup (a preset with `changes` applied)."""
    if setup is not None and not isinstance(setup, Setup):
        raise ValueError(f"setup must be a planner.Setup (or None for DeepSeek-V3's), not "
                         f"{setup!r}.")
    for key in changes:
        validate.choice("setting", key, Setup.__dataclass_fields__)
    s = _checked(replace(setup or PRESETS["DeepSeek-V3"], **changes))
    cfg = load_config(s.model)
    spec = gpu(s.gpu_name)
    peak = spec.peak_tflops(s.precision)
    mb = _microbatches(s)
    memory = per_gpu_memory(cfg, s.layout, s.recipe, seq_len=s.seq_len,
                            micro_batch=s.micro_batch, recompute=s.recompute,
                            microbatches=mb)
    comm = comm_per_step(cfg, s.layout, s.recipe, s.seq_len, s.micro_batch, mb)
    fpt = compute.training_flops_per_token(cfg, seq_len=s.seq_len).total
    compute_s = compute.training_seconds(fpt * s.batch_tokens, s.layout.world, peak, s.mfu)
    serving = {"weights (FP8)" if s.precision == "fp8" else "weights (BF16)":
               param_count(cfg).total * (1 if s.precision == "fp8" else 2),
               "KV cache, 1M tokens (BF16)": kv_bytes_per_token(cfg) * 1e6}
    return Plan(s, memory, spec.memory_gb * 1e9, compute_s, _comm_seconds(s, comm),
                s.tokens / s.batch_tokens, fpt, serving, mb)


def serving_tokens_per_dollar(model: str, gpu_name: str = "H800", precision: str = "fp8",
                              mfu: float = 0.4, price_per_hour: float = 2.0) -> float:
    """Upper bound on generated tokens per dollar when decoding is compute-bound:
    2 FLOPs per active matmul weight per token at `mfu` of the dense peak (attention over
    the cache, memory bandwidth and batching limits are left out)."""
    mfu = validate.fraction("MFU", mfu, zero=False)
    price_per_hour = validate.positive("price_per_hour", price_per_hour)
    flops = 2 * compute.matmul_params_per_token(model)
    per_gpu_s = gpu(gpu_name).peak_tflops(precision) * 1e12 * mfu / flops
    return per_gpu_s * 3600 / price_per_hour


def _all_experts(cfg) -> float:
    """Parameters a step touches when every routed expert works (a dense model of the same
    total size): weights_touched with a batch so large that every expert is picked."""
    return kvcache.weights_touched(cfg, 10**9) if cfg.is_moe else kvcache.weights_touched(cfg, 1)


def training_gains(model: str = "deepseek-v3", seq_len: int = 4096, gpu_name: str = "H800",
                   head_dim: int = 128) -> dict:
    """How many times more training compute per token DeepSeek-V3 would need with each
    factor switched off alone (at the same MFU):

    * MoE: every routed expert active, 6 FLOPs per extra weight per token;
    * FP8: the dense BF16 peak in place of the dense FP8 peak (a ceiling: no published
      BF16 run of V3 measures the MFU it would have reached);
    * MLA: plain multi-head attention with the same heads (Q, K, V and O projections of
      d x n_h x head_dim each; scores and mixing over head_dim-wide keys and values).
    """
    cfg = load_config(model)
    if cfg.attention_kind != "mla" or not cfg.is_moe:
        raise ValueError(f"training_gains takes apart an MLA + MoE model, not {cfg.name!r}.")
    base = compute.training_flops_per_token(cfg, seq_len=seq_len).total
    moe = base + 6 * (_all_experts(cfg) - kvcache.weights_touched(cfg, 1))
    mha_params = 4 * cfg.hidden_size * cfg.num_heads * head_dim
    qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
    attn = compute.attention_flops_per_token(cfg, seq_len)
    mla = (base + 6 * cfg.num_layers * (mha_params - compute.attention_matmul_params(cfg))
           + attn * (2 * head_dim / (qk + cfg.v_head_dim) - 1))
    spec = gpu(gpu_name)
    return {"MoE": moe / base, "FP8": spec.peak_tflops("fp8") / spec.peak_tflops("bf16"),
            "MLA": mla / base}


def _decode_seconds(cfg, context: int, batch: int, gpu_name: str, moe: bool = True,
                    fp8: bool = True, mla: bool = True) -> float:
    wb = 1 if fp8 else 2
    cost = kvcache.decode_step_cost(cfg, context, batch, weight_bytes=wb)
    if not moe:
        n = _all_experts(cfg)
        cost = replace(cost, weight_flops=2 * n * batch, weight_bytes=n * wb)
    if not mla:
        cost = replace(cost, cache_bytes=batch * context * kvcache.mha_bytes_per_token(cfg),
                       attention_flops=batch * kvcache.attention_flops_per_token(
                           cfg, context, "mha"))
    return kvcache.roofline_seconds(cost, gpu_name, "fp8" if fp8 else "bf16")["seconds"]


def decode_gains(model: str = "deepseek-v3", context: int = 4096, batch: int = 32,
                 gpu_name: str = "H800") -> dict:
    """How many times slower one decode step (batch sequences, context tokens cached each,
    on the course.kvcache roofline of one GPU) gets with each factor switched off alone:
    MoE (every expert's weights read), FP8 (BF16 weights: twice the bytes), MLA (the same
    model's multi-head cache, 2 n_h d_h per layer). Also "bound": what limits the step."""
    cfg = load_config(model)
    if cfg.attention_kind != "mla" or not cfg.is_moe:
        raise ValueError(f"decode_gains takes apart an MLA + MoE model, not {cfg.name!r}.")
    base = _decode_seconds(cfg, context, batch, gpu_name)
    wb_cost = kvcache.decode_step_cost(cfg, context, batch, weight_bytes=1)
    return {"MoE": _decode_seconds(cfg, context, batch, gpu_name, moe=False) / base,
            "FP8": _decode_seconds(cfg, context, batch, gpu_name, fp8=False) / base,
            "MLA": _decode_seconds(cfg, context, batch, gpu_name, mla=False) / base,
            "bound": kvcache.roofline_seconds(wb_cost, gpu_name, "fp8")["bound"]}
