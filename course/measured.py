"""MFU measured on this machine: a real matmul's TFLOP/s (the peak it can reach) and a real
training step of a small residual MLP stack, whose matmul FLOPs are counted in closed form
(`mlp_step_flops`, checked against torch's FLOP counter in tests/test_compute.py).

`course.compute` re-exports these names; notebook 05 and `course.realistic` call them
there. Times are medians of a few runs after a warm-up (`course.timing`).
"""

from __future__ import annotations

from dataclasses import dataclass

from course import timing
from course import validate as check

#: Largest sizes the measurements accept: an (n, n) float32 matrix of 16,384 is 1 GiB.
MAX_SIZE = 16_384
MAX_LAYERS = 256
MAX_TOKENS = 65_536
MAX_REPEATS = 1_000


def _size(name: str, value, maximum: int = MAX_SIZE) -> int:
    return check.integer(name, value, 1, maximum)


def measure_matmul_tflops(n: int, dtype=None, device=None, repeats: int = 10) -> float:
    """Achieved TFLOP/s of an (n, n) @ (n, n) matmul: 2 n^3 FLOPs over its median time."""
    import torch

    n, repeats = _size("n", n), check.integer("repeats", repeats, 1, MAX_REPEATS)
    dev = torch.device(device or "cpu")
    dtype = dtype or torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev, dtype)
    b = torch.randn(n, n, generator=g).to(dev, dtype)
    return 2 * n**3 / timing.median_seconds(lambda: a @ b, repeats, device=dev) / 1e12


def _mlp_sizes(d_model, d_ff, n_layers) -> tuple[int, int, int]:
    return (_size("d_model", d_model), _size("d_ff", d_ff),
            _size("n_layers", n_layers, MAX_LAYERS))


def mlp_layers(d_model: int, d_ff: int, n_layers: int):
    """A small residual MLP stack (Linear-GELU-Linear per layer) for the measured MFU step."""
    import torch

    d_model, d_ff, n_layers = _mlp_sizes(d_model, d_ff, n_layers)
    blocks = [torch.nn.Sequential(torch.nn.Linear(d_model, d_ff, bias=False), torch.nn.GELU(),
                                  torch.nn.Linear(d_ff, d_model, bias=False))
              for _ in range(n_layers)]
    return torch.nn.ModuleList(blocks)


def mlp_step_flops(d_model: int, d_ff: int, n_layers: int, tokens: int) -> int:
    """Matmul FLOPs of one training step of `mlp_layers`: forward, backward, no optimizer.

    Each weight W costs 2·T·|W| forward, 2·T·|W| for its gradient and 2·T·|W| for the
    input gradient, so 6·T·|W| -- except the first layer: its input needs no gradient.
    """
    d_model, d_ff, n_layers = _mlp_sizes(d_model, d_ff, n_layers)
    tokens = _size("tokens", tokens, MAX_TOKENS)
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

    flops = mlp_step_flops(d_model, d_ff, n_layers, tokens)  # checks the four sizes
    peak_tflops = check.positive("peak_tflops", peak_tflops)
    repeats = check.integer("repeats", repeats, 1, MAX_REPEATS)
    dev = torch.device(device or "cpu")
    torch.manual_seed(0)
    blocks = mlp_layers(d_model, d_ff, n_layers).to(dev, dtype or torch.float32)
    x = torch.randn(int(tokens), int(d_model), device=dev, dtype=dtype or torch.float32)
    opt = torch.optim.SGD(blocks.parameters(), lr=1e-3)
    seconds = timing.median_seconds(lambda: _mlp_step(blocks, x, opt), repeats, device=dev)
    return MeasuredStep(seconds, flops, peak_tflops)


def datasheet_gpu(device_name: str | None) -> str | None:
    """The `configs.GPUS` key for a CUDA device name such as 'NVIDIA H100 80GB HBM3'."""
    if not device_name or not isinstance(device_name, str):
        return None
    for key in ("H800", "H200", "H100", "A100"):
        if key in device_name:
            return "H100 SXM" if key == "H100" else key
    return None
