"""DeepSeek-V3 served on paper (notebook 15, `course.serving`): one H800 of DeepSeek's
decode layout (EP144: attention and shared expert data-parallel, 2 routed-expert slots per
GPU) at a batch of requests per GPU, with a roofline step time (weights and KV cache over
HBM, FP8 matmuls and BF16 attention over the tensor cores, the all-to-all over
InfiniBand), compared with the published ~14.8k output tokens/s per node (`v3_decode`);
prefill against ~73.7k (`v3_prefill`). Source: DeepSeek, "Day 6: DeepSeek-V3/R1 Inference
System Overview" (open-source week, 2025-03-01).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from course.serving_economics import PUBLISHED

#: Day 6 overview: the decode and prefill deployment units.
DECODE_LAYOUT = dict(nodes=18, gpus=144, routed_slots_per_gpu=2, redundant=32)
PREFILL_LAYOUT = dict(nodes=4, gpus=32, routed_slots_per_gpu=9, redundant=32)


@dataclass(frozen=True)
class V3Step:
    """One decode step on one GPU of the decode unit, times in seconds."""

    batch: int  # requests on this GPU (data-parallel attention)
    context: int  # cached tokens per request
    weight_s: float  # non-routed weights + this GPU's routed experts, read once
    kv_s: float  # every request's latent cache, read once
    matmul_s: float  # 2 x active params x batch, FP8 tensor cores
    attention_s: float  # core MLA (absorbed) over the context, BF16 tensor cores
    comm_s: float  # all-to-all dispatch (FP8) + combine (BF16) over InfiniBand
    overlap: bool  # communication hidden behind computation (two micro-batches)

    @property
    def gpu_s(self) -> float:
        """Roofline of the GPU work: the slower of memory and compute."""
        return max(self.weight_s + self.kv_s, self.matmul_s + self.attention_s)

    @property
    def seconds(self) -> float:
        return max(self.gpu_s, self.comm_s) if self.overlap else self.gpu_s + self.comm_s

    @property
    def tokens_per_s_per_node(self) -> float:
        return 8 * self.batch / self.seconds

    @property
    def tokens_per_s_per_request(self) -> float:
        return 1 / self.seconds


@lru_cache(maxsize=4)
def _v3_parts(gpu_name: str, kv_dtype_bytes: float) -> dict:
    """DeepSeek-V3's per-GPU constants for the decode unit (cached: configs parse once)."""
    from course import kvcache
    from course.configs import gpu, load_config
    from course.memory import ffn_params, param_count

    cfg, spec = load_config("deepseek-v3"), gpu(gpu_name)
    pc = param_count(cfg)
    resident = sum(pc.by_part[k] for k in ("attention", "dense_mlp", "shared_experts",
                                           "router", "norms", "output_head"))
    routed = (DECODE_LAYOUT["routed_slots_per_gpu"] * cfg.n_moe_layers
              * ffn_params(cfg.hidden_size, cfg.moe_intermediate_size))
    return dict(cfg=cfg, resident=resident, routed=routed, hbm=spec.hbm_tb_s * 1e12,
                fp8=spec.peak_tflops("fp8") * 1e12, bf16=spec.peak_tflops("bf16") * 1e12,
                active=pc.active_without_embedding,
                kv_per_token=kvcache.kv_bytes_per_token(cfg, kv_dtype_bytes))


