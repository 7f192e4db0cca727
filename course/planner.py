"""The whole bill in one place: memory (course.memory, course.parallel), time
(course.compute) and communication (course.parallel bytes, course.comms links) for a model,
a cluster, a layout and a precision recipe.

Step time = compute + communication, or max(compute, communication) when communication is
overlapped with computation (what DualPipe achieves). Compute runs at `mfu` of the dense
peak of `precision`. Communication: the bytes course.parallel counts per GPU per step,
tensor-parallel traffic over NVLink and everything else over the GPU's own InfiniBand link
(conservative: some DP and EP traffic stays inside a node; no node-deduplication of
expert traffic). Pipeline bubbles are not modelled. Serving memory: the weights plus the
KV cache of one million tokens (course.kvcache).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from course import compute, validate
from course.activations import RECOMPUTE
from course.configs import DEEPSEEK_IB_GB_S, DEEPSEEK_NVLINK_GB_S, gpu, load_config
from course.kvcache import kv_bytes_per_token
from course.memory import param_count, recipe
from course.parallel import DEEPSEEK_V3_LAYOUT, Layout, comm_per_step, per_gpu_memory


@dataclass(frozen=True)
class Setup:
    """Everything the planner needs; the presets below are two real runs."""
    model: str = "deepseek-v3"
    gpu_name: str = "H800"
    layout: Layout = DEEPSEEK_V3_LAYOUT
    recipe: str = "deepseek-fp8"  # a course.memory recipe
    precision: str = "fp8"  # which dense peak the matmuls run at
    mfu: float = 0.2  # of that peak, for the compute alone
    tokens: float = 14.8e12
    batch_tokens: float = 15360 * 4096  # V3 report 4.2: final batch 15360 x 4K sequence
    seq_len: int = 4096
    micro_batch: int = 1
    recompute: str = "selective"  # V3 report 3.2.3: recompute RMSNorm and MLA up-projections
    price_per_hour: float = 2.0
    nvlink_gb_s: float = DEEPSEEK_NVLINK_GB_S
    ib_gb_s: float = DEEPSEEK_IB_GB_S


PRESETS = {
    # DeepSeek-V3 report 3.1-3.3 and 4.2, Table 1. MFU 0.2 of dense FP8 is what the
    # published bill implies (notebook 05).
    "DeepSeek-V3": Setup(),
    # Llama 3.1 405B: 16K H100s (Llama 3 paper 3.3.1); the layout TP8 x PP16 x DP128 and the
    # 16M-token batch are the paper's 16K-GPU setting as we read it (not stated as a table); BF16
    # mixed precision at 40% MFU; sequence parallelism, ZeRO-1 and selective recomputation are
    # our assumptions, not published.
    "Llama 3.1 405B": Setup(model="llama-3.1-405b", gpu_name="H100 SXM",
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

    @property
    def per_gpu_bytes(self) -> float:
        return sum(self.memory.values())

    @property
    def fits(self) -> bool:
        return self.per_gpu_bytes <= self.gpu_bytes

    def step_s(self, overlap: bool = True) -> float:
        return max(self.compute_s, self.comm_s) if overlap else self.compute_s + self.comm_s

    def days(self, overlap: bool = True) -> float:
        return self.steps * self.step_s(overlap) / compute.SECONDS_PER_DAY

    def gpu_hours(self, overlap: bool = True) -> float:
        return self.steps * self.step_s(overlap) * self.setup.layout.world / 3600

    def dollars(self, overlap: bool = True) -> float:
        return self.gpu_hours(overlap) * self.setup.price_per_hour

    def tokens_per_dollar(self, overlap: bool = True) -> float:
        return self.setup.tokens / self.dollars(overlap)


def _microbatches(s: Setup) -> int:
    per_replica = s.batch_tokens / (s.layout.dp * s.seq_len * s.micro_batch)
    if per_replica < 1:
        raise ValueError("The batch is smaller than one micro-batch per data-parallel replica.")
    return max(1, round(per_replica))


def _comm_seconds(s: Setup, bytes_by_kind: dict) -> float:
    total = 0.0
    for kind, n in bytes_by_kind.items():
        bw = s.nvlink_gb_s if kind.startswith("TP") else s.ib_gb_s
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
                s.tokens / s.batch_tokens, fpt, serving)


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
