"""Every notebook's realistic-size computation in one run, timed, as one table:

    python -m course.bench --realistic

On a CUDA GPU this runs at the "realistic" presets of `course/presets.py` (DeepSeek-V3
widths, 8192-cube GEMMs, 32k-token MLA decode) and compares achieved TFLOP/s with the
GPU's *dense* datasheet peak (`course.configs.GPUS`). `run_suite()` also runs on a CPU at
toy sizes, which is how the tests keep this path from rotting on machines without a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from course import device as dev
from course.configs import GPUS
from course.presets import preset


@dataclass
class Row:
    notebook: str
    what: str
    seconds: float  # wall time of the measured operation (median or best, see `what`)
    tflops: float | None = None  # achieved, where the FLOPs are counted
    precision: str = "bf16"  # which datasheet peak to compare with
    note: str = ""
    memory_bytes: int | None = None  # CUDA peak allocated during the entry


def _block() -> list[Row]:
    from course.cost import preset_block_timing

    t = preset_block_timing(repeats=3)
    p = preset("block")
    return [Row("01", f"MHA+SwiGLU block forward, d={p['d_model']}, {p['n_heads']} heads, "
                      f"T={p['seq_len']}", t.forward_s, t.forward_tflops, note=t.where)]


def _mlp_ratio() -> list[Row]:
    from course.cost import preset_mlp_timing

    t = preset_mlp_timing(repeats=5)
    p = preset("mlp")
    return [Row("02", f"SwiGLU MLP {p['d_model']}x{p['d_ff']} forward", t.forward_s,
                t.forward_tflops, note=t.where),
            Row("02", "same MLP backward", t.backward_s, t.backward_tflops,
                note=f"backward/forward = {t.ratio:.2f}")]


def _matmul_and_mfu() -> list[Row]:
    from course import compute

    p, where = preset("matmul"), dev.device()
    dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
    peak = compute.measure_matmul_tflops(p["n"], dtype=dtype, device=where)
    n = p["n"]
    step = compute.measure_mlp_step(p["d_model"], p["d_ff"], p["n_layers"], p["tokens"],
                                    peak_tflops=peak, dtype=dtype, device=where)
    return [Row("05", f"matmul {n}^3", 2 * n**3 / peak / 1e12, peak, note=str(dtype)),
            Row("05", "MLP training step", step.seconds, step.tflops,
                note=f"MFU vs measured matmul peak {step.mfu:.0%}")]


def _moe_layer() -> list[Row]:
    from course.moe import time_layer

    t = time_layer(repeats=3)
    p = preset("moe_layer")
    shape = f"{p['n_experts']} experts, {p['top_k']} active + 1 shared, d={p['d_model']}"
    return [Row("08", f"sigmoid router with groups, {t.tokens} tokens", t.router_seconds,
                note=f"{t.device} {t.dtype}"),
            Row("08", f"MoE layer forward ({shape})", t.layer_seconds,
                note=f"{t.tokens_per_s:,.0f} tokens/s")]


def _moe_memory() -> list[Row]:
    from course.moe_memory import measure_step

    p, where = preset("moe_memory"), dev.device()
    start = time.perf_counter()
    m = measure_step(**p, device=str(where))
    seconds = time.perf_counter() - start
    predicted = m["weights"] + m["gradients"] + m["optimizer"] + m["activations"]
    peak = m.get("peak_allocated")
    note = f"weights+grads+Adam+saved = {predicted / 2**30:.2f} GiB"
    if peak:
        note += f"; allocator peak {peak / 2**30:.2f} GiB"
    return [Row("03", f"MoE layer training step ({p['n_experts']} experts, d={p['d']})",
                seconds, note=note, precision="")]


def _fp8_gemm() -> list[Row]:
    from course.fp8_accum import fp8_gemm_supported, gemm_benchmark

    n = preset("fp8_gemm")["n"]
    if not fp8_gemm_supported():
        return [Row("10", f"FP8 GEMM {n}^3", float("nan"), note="needs FP8 tensor cores")]
    r = gemm_benchmark(n)
    flops = 2 * n**3
    return [Row("10", f"BF16 GEMM {n}^3", flops / r["bf16_tflops"] / 1e12, r["bf16_tflops"],
                note=f"rel. error {r['bf16_error']:.1e}"),
            Row("10", f"FP8 E4M3 GEMM {n}^3 (_scaled_mm)", flops / r["fp8_tflops"] / 1e12,
                r["fp8_tflops"], precision="fp8",
                note=f"{r['speedup']:.2f}x BF16, rel. error {r['fp8_error']:.1e}")]


def _mla_decode() -> list[Row]:
    from course.mla import measure_decode

    r = measure_decode()
    ctx = r["contexts"][-1]
    return [Row("11", f"MLA decode step, {path}, context {ctx:,}, batch {r['batch']}",
                r["seconds"][path][-1], note=r["dtype"]) for path in ("mha", "naive", "absorbed")]


SUITE: list[Callable[[], list[Row]]] = [_block, _mlp_ratio, _moe_memory, _matmul_and_mfu,
                                        _moe_layer, _fp8_gemm, _mla_decode]


def run_suite(entries=None) -> list[Row]:
    """Run each entry at the current size preset; a failing entry becomes a row saying why."""
    rows = []
    for entry in entries or SUITE:
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            got = entry()
        except (RuntimeError, ValueError) as err:  # e.g. out of memory: report, go on
            got = [Row("--", entry.__name__.strip("_"), float("nan"), note=f"failed: {err}"[:90])]
        for row in got:
            row.memory_bytes = torch.cuda.max_memory_allocated() if cuda else None
        rows.extend(got)
    return rows


def peak_fraction(row: Row, gpu: str | None) -> float | None:
    if row.tflops is None or gpu is None or not row.precision:
        return None
    peak = getattr(GPUS[gpu], f"{row.precision}_dense_tflops")
    return None if peak is None else row.tflops / peak


def format_table(rows: list[Row], gpu: str | None) -> str:
    head = (f"{'nb':3s} {'what':58s} {'time':>10s} {'TFLOP/s':>8s} {'% peak':>7s} "
            f"{'mem GiB':>8s}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        frac = peak_fraction(r, gpu)
        lines.append(
            f"{r.notebook:3s} {r.what[:58]:58s} {r.seconds * 1e3:8.2f}ms "
            f"{'' if r.tflops is None else f'{r.tflops:8.2f}':>8s} "
            f"{'' if frac is None else f'{frac:6.0%}':>7s} "
            f"{'' if r.memory_bytes is None else f'{r.memory_bytes / 2**30:8.1f}':>8s}  {r.note}")
    return "\n".join(lines)


def main() -> int:
    from course.compute import datasheet_gpu

    name = dev.gpu_name()
    if name is None:
        print("No CUDA GPU here: the realistic-size benchmark needs one.")
        return 1
    gpu = datasheet_gpu(name)
    print(f"{name} ({gpu or 'no datasheet entry'}), {dev.size()} sizes, torch {torch.__version__}")
    print(format_table(run_suite(), gpu))
    return 0