def v3_decode(batch: int, context: int = 4989, gpu_name: str = "H800", overlap: bool = False,
              weight_bytes: float = 1.0, kv_dtype_bytes: float = 2.0,
              ib_gb_s: float | None = None) -> V3Step:
    """A roofline decode step for one GPU of DeepSeek's decode unit (EP144, DP144).

    Assumes: every request at the same `context` (default: the published average KV
    length per output token, 4,989); the GPU holds all non-routed weights (attention,
    dense layers, shared expert, router, output head) and 2 routed-expert slots per MoE
    layer, all in FP8 (`weight_bytes`); the latent cache in BF16; datasheet peaks
    (FP8 for matmuls, BF16 for attention) and HBM bandwidth reached exactly; EPLB's
    perfect balance; each token's 8 routed experts on other GPUs, reached directly over
    InfiniBand (decoding sends point to point, report 3.4.2), with the course's one byte
    model (`expert_traffic.ep_traffic`: FP8 dispatch with its scales, BF16 combine) over
    `ib_gb_s` (50 GB/s per GPU, V3 report 3.2.2); no MTP speculation."""
    from course import kvcache
    from course.configs import DEEPSEEK_IB_GB_S
    from course.expert_traffic import ep_traffic

    if int(batch) != batch or batch < 1 or context < 1:
        raise ValueError("batch and context must be at least 1.")
    c = _v3_parts(gpu_name, float(kv_dtype_bytes))
    cfg = c["cfg"]
    attn = batch * kvcache.attention_flops_per_token(cfg, context, "absorbed")
    ib = (ib_gb_s or DEEPSEEK_IB_GB_S) * 1e9
    per_token = ep_traffic(cfg.experts_per_token, cfg.hidden_size).total_bytes
    comm = cfg.n_moe_layers * batch * per_token / ib
    return V3Step(int(batch), int(context), (c["resident"] + c["routed"]) * weight_bytes
                  / c["hbm"], batch * context * c["kv_per_token"] / c["hbm"],
                  2 * c["active"] * batch / c["fp8"], attn / c["bf16"], comm, overlap)


def v3_decode_curve(batches, **kw) -> dict:
    """Tokens/s per node and per request against requests per GPU, without and with
    overlap of the all-to-all."""
    out = {}
    for overlap in (False, True):
        steps = [v3_decode(int(b), overlap=overlap, **kw) for b in batches]
        out["overlap" if overlap else "serial"] = dict(
            per_node=[s.tokens_per_s_per_node for s in steps],
            per_request=[s.tokens_per_s_per_request for s in steps])
    out["batches"] = [int(b) for b in batches]
    return out


def v3_prefill(context: int = 2500, efficiency: float = 1.0, cache_hit: float | None = None,
               gpu_name: str = "H800") -> dict:
    """Input tokens/s per node in DeepSeek's prefill unit, compute-bound.

    A computed prompt token costs 2 x active params (FP8) plus attention over `context`
    earlier tokens (BF16, keys and values expanded per head as prefill does: the "mha"
    path of `course.kvcache`); the tensor cores run at `efficiency` x datasheet peak.
    Cache hits (`cache_hit`, default the published 56.3%) cost no compute but count as
    input tokens, as in the published ~73.7k. Returns the rates and the efficiency the
    published figure implies under the same assumptions."""
    from course import kvcache
    from course.configs import gpu, load_config
    from course.memory import param_count

    if context < 1 or not 0 < efficiency <= 1:
        raise ValueError("context must be at least 1 and efficiency in (0, 1].")
    hit = PUBLISHED["cache_hit_tokens"] / PUBLISHED["input_tokens"] if cache_hit is None \
        else cache_hit
    if not 0 <= hit < 1:
        raise ValueError(f"The cache-hit share must be in [0, 1), not {hit}.")
    cfg, spec = load_config("deepseek-v3"), gpu(gpu_name)
    matmul = 2 * param_count(cfg).active_without_embedding / (spec.peak_tflops("fp8") * 1e12)
    attn = kvcache.attention_flops_per_token(cfg, context, "mha") / (
        spec.peak_tflops("bf16") * 1e12)
    seconds = (matmul + attn) / efficiency  # per computed token, per GPU
    computed = 8 / seconds
    published_computed = PUBLISHED["prefill_tokens_per_s_per_node"] * (1 - hit)
    return dict(computed_per_node=computed, input_per_node=computed / (1 - hit),
                cache_hit=hit, matmul_s=matmul, attention_s=attn,
                implied_efficiency=published_computed * (matmul + attn) / 8)
