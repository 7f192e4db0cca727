"""GPU specs the course computes with: dense tensor-core peaks, memory, bandwidths, each
with its datasheet, and DeepSeek-V3's measured link speeds. `course.configs` re-exports
these names (`configs.gpu("H800")`).
"""

from __future__ import annotations

from dataclasses import dataclass

from course import validate

# Tensor-core peaks are *dense*; NVIDIA's product pages headline the 2:4-sparsity
# figures (exactly 2x dense), which no LLM training run uses.


@dataclass(frozen=True)
class GPUSpec:
    name: str
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None  # None: no FP8 tensor cores
    memory_gb: float  # HBM, decimal GB as in datasheets
    hbm_tb_s: float  # HBM bandwidth, TB/s
    nvlink_gb_s: float  # NVLink bandwidth per GPU, GB/s (bidirectional total)
    network_gb_s: float  # inter-node network per GPU, GB/s (one 400 Gb/s NIC = 50 GB/s)
    source: str

    @property
    def bf16_sparse_tflops(self) -> float:
        return 2 * self.bf16_dense_tflops

    @property
    def fp8_sparse_tflops(self) -> float | None:
        return None if self.fp8_dense_tflops is None else 2 * self.fp8_dense_tflops

    def peak_tflops(self, precision: str = "bf16") -> float:
        validate.choice("precision", precision, ("bf16", "fp8"))
        peak = {"bf16": self.bf16_dense_tflops, "fp8": self.fp8_dense_tflops}[precision]
        if peak is None:
            raise ValueError(f"{self.name} has no dense {precision} tensor-core peak.")
        return peak


GPUS: dict[str, GPUSpec] = {
    # NVIDIA H100 Tensor Core GPU Architecture whitepaper, Table 1 (SXM5):
    # BF16 989.4 dense / 1978.9 sparse; FP8 1978.9 / 3957.8; HBM3 80 GB, 3.35 TB/s.
    "H100 SXM": GPUSpec("H100 SXM", 989.4, 1978.9, 80, 3.35, 900, 50,
                        "NVIDIA H100 whitepaper, Table 1; H100 datasheet"),
    # Export variant of the H100 SXM: same GH100 tensor cores, NVLink cut to 400 GB/s
    # (third-party sources; NVIDIA publishes no H800 datasheet). DeepSeek-V3
    # measured 160 GB/s effective NVLink and 50 GB/s InfiniBand per GPU (report 3.2.2).
    "H800": GPUSpec("H800", 989.4, 1978.9, 80, 3.35, 400, 50,
                    "same compute as H100 SXM (third-party); DeepSeek-V3 report 3.2.2"),
    # NVIDIA H200 datasheet: same tensor cores as H100 SXM, 141 GB HBM3e at 4.8 TB/s.
    "H200": GPUSpec("H200", 989.4, 1978.9, 141, 4.8, 900, 50, "NVIDIA H200 datasheet"),
    # NVIDIA A100 datasheet (SXM 80 GB): BF16 312 dense (624 sparse); no FP8 tensor cores.
    "A100": GPUSpec("A100", 312.0, None, 80, 2.039, 600, 25, "NVIDIA A100 datasheet"),
}

# DeepSeek-V3 report 3.2.2: effective bandwidths seen by its all-to-all kernels.
DEEPSEEK_NVLINK_GB_S = 160.0
DEEPSEEK_IB_GB_S = 50.0


def gpu(name: str) -> GPUSpec:
    return GPUS[validate.choice("GPU", name, GPUS)]
