"""The number formats of FP8 training (DeepSeek-V3 report §3.3): E4M3, E5M2 and BF16,
derived from their bit layouts, and rounding to them with torch's own casts
(`float8_e4m3fn` / `float8_e5m2`, round to nearest even). `course.fp8` scales tensors
into these formats and re-exports the names below.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from course import validate

#: Formats by name; E4M3 is the OCP/NVIDIA "fn" variant (no infinities, max 448).
DTYPES = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class FormatSpec:
    """A floating-point format derived from its bit layout (no lookup in torch)."""

    name: str
    exp_bits: int
    mant_bits: int
    ieee_special: bool  # True: all-ones exponent is inf/NaN (E5M2, BF16); False: E4M3fn

    @property
    def bias(self) -> int:
        return 2 ** (self.exp_bits - 1) - 1

    @property
    def max(self) -> float:
        # subtle: E4M3fn keeps the all-ones exponent for numbers and spends only the
        # all-ones mantissa on NaN, so its largest value is 1.75 * 2^8 = 448, not 240.
        if self.ieee_special:
            return (2 - 2.0 ** -self.mant_bits) * 2.0 ** (2 ** self.exp_bits - 2 - self.bias)
        return (2 - 2.0 ** (1 - self.mant_bits)) * 2.0 ** (2 ** self.exp_bits - 1 - self.bias)

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mant_bits)

    @property
    def eps(self) -> float:
        return 2.0 ** -self.mant_bits

    @property
    def has_inf(self) -> bool:
        return self.ieee_special


FORMATS = {"e4m3": FormatSpec("E4M3", 4, 3, False), "e5m2": FormatSpec("E5M2", 5, 2, True),
           "bf16": FormatSpec("BF16", 8, 7, True)}


def torch_dtype(fmt: str) -> torch.dtype:
    return DTYPES[validate.choice("fmt", fmt, DTYPES)]


def checked_tensor(name: str, x, finite: bool = True) -> torch.Tensor:
    """x as a tensor (lists and numpy arrays are converted); nan and inf are refused."""
    if not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a tensor (or a list of numbers), "
                             f"not {type(x).__name__}.") from None
    if finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds nan or inf: scaling needs finite values.")
    return x


def format_spec(fmt: str) -> FormatSpec:
    """Exponent/mantissa bits, max, min normal, min subnormal and epsilon of `fmt`."""
    torch_dtype(fmt)
    return FORMATS[fmt]


def representable_values(fmt: str) -> torch.Tensor:
    """Every finite value of `fmt`, sorted and unique, as float32: about 250 for the FP8
    formats, about 65,000 for BF16 (every bit pattern, decoded by torch)."""
    torch_dtype(fmt)
    codes = torch.arange(2 ** 16, dtype=torch.int32).to(torch.int16) if fmt == "bf16" else \
        torch.arange(256, dtype=torch.uint8)
    every = codes.view(torch_dtype(fmt)).float()
    return torch.unique(every[torch.isfinite(every)])  # unique also merges +0 and -0


def round_to(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """Round `x` to the nearest value of `fmt` (saturating at ±max), back in float32."""
    limit = format_spec(fmt).max
    x = checked_tensor("x", x, finite=False)  # nan stays nan, as in the format itself
    return x.float().clamp(-limit, limit).to(torch_dtype(fmt)).float()


@functools.lru_cache(maxsize=None)
def _decode_table(dtype: torch.dtype) -> torch.Tensor:
    return torch.arange(256, dtype=torch.uint8).view(dtype).float()  # (256,) torch's decoding


def to_float(q: torch.Tensor) -> torch.Tensor:
    """q.float() for an FP8 tensor, read from a table of torch's own decoding of all 256
    codes (the CPU cast is several times slower than this lookup; `index_select` with
    int32 codes is about twice as fast as `torch.take`, which wants int64)."""
    if q.dtype not in (torch.float8_e4m3fn, torch.float8_e5m2):
        return q.float()
    codes = q.view(torch.uint8)
    return _decode_table(q.dtype).index_select(0, codes.reshape(-1).int()).view(codes.shape)
