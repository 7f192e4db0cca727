"""Where the course runs: the torch device, the size preset, and seeding.

On a CUDA machine the course switches to realistic sizes (DeepSeek-V3 widths, long
contexts); on a CPU it stays at toy sizes that run in seconds. `COURSE_SIZE=toy` or
`COURSE_SIZE=realistic` overrides the choice.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

SIZES = ("toy", "realistic")


def device() -> torch.device:
    """`cuda` when a CUDA GPU is visible, else `cpu`."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def size() -> str:
    """The size preset: `COURSE_SIZE` if set, else `realistic` on CUDA and `toy` on CPU."""
    chosen = os.environ.get("COURSE_SIZE", "").strip().lower()
    if not chosen:
        return "realistic" if device().type == "cuda" else "toy"
    if chosen not in SIZES:
        raise ValueError(
            f"COURSE_SIZE must be one of {', '.join(SIZES)}, not {chosen!r}."
        )
    return chosen


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch (CPU and CUDA); return a seeded torch generator."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1 (numpy's range), "
                         f"not {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def describe() -> str:
    """One line for notebook 00, e.g. "CPU, toy sizes" or "NVIDIA H200, realistic sizes"."""
    where = gpu_name() or "CPU"
    return f"{where}, {size()} sizes"
