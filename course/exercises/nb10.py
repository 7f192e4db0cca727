"""Exercises of notebook 10 · FP8."""

import torch

from course import fp8
from course.exercises import Exercise, register


def quantize_by_hand(x: torch.Tensor) -> torch.Tensor:
    scale = x.abs().max() / 448  # one scale per tensor: the largest entry lands on 448
    return fp8.round_to(x / scale, "e4m3") * scale


register(Exercise(
    name="10.quantize_by_hand", notebook="10",
    prompt="Per-tensor E4M3 round trip of x: scale, round with fp8.round_to, scale back.",
    hint="scale = max|x| / 448; return fp8.round_to(x / scale, 'e4m3') * scale.",
    reference=quantize_by_hand,
    oracle=lambda x: fp8.dequantize(*fp8.quantize(x, "e4m3")),  # per-tensor scale
    cases=lambda: [(torch.tensor([0.3, -1.7, 2.2, 0.01]),),
                   (torch.linspace(-5, 40, 17),),
                   (torch.randn(64, generator=torch.Generator().manual_seed(0)) * 1e-3,)],
    wrong=lambda x: fp8.round_to(x, "e4m3"),  # forgot the scale
))


register(Exercise(
    name="10.best_scaling", notebook="10",
    prompt="Activations of 256 tokens x 512 channels with one entry of 100,000: which "
           "scaling gives the smallest typical error? ('per tensor', '1×128 tiles' or "
           "'128×128 blocks')",
    hint="An outlier only spoils the entries that share its scale: the smaller the group, "
         "the fewer entries it hurts.",
    expected=lambda: min((r["rel_error"], k) for k, r in fp8.compare_scalings(1e5).items())[1],
    wrong="128×128 blocks",
))


register(Exercise(
    name="10.training_tb", notebook="10",
    prompt="DeepSeek-V3 (671B parameters) trained with FP32 master weights and gradients "
           "and BF16 AdamW moments: how many TB (1e12 bytes) do these states take?",
    hint="4 + 4 + 2 + 2 = 12 bytes per parameter, times 671e9.",
    expected=lambda: 671e9 * sum(fp8.TRAINING_BYTES_PER_PARAM.values()) / 1e12,
    wrong=0.671, rtol=0.01,  # one byte per parameter
))
