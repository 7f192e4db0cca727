"""The roofline model: is an operation limited by arithmetic or by memory traffic?

An `Op` does `flops` FLOPs and moves `bytes` bytes; a `Machine` has a peak (TFLOP/s) and a
memory bandwidth (TB/s). attainable = min(peak, intensity x bandwidth) (Williams et al.,
CACM 2009); the ridge point peak / bandwidth separates memory-bound from compute-bound.
The operations themselves are counted in `course.roofline_ops`, the learner's machine is
measured in `course.roofline_measure`; `course.roofline` gathers all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from course.configs import gpu


@dataclass(frozen=True)
class Op:
    """One operation: what it computes and what it moves."""

    name: str
    flops: float
    bytes: float
    shape: tuple = ()

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte moved."""
        return self.flops / self.bytes

    def __add__(self, other: "Op") -> "Op":
        return Op(f"{self.name} + {other.name}", self.flops + other.flops,
                  self.bytes + other.bytes)

    def scaled(self, factor: float, name: str | None = None) -> "Op":
        """The same operation repeated `factor` times (same intensity)."""
        return Op(name or self.name, self.flops * factor, self.bytes * factor, self.shape)


@dataclass(frozen=True)
class Machine:
    """A roofline: peak TFLOP/s and memory bandwidth in TB/s."""

    name: str
    tflops: float
    tb_s: float
    source: str = ""
    points: tuple = field(default=(), compare=False, repr=False)  # measured (Op, seconds)
    dtype_bytes: float = 2  # the width its peak is quoted for (BF16: 2; a CPU's FP32: 4)

    @property
    def ridge(self) -> float:
        """FLOP/B where memory- and compute-bound meet."""
        return self.tflops / self.tb_s


# ------------------------------------------------------------------------------ machines


def machine(gpu_name, precision: str = "bf16") -> Machine:
    """The roofline of a GPU of `course.configs.GPUS` (dense tensor-core peak, HBM), or a
    `Machine` passed through unchanged."""
    if isinstance(gpu_name, Machine):
        return gpu_name
    spec = gpu(gpu_name)
    return Machine(spec.name, spec.peak_tflops(precision), spec.hbm_tb_s, spec.source)


def ridge(gpu_name, precision: str = "bf16") -> float:
    """Peak FLOP/s over HBM bandwidth, in FLOP/B.

    >>> round(ridge("H800"))
    295
    """
    return machine(gpu_name, precision).ridge


def attainable_tflops(op: Op, gpu_name, precision: str = "bf16") -> float:
    """min(peak, intensity x bandwidth), in TFLOP/s."""
    m = machine(gpu_name, precision)
    return min(m.tflops, op.intensity * m.tb_s)


def bound(op: Op, gpu_name, precision: str = "bf16") -> str:
    """"compute" or "memory": which roof limits `op` on this machine."""
    return "compute" if op.intensity >= ridge(gpu_name, precision) else "memory"


def seconds(op: Op, gpu_name, precision: str = "bf16") -> float:
    """Lower bound on the op's time: max(FLOPs / peak, bytes / bandwidth)."""
    m = machine(gpu_name, precision)
    return max(op.flops / (m.tflops * 1e12), op.bytes / (m.tb_s * 1e12))


def placed(op: Op, gpu_name, precision: str = "bf16") -> dict:
    """Where `op` sits on a machine's roofline: its intensity, attainable TFLOP/s, which
    roof limits it, and the share of the peak it can reach."""
    m = machine(gpu_name, precision)
    tflops = attainable_tflops(op, m)
    return dict(label=op.name, intensity=op.intensity, tflops=tflops,
                bound=bound(op, m), share_of_peak=tflops / m.tflops)


def roof(intensities, gpu_name, precision: str = "bf16") -> list[float]:
    """The roofline itself: attainable TFLOP/s at each intensity."""
    m = machine(gpu_name, precision)
    return [min(m.tflops, float(i) * m.tb_s) for i in intensities]


# ------------------------------------------------------------------ sums of operations


def time_shares(ops, gpu_name, precision: str = "bf16") -> list[dict]:
    """Each op's share of the FLOPs and of the time at the roofline (every kernel perfect:
    max(FLOPs / peak, bytes / bandwidth))."""
    m = machine(gpu_name, precision)
    secs = [seconds(op, m) for op in ops]
    total_f, total_s = sum(op.flops for op in ops), sum(secs)
    return [dict(label=op.name, flops_share=op.flops / total_f, time_share=s / total_s,
                 bound=bound(op, m), intensity=op.intensity, seconds=s)
            for op, s in zip(ops, secs)]


def roofline_mfu(ops, gpu_name, precision: str = "bf16") -> float:
    """The best MFU these ops allow even with perfect kernels: FLOPs at peak over the
    roofline time of all of them, run one after another."""
    m = machine(gpu_name, precision)
    return sum(op.flops for op in ops) / (m.tflops * 1e12) / sum(seconds(op, m) for op in ops)
