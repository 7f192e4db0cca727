"""The learner's own machine on the roofline: measured, not typed in.

The best of a short sweep of square matmuls gives its peak; a large tensor copy and a
matrix-vector product over a weight larger than any CPU cache give its bandwidth; a few
skinny matmuls are the measured points set against the model's line (`course.roofline`).
"""

from __future__ import annotations

from functools import partial

from course import timing
from course.roofline_model import Machine
from course.roofline_ops import matmul

_MEASURED: dict[tuple, Machine] = {}


def measure_machine(sizes: dict | None = None, device=None, refresh: bool = False,
                    progress=None) -> Machine:
    """Measure this machine's roofline, in the dtype the course uses on this device (FP32 on
    a CPU, BF16 on a GPU):

    * peak: the best TFLOP/s of a short sweep of square matmuls (`peak_ns`);
    * bandwidth: the best streaming rate of a large copy (`copy_mib` MiB read and written)
      and of a matrix-vector product whose (k, k) weight is larger than any CPU cache
      (`skinny_k`; a copy also pays for the write, a matrix-vector product only reads);
    * points: matmuls of `skinny_m` tokens against that weight, each timed (median): the
      measured operations to set against the model's line.

    Cached per kernel (`refresh=True` re-measures); sizes from
    `course.presets.preset("roofline")`; about 2 s on a laptop CPU. `progress(done, total,
    text)` is called after each measurement.
    """
    import torch

    from course import device as dev_mod
    from course.presets import preset

    sizes = sizes or preset("roofline")
    dev = torch.device(device) if device is not None else dev_mod.device()
    key = (str(dev), tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                                  for k, v in sizes.items())))
    if key in _MEASURED and not refresh:
        return _MEASURED[key]
    bench = _Bench(dev, sizes, progress)
    peak = bench.peak_tflops()
    tb_s = bench.copy_tb_s()
    points, read_tb_s = bench.skinny_points()
    where = f"{dev.type} {str(bench.dtype).removeprefix('torch.')}"
    result = Machine(f"this machine ({where})", peak, max(tb_s, read_tb_s),
                     "measured: best square matmul; best of a large copy and a "
                     "matrix-vector read", tuple(points), bench.nbytes)
    _MEASURED[key] = result
    return result


class _Bench:
    """The three measurements of `measure_machine`, on one device and dtype, with progress."""

    def __init__(self, dev, sizes: dict, progress=None):
        import torch

        self.torch, self.dev, self.sizes, self.progress = torch, dev, sizes, progress
        self.dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        self.nbytes = torch.empty((), dtype=self.dtype).element_size()
        self.sync = timing.synchronizer(dev)
        self.gen = torch.Generator(device=dev).manual_seed(0)  # on the device: no host copy
        self.done = 0
        self.total = len(sizes["peak_ns"]) + 1 + len(sizes["skinny_m"])

    def _tick(self, text: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, text)

    def _randn(self, *shape):
        return self.torch.randn(*shape, generator=self.gen, device=self.dev, dtype=self.dtype)

    def _times(self, fn) -> list[float]:
        return timing.times(fn, self.sizes["repeats"], sync=self.sync)

    def peak_tflops(self) -> float:
        """The best TFLOP/s over the square matmuls."""
        peak = 0.0
        for n in self.sizes["peak_ns"]:
            best = self._times(partial(self.torch.mm, self._randn(n, n), self._randn(n, n)))[0]
            peak = max(peak, 2 * n**3 / best / 1e12)
            self._tick(f"matmul {n}×{n}×{n}")
        return peak

    def copy_tb_s(self) -> float:
        """The best rate of a large copy: src read, dst written."""
        numel = self.sizes["copy_mib"] * 2**20 // self.nbytes
        src = self.torch.ones(numel, dtype=self.dtype, device=self.dev)
        dst = self.torch.empty_like(src)
        best = self._times(partial(dst.copy_, src))[0]
        self._tick(f"copy {self.sizes['copy_mib']} MiB")
        return 2 * numel * self.nbytes / best / 1e12

    def skinny_points(self) -> tuple[list, float]:
        """(Op, median seconds) of each skinny matmul, and the read rate of the skinniest
        (a matrix-vector product: a bandwidth measurement)."""
        k = self.sizes["skinny_k"]
        w = self._randn(k, k)
        points, read_tb_s = [], 0.0
        for m in self.sizes["skinny_m"]:
            laps = self._times(partial(self.torch.mm, self._randn(m, k), w))
            op = matmul(m, k, k, self.nbytes, name=f"{m} tokens × ({k}×{k})")
            if m == min(self.sizes["skinny_m"]):
                read_tb_s = op.bytes / laps[0] / 1e12
            points.append((op, timing.median(laps)))
            self._tick(f"matmul {m}×{k}×{k}")
        return points, read_tb_s


def measured_tflops(point: tuple) -> float:
    """Achieved TFLOP/s of a measured (Op, seconds) point."""
    op, secs = point
    return op.flops / secs / 1e12
