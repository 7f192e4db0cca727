"""Exercises of notebook 03 · How many GB do I need?"""

from course import memory
from course.exercises import Exercise, register


def swiglu_params(d: int, inter: int) -> int:
    return 3 * d * inter


register(Exercise(
    name="03.swiglu_params", notebook="03",
    prompt="Count the parameters of one SwiGLU FFN (an expert): width d, inner width inter.",
    hint="Three matrices without biases: gate and up (d x inter) and down (inter x d).",
    reference=swiglu_params, cases=lambda: [(4096, 14336), (7168, 2048), (64, 256)],
    oracle=memory.ffn_params,
    wrong=lambda d, inter: 2 * d * inter,  # a GELU MLP has two matrices; SwiGLU has three
))


def mixed_precision_gb(n_params: int) -> float:
    return sum(memory.state_bytes(n_params, "bf16-mixed", "adamw").values()) / 1e9


register(Exercise(
    name="03.mixed_precision_gb", notebook="03",
    prompt="GB of weights + gradients + AdamW states for n_params in BF16 mixed precision.",
    hint="BF16 weights (2) + BF16 grads (2) + FP32 master (4) + two FP32 moments (4 + 4).",
    reference=mixed_precision_gb, cases=lambda: [(8_030_261_248,), (10**9,), (1,)],
    oracle=lambda n: (2 + 2 + 4 + 4 + 4) * n / 1e9,  # closed form: 16 bytes per parameter
    wrong=lambda n: 2 * n / 1e9,  # the weights alone
))


register(Exercise(
    name="03.gpus_405b_inference", notebook="03",
    prompt="How many 80 GB GPUs hold Llama 3.1 405B's weights in BF16 (no KV cache)?",
    hint="2 bytes per parameter, then round up to whole GPUs.",
    expected=lambda: memory.gpus_needed(memory.param_count("llama-3.1-405b").total * 2),
    wrong=6, rtol=0,  # what FP8 (1 byte per parameter) would need
))
