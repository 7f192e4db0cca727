"""Inside the FP8 GEMM: limited-precision accumulation and promotion (DeepSeek-V3 report
§3.3.2 "Increasing Accumulation Precision" and §3.5.2), the real tensor-core GEMM on a
GPU. (The toy training comparison FP8 vs BF16 vs FP32 is `course.fp8_training`.)

The report: the H800's FP8 tensor cores keep "around 14 bits" while accumulating; for
random matrices with K = 4096 the maximum relative error is "nearly 2%". The fix copies
the partial sums to FP32 registers every N_C = 128 elements (4 WGMMAs).

Assumptions of `limited_accumulate` (an emulation; NVIDIA does not document the adder):
* products of the FP8 inputs are exact (a 4-bit × 4-bit significand fits easily);
* the tensor core adds `group` = 32 products at a time into its accumulator; every addend
  and the accumulator are aligned to the largest exponent among them and every bit below
  `mant_bits` fraction bits of that exponent is cut off (truncation toward zero, §3.5.2
  "only the highest 14 bits of each mantissa product" and "truncates bits exceeding this
  range"); the accumulator register keeps the same width. `mant_bits` counts fraction
  bits after the leading one, as "23" does for FP32 and "3" for E4M3;
* with promotion (`n_c`), every n_c products the partial sum is added to an FP32 total
  and the accumulator restarts from zero.
Default inputs are E4M3 values of uniform [0, 1) entries (all positive, so truncation
errors all point the same way, the worst case for a sum); see the notebook for N(0, 1).
"""

from __future__ import annotations

import numpy as np
import torch

from course import fp8, timing, validate

MAX_PRODUCTS = 2**24  # m x n x K products held in float64 at once: 128 MB


def truncate(x: torch.Tensor, exponent: torch.Tensor, mant_bits: int) -> torch.Tensor:
    """Cut x (float64) to the grid 2^(exponent − 1 − mant_bits), toward zero.

    `exponent` is torch.frexp's: the leading bit of the aligning value is 2^(exponent−1).
    """
    step = torch.ldexp(torch.ones_like(x), (exponent - 1 - mant_bits).to(torch.int32))
    return torch.trunc(x / step) * step


def _row_scales(scale: torch.Tensor, rows_per_scale: int, n_rows: int) -> torch.Tensor:
    return scale.repeat_interleave(rows_per_scale, 0)[:n_rows]  # (n_rows, G)


