"""The roofline: is an operation limited by arithmetic or by memory traffic?

An operation does `flops` FLOPs and moves `bytes` bytes between memory and the chip. Its
**arithmetic intensity** is flops / bytes (FLOP/B). A machine with peak P FLOP/s and memory
bandwidth B bytes/s can run it at most at

    attainable = min(P, intensity x B)                    (Williams et al., CACM 2009)

The **ridge point** P / B is the intensity where the two limits meet: below it the
operation is memory-bound (the chip waits for data), above it compute-bound. H100 SXM and
H800: 989.4 dense BF16 TFLOP/s over 3.35 TB/s = 295 FLOP/B (NVIDIA H100 whitepaper,
Table 1); H200: the same compute over 4.8 TB/s = 206 FLOP/B (H200 datasheet).

The one place learners import from; the ideas live in three modules:

* `course.roofline_model`: `Op`, `Machine` and the model itself (ridge, attainable,
  bound, seconds, the time shares and best MFU of a list of operations);
* `course.roofline_ops`: the FLOPs and bytes of a transformer's operations (matmuls,
  attention in prefill and decode, MoE experts, whole steps and layers), counted as an
  ideal kernel moves them;
* `course.roofline_measure`: the learner's own machine, measured, not typed in
  (`measure_machine`).
"""

from course.roofline_measure import measure_machine, measured_tflops
from course.roofline_model import (
    Machine,
    Op,
    attainable_tflops,
    bound,
    machine,
    placed,
    ridge,
    roof,
    roofline_mfu,
    seconds,
    time_shares,
)
from course.roofline_ops import (
    attention_decode,
    attention_prefill,
    decode_intensity_limit,
    decode_step,
    elementwise,
    matmul,
    moe_expert,
    moe_layer_ops,
    prefill_step,
    tokens_per_expert,
)

__all__ = ["Machine", "Op", "attainable_tflops", "attention_decode", "attention_prefill",
           "bound", "decode_intensity_limit", "decode_step", "elementwise", "machine",
           "matmul", "measure_machine", "measured_tflops", "moe_expert", "moe_layer_ops",
           "placed", "prefill_step", "ridge", "roof", "roofline_mfu", "seconds",
           "time_shares", "tokens_per_expert"]
