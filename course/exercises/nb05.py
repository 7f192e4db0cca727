"""Exercises of notebook 05 · How long does training take?"""

from course import compute
from course.configs import gpu
from course.exercises import Exercise, register

V3 = compute.DEEPSEEK_V3
LLAMA = compute.LLAMA_31_405B


def days_on(gpu_hours: float, n_gpus: int) -> float:
    return gpu_hours / n_gpus / 24  # GPU-hours / GPUs = wall-clock hours


register(Exercise(
    name="05.days_on", notebook="05",
    prompt="Wall-clock days for a job of gpu_hours spread over n_gpus.",
    hint="GPU-hours / GPUs = hours of wall clock; divide by 24.",
    reference=days_on,
    cases=lambda: [(V3["pretrain_gpu_hours"], V3["n_gpus"]),
                   (V3["gpu_hours_per_trillion"], V3["n_gpus"]),
                   (LLAMA["total_gpu_hours"], LLAMA["n_gpus"])],
    wrong=lambda h, n: h / n,  # hours, not days
))


def mfu(flops: float, gpu_hours: float, peak_tflops: float) -> float:
    achieved = flops / (gpu_hours * 3600)  # FLOP/s per GPU
    return achieved / (peak_tflops * 1e12)


def _mfu_cases() -> list[tuple]:
    v3_flops = compute.training_flops_per_token("deepseek-v3", seq_len=V3["seq_len"]).total
    h800 = gpu("H800").peak_tflops("bf16")
    return [(v3_flops * V3["tokens"], V3["pretrain_gpu_hours"], h800),
            (LLAMA["flops"], LLAMA["total_gpu_hours"], gpu(LLAMA["gpu"]).peak_tflops("bf16"))]


register(Exercise(
    name="05.mfu", notebook="05",
    prompt="The MFU a run must have had, from its FLOPs, GPU-hours and peak TFLOP/s per GPU.",
    hint="FLOPs / (GPU-hours x 3600 s) is FLOP/s per GPU; compare with peak x 1e12.",
    reference=mfu, cases=_mfu_cases, oracle=compute.implied_mfu,
    wrong=lambda flops, hours, peak: flops / hours / (peak * 1e12),  # forgot hours -> seconds
))


register(Exercise(
    name="05.v3_on_16384_days", notebook="05",
    prompt="At DeepSeek-V3's MFU, how many days would its pre-training take on 16,384 H800s?",
    hint="Same GPU-hours, 8x the GPUs.",
    expected=lambda: days_on(V3["pretrain_gpu_hours"], LLAMA["n_gpus"]),
    wrong=days_on(V3["pretrain_gpu_hours"], V3["n_gpus"]),  # the 2,048-GPU answer
    rtol=0.02,
))