def scaled_gemm(qa, sa, qb, sb, a_block=fp8.TILE, b_block=fp8.TILE) -> torch.Tensor:
    """A @ Bᵀ from FP8 operands: qa (M, K), qb (N, K), both scaled per 128-wide group of K.

    Products of each K-group are summed in FP32, then multiplied by that group's scales
    (the report's promotion to CUDA cores, Fig. 7b) and added up. Returns (M, N) float32.
    """
    if not all(torch.is_tensor(t) and t.dim() == 2 for t in (qa, sa, qb, sb)) \
            or qa.shape[1] != qb.shape[1]:
        raise ValueError("scaled_gemm takes 2-D qa (M, K), qb (N, K) with the same K and "
                         "their 2-D scales, as fp8.quantize returns them.")
    M, K = qa.shape
    N, G, gk = qb.shape[0], -(-K // a_block[1]), a_block[1]
    if a_block[1] != b_block[1] or sa.shape[1] != G or sb.shape[1] != G:
        raise ValueError("Both operands must be scaled in the same groups of the K dimension.")
    pad = G * gk - K
    a = torch.nn.functional.pad(qa.float(), (0, pad)).view(M, G, gk)
    b = torch.nn.functional.pad(qb.float(), (0, pad)).view(N, G, gk)
    partial = torch.einsum("mgk,ngk->gmn", a, b)  # (G, M, N), one FP32 sum per group
    ra = _row_scales(sa, a_block[0], M).t()[:, :, None]  # (G, M, 1)
    rb = _row_scales(sb, b_block[0], N).t()[:, None, :]  # (G, 1, N)
    return (partial * ra * rb).sum(0)


def limited_accumulate(products: torch.Tensor, mant_bits: int = 14, n_c: int | None = None,
                       group: int = 32) -> torch.Tensor:
    """Sum each row of `products` (n, K) as the emulated tensor core would; returns (n,)
    float64. n_c=None: never promote (the whole row in the narrow accumulator)."""
    n_c = validate.optional(validate.positive_int, "n_c", n_c)
    if not torch.is_tensor(products) or products.dim() != 2:
        raise ValueError("products must be a 2-D (rows, K) tensor.")
    promote = torch.full((products.shape[0],), n_c is not None)
    return running_sums(products, mant_bits, n_c or group, promote, group)[:, -1]


def running_sums(products: torch.Tensor, mant_bits: int, n_c: int, promote: torch.Tensor,
                 group: int = 32) -> torch.Tensor:
    """The emulated sum of each row's first `group`, 2·`group`, ... products: (n, K/group)
    float64. Rows where `promote` (n,) is True are promoted to FP32 every n_c products."""
    mant_bits = validate.integer("mant_bits", mant_bits, 1, 64)  # > 52: exact in float64
    group = validate.positive_int("group", group)
    n_c = validate.positive_int("n_c", n_c)
    if n_c < group or n_c % group:
        raise ValueError(f"N_C must be a multiple of the {group}-element MMA step, not {n_c}.")
    p = products.double()
    total = torch.zeros(p.shape[0], dtype=torch.float32)  # FP32 registers on CUDA cores
    acc = torch.zeros(p.shape[0], dtype=torch.float64)
    out = []
    for start in range(0, p.shape[1], group):
        chunk = p[:, start: start + group]
        top = torch.maximum(chunk.abs().amax(1), acc.abs())
        _, e = torch.frexp(top)  # 1) align to the largest exponent (accumulator included)
        acc = acc + truncate(chunk, e[:, None], mant_bits).sum(1)  # 2) cut each addend
        acc = truncate(acc, torch.frexp(acc)[1], mant_bits)  # 3) narrow register
        if (start + group) % n_c == 0:  # 4) promotion to FP32, restart the accumulator
            total = torch.where(promote, total + acc.float(), total)
            acc = torch.where(promote, 0.0, acc)
        out.append(torch.where(promote, (total + acc.float()).double(), acc))
    return torch.stack(out, 1)


def random_operands(m: int, n: int, k: int, dist: str = "uniform", seed: int = 0):
    """E4M3 matrices A (m, k), B (n, k) for the experiment, as exact float64."""
    m, n, k = (validate.positive_int(name, x) for name, x in (("m", m), ("n", n), ("k", k)))
    if m * n * k > MAX_PRODUCTS:
        raise ValueError(f"m x n x K = {m * n * k:,} products is more than this emulation's "
                         f"{MAX_PRODUCTS:,}; use smaller matrices.")
    validate.choice("dist", dist, ("uniform", "normal"))
    g = torch.Generator().manual_seed(validate.integer("seed", seed, 0, 2**63 - 1))
    if dist == "uniform":
        a, b = torch.rand(m, k, generator=g), torch.rand(n, k, generator=g)
    elif dist == "normal":
        a, b = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    else:
        raise ValueError("dist must be 'uniform' or 'normal'.")
    return fp8.round_to(a, "e4m3").double(), fp8.round_to(b, "e4m3").double()


def accumulation_error(k: int = 4096, mant_bits: int = 14, n_c: int | None = None,
                       dist: str = "uniform", m: int = 16, n: int = 16, seed: int = 0) -> dict:
    """Relative error of every A Bᵀ entry against exact float64: max and median of
    |got − exact| / max|exact| (normalised by the largest entry, so a near-zero output of a
    zero-mean sum does not make the ratio meaningless)."""
    k = validate.integer("K", k, 32, 65536)
    a, b = random_operands(m, n, k, dist, seed)
    products = (a[:, None, :] * b[None, :, :]).reshape(m * n, k)  # exact in float64
    exact = products.sum(1)
    got = limited_accumulate(products, mant_bits, n_c)
    err = (got - exact).abs() / exact.abs().max()
    return {"max": err.max().item(), "median": err.median().item(), "k": k,
            "mant_bits": mant_bits, "n_c": n_c}


def error_vs_k(ks, mant_bits: int = 14, n_c: int | None = None, dist: str = "uniform",
               m: int = 8, n: int = 8) -> np.ndarray:
    """Max relative error for each K in `ks` (the curve the notebook draws)."""
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
        raise ValueError(f"ks must be a list of K values, not {ks!r}.")
    return np.array([accumulation_error(k, mant_bits, n_c, dist, m, n)["max"] for k in ks])


def accumulation_curves(k_max: int = 4096, mant_bits: int = 14, n_c: int = 128,
                        dist: str = "uniform", k_min: int = 128, size: int = 4) -> dict:
    """Max relative error against K = k_min, 2·k_min, ..., k_max, without promotion and
    with promotion every n_c, in one pass: the sum over K products is the running sum of
    the first K products of one k_max-long row (size×size outputs; fast for a slider)."""
    k_min = validate.integer("k_min", k_min, 32, 65536)
    k_max = validate.integer("k_max", k_max, k_min, 65536)
    size = validate.integer("size", size, 1, 64)
    ks = [k_min * 2**i for i in range(int(np.log2(k_max // k_min)) + 1)]
    a, b = random_operands(size, size, ks[-1], dist)
    products = (a[:, None, :] * b[None, :, :]).reshape(size * size, ks[-1])
    promote = torch.arange(2 * size * size) >= size * size  # second copy is promoted
    run = running_sums(torch.cat([products, products]), mant_bits, n_c, promote)
    exact = products.cumsum(1)
    curves = {}
    for name, rows in (("none", run[: size * size]), ("promoted", run[size * size:])):
        errs = [((rows[:, k // 32 - 1] - exact[:, k - 1]).abs().max()
                 / exact[:, k - 1].abs().max()).item() for k in ks]
        curves[name] = np.array(errs)
    return {"ks": ks, **curves}


def linear_gemm_errors(in_features: int = 256, out_features: int = 512, tokens: int = 64,
                       seed: int = 0) -> dict:
    """Relative error (‖·‖ norm) of an FP8Linear's Fprop, Dgrad and Wgrad outputs against
    the same layer computed in FP32, for random inputs and output gradients."""
    for name, x in (("in_features", in_features), ("out_features", out_features),
                    ("tokens", tokens)):
        validate.integer(name, x, 1, 8192)
    g = torch.Generator().manual_seed(validate.integer("seed", seed, 0, 2**63 - 1))
    layer = fp8.FP8Linear(in_features, out_features)
    w = torch.randn(out_features, in_features, generator=g) * 0.02
    layer.weight.data.copy_(w)
    x = torch.randn(tokens, in_features, generator=g).requires_grad_()
    grad = torch.randn(tokens, out_features, generator=g)
    y = layer(x)
    y.backward(grad)
    exact = {"Fprop  y = x Wᵀ": x.detach() @ w.t(), "Dgrad dx = dy W": grad @ w,
             "Wgrad dW = dyᵀ x": grad.t() @ x.detach()}
    got = [y.detach(), x.grad, layer.weight.grad]
    return {k: ((v - e).norm() / e.norm()).item() for (k, e), v in zip(exact.items(), got)}


# ----------------------------------------------------------------- the real GEMM on a GPU


def fp8_gemm_supported() -> bool:
    """True on a CUDA GPU with FP8 tensor cores (compute capability 8.9+: Ada, Hopper)."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


def scaled_mm_fn(a: torch.Tensor, b: torch.Tensor):
    """Quantize a (M, K) and b (K, N) to E4M3 with one scale each and return a function
    that runs torch._scaled_mm on them: () -> A B (M, N) in BF16, scales applied."""
    qa, sa = fp8.quantize(a, "e4m3")
    qb, sb = fp8.quantize(b.t().contiguous(), "e4m3")  # _scaled_mm wants B column-major
    return lambda: torch._scaled_mm(qa, qb.t(), scale_a=sa, scale_b=sb,
                                    out_dtype=torch.bfloat16)


def gemm_benchmark(n: int = 8192, repeats: int = 20, seed: int = 0) -> dict:
    """Time an n×n×n GEMM in BF16 (torch.matmul) and FP8 E4M3 (torch._scaled_mm, per-tensor
    scales, BF16 output); return TFLOP/s, speed-up and each one's error vs FP32."""
    if not fp8_gemm_supported():
        raise RuntimeError("The FP8 GEMM needs a CUDA GPU with FP8 tensor cores "
                           "(compute capability 8.9+, e.g. H100/H200); none is visible here.")
    n = validate.integer("n", n, 16, 65536)
    repeats = validate.integer("repeats", repeats, 1, 10_000)
    if n % 16:
        raise ValueError("n must be a positive multiple of 16 for the FP8 tensor cores.")
    g = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn(n, n, device="cuda", generator=g)
    b = torch.randn(n, n, device="cuda", generator=g)
    reference = a @ b
    run_fp8 = scaled_mm_fn(a, b)
    a16, b16 = a.bfloat16(), b.bfloat16()
    t8, t16 = (timing.mean_seconds(fn, repeats, device="cuda")
               for fn in (run_fp8, lambda: a16 @ b16))

    def rel(x):
        return ((x.float() - reference).norm() / reference.norm()).item()

    flops = 2 * n**3
    return {"n": n, "fp8_tflops": flops / t8 / 1e12, "bf16_tflops": flops / t16 / 1e12,
            "speedup": t16 / t8, "fp8_error": rel(run_fp8()), "bf16_error": rel(a16 @ b16)}
