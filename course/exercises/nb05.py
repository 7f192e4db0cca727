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
    reference=days_on, oracle=compute.wall_clock_days,
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


def intensity(m: int, k: int, n: int, dtype_bytes: float) -> float:
    flops = 2 * m * k * n  # one multiply and one add per term
    moved = (m * k + k * n + m * n) * dtype_bytes  # A and B read once, C written once
    return flops / moved


def _intensity_oracle(m, k, n, dtype_bytes):
    from course import roofline

    return roofline.matmul(m, k, n, dtype_bytes).intensity


register(Exercise(
    name="05.intensity", notebook="05",
    prompt="Arithmetic intensity (FLOP/B) of an (m, k) @ (k, n) matmul, inputs read once and "
           "the output written once.",
    hint="2·m·k·n FLOPs over (m·k + k·n + m·n) × dtype_bytes bytes.",
    reference=intensity, oracle=_intensity_oracle,
    cases=lambda: [(1, 7168, 18432, 2), (4096, 7168, 18432, 2), (64, 4096, 4096, 4),
                   (128, 7168, 2048, 1)],
    wrong=lambda m, k, n, b: 2 * m * k * n / ((m * k + k * n) * b),  # forgot the output
))


def _tokens_to_ridge() -> int:
    from course import roofline

    ridge = roofline.ridge("H800")
    return next(t for t in range(1, 100_000)
                if roofline.matmul(t, 7168, 18432).intensity >= ridge)


register(Exercise(
    name="05.tokens_to_ridge", notebook="05",
    prompt="Tokens per matmul for DeepSeek-V3's FFN weight (7168 x 18432, BF16) to be "
           "compute-bound on an H800.",
    hint="Intensity = T·k·n / (T·k + k·n + T·n) in BF16; solve for the ridge, ~295 FLOP/B.",
    expected=_tokens_to_ridge, wrong=295, rtol=0.02,  # the ridge itself, not the tokens
))
