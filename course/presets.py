"""Every size the course runs at, in one place: a toy preset (CPU, seconds) and a
realistic preset (CUDA, DeepSeek-V3 widths). Notebooks and `course.bench` read sizes
from here through `preset(name)`, never from literals.

Each entry is owned by the notebook named in its comment; edit only your own entry.
"""

from __future__ import annotations

from course import device

PRESETS: dict[str, dict[str, dict]] = {
    # 01 · one transformer block timed at DeepSeek-V3 width (7168, 128 heads).
    "block": {
        "toy": dict(d_model=128, n_heads=4, d_ff=344, seq_len=256, batch=2),
        "realistic": dict(d_model=7168, n_heads=128, d_ff=18432, seq_len=4096, batch=1),
    },
    # 01, 08-12, 14 · the course's one tiny language model (course.model). It is a
    # laptop-scale teaching model and `course.train.train_lm` runs it on the CPU, so both
    # presets are the same; each notebook's realistic-size computation has its own entry.
    "tiny_lm": {
        "toy": dict(d_model=64, n_layers=2, n_heads=4, seq_len=32, batch=32, steps=300, lr=3e-3),
        "realistic": dict(d_model=64, n_layers=2, n_heads=4, seq_len=32, batch=32, steps=300,
                          lr=3e-3),
    },
    # 02 · forward vs backward of an MLP (DeepSeek-V3 dense MLP width on CUDA).
    "mlp": {
        "toy": dict(d_model=256, d_ff=1024, tokens=512),
        "realistic": dict(d_model=7168, d_ff=18432, tokens=4096),
    },
    # 05 · the matmul used to measure this machine's peak.
    "matmul": {
        "toy": dict(n=512, d_model=256, d_ff=1024, n_layers=2, tokens=512),
        "realistic": dict(n=8192, d_model=4096, d_ff=16384, n_layers=4, tokens=8192),
    },
    # 05, 11 · the learner's roofline (course.roofline.measure_machine): square matmuls for
    # the peak, a copy larger than any CPU cache for the bandwidth, matmuls of growing
    # token count against one (k, k) weight as the measured points.
    "roofline": {
        "toy": dict(peak_ns=(256, 512, 1024), copy_mib=64, skinny_k=4096,
                    skinny_m=(1, 4, 16, 64), repeats=3),
        "realistic": dict(peak_ns=(2048, 4096, 8192), copy_mib=2048, skinny_k=8192,
                          skinny_m=(1, 16, 64, 256, 1024, 4096), repeats=10),
    },
    # 07 · micro-batches timed through one block of the tiny model for the pipeline simulator.
    "pipeline": {
        "toy": dict(batch=16, seq_len=64, repeats=9),
        "realistic": dict(batch=8, seq_len=1024, repeats=20),
    },
    # 06 · real gloo collectives timed between CPU processes, and the DiLoCo toy run.
    "gloo": {
        "toy": dict(world_size=2, sizes=(2**12, 2**15, 2**18, 2**20, 2**23), repeats=5),
        "realistic": dict(world_size=4, sizes=(2**12, 2**15, 2**18, 2**20, 2**22, 2**24),
                          repeats=10),
    },
    "diloco": {
        "toy": dict(replicas=4, steps=240, d_in=8, width=32, batch=32),
        "realistic": dict(replicas=8, steps=960, d_in=32, width=128, batch=128),
    },
    # 08-09 · MoE training runs (course.moe.train). Toy: one MoE layer after one dense
    # layer, Switch-style top-1 softmax routing over 16 experts, no shared expert: the
    # setting where rich-get-richer collapse shows within 150 steps on a CPU.
    "moe": {
        "toy": dict(n_experts=16, top_k=1, score_func="softmax", n_shared=0, n_dense_layers=1,
                    batch=16, steps=150),
        # train_lm runs on the CPU under both presets (see "tiny_lm"): same sizes. The
        # realistic MoE work is "moe_layer" below.
        "realistic": dict(n_experts=16, top_k=1, score_func="softmax", n_shared=0,
                          n_dense_layers=1, batch=16, steps=150),
    },
    # 08-09 · DeepSeek-V3's router and one MoE layer on a large batch.
    "moe_layer": {
        "toy": dict(d_model=128, n_experts=16, top_k=4, n_groups=4, topk_groups=2,
                    moe_inter_dim=64, tokens=1024),
        "realistic": dict(d_model=7168, n_experts=256, top_k=8, n_groups=8, topk_groups=4,
                          moe_inter_dim=2048, tokens=8192),
    },
    # 03 · one MoE layer's training step measured against the memory calculator
    # (realistic: DeepSeek-V3 widths, 16 of its 256 experts so one GPU holds the step).
    "moe_memory": {
        "toy": dict(d=64, n_experts=8, top_k=2, inter=32, n_shared=1, tokens=256),
        "realistic": dict(d=7168, n_experts=16, top_k=8, inter=2048, n_shared=1, tokens=4096),
    },
    # 10 · FP8 GEMM.
    "fp8_gemm": {
        "toy": dict(n=256, repeats=3, train_steps=150),
        "realistic": dict(n=8192, repeats=20, train_steps=150),
    },
    # 12 · MTP: training steps and sequences per step per (lambda, depth), and the prompts
    # speculative decoding runs on (the widget decodes `widget_prompts` of them). Toy: 80
    # steps of 12 sequences, so that a widget move that trains a new model finishes well
    # within 5 s on one core (depth 2: 2.3-2.8 s of training + 0.5 s of decoding; 3.5 s +
    # 0.5 s at 100 steps). Held-out loss 1.06 without MTP against 0.97 at 100 steps; the
    # study's findings hold (assets/runs/mtp_acceptance.json: any lambda > 0 lifts the
    # draft to about 90 %, lambda = 1 lowers the main loss at every seed).
    "mtp": {
        "toy": dict(steps=80, batch=12, prompts=16, prompt_len=6, new_tokens=30,
                    widget_prompts=8),
        "realistic": dict(steps=2000, batch=16, prompts=64, prompt_len=8, new_tokens=64,
                          widget_prompts=16),
    },
    # 11 · MLA decode at long context.
    "mla_decode": {
        "toy": dict(d_model=128, n_heads=8, q_lora_rank=0, kv_lora_rank=32,
                    qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                    contexts=(256, 1024, 4096), batch=4, repeats=15, batches=(1, 4, 16)),
        "realistic": dict(d_model=7168, n_heads=128, q_lora_rank=1536, kv_lora_rank=512,
                          qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
                          contexts=(1024, 8192, 32768), batch=1, repeats=10, batches=(1, 2, 4)),
    },
    # 14 · the tiny DeepSeek (MLA + MoE with bias balancing + FP8 + MTP) and its ablation.
    # Toy: FP8 is emulated on the CPU (~4x slower than FP32), so each of the 6 ablation
    # runs is short: 100 steps of 8 x 32 tokens.
    "tiny_deepseek": {
        "toy": dict(d_model=64, n_layers=2, n_heads=4, seq_len=32, q_lora_rank=0,
                    kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                    n_routed_experts=8, n_shared_experts=1, experts_per_token=2,
                    moe_inter_dim=32, n_groups=4, topk_groups=2, bias_gamma=0.01,
                    aux_alpha=0.01, mtp_depth=1, mtp_lambda=0.3,
                    steps=100, batch=8, lr=6e-3, warmup=10, prompts=8, new_tokens=16),
        # train_lm runs on the CPU under both presets (see "tiny_lm"): same sizes.
        "realistic": dict(d_model=64, n_layers=2, n_heads=4, seq_len=32, q_lora_rank=0,
                          kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8,
                          v_head_dim=16, n_routed_experts=8, n_shared_experts=1,
                          experts_per_token=2, moe_inter_dim=32, n_groups=4, topk_groups=2,
                          bias_gamma=0.01, aux_alpha=0.01, mtp_depth=1, mtp_lambda=0.3,
                          steps=100, batch=8, lr=6e-3, warmup=10, prompts=8, new_tokens=16),
    },
    # 16 · imitation and reinforcement (course.rl): the task model (teacher), the smaller
    # student for distillation, SFT and GRPO settings. CPU-sized under both presets (the
    # task is a 13-word toy; a GPU would not change what it teaches). 120 SFT and 40 GRPO
    # steps: a slider move trains SFT in about 2.4 s or GRPO in about 2 s on one core (3.7 s
    # and 3.1 s at 200 and 60 steps); SFT's accuracy has levelled off by then and GRPO has
    # made most of its gain (held-out 56 % -> 90 %, seed 0). The three-seed findings hold
    # (assets/runs/rl_compare.json).
    "rl": {
        "toy": dict(model=dict(d_model=64, n_layers=2, n_heads=4),
                    student=dict(d_model=32, n_layers=1, n_heads=2),
                    n_terms=3, n_demos=2000, sft_steps=120, sft_batch=64, sft_lr=3e-3,
                    grpo_steps=40, group=8, prompts_per_step=8, grpo_lr=3e-4, inner_steps=2,
                    eval_prompts=200, pass_n=16),
        "realistic": dict(model=dict(d_model=64, n_layers=2, n_heads=4),
                          student=dict(d_model=32, n_layers=1, n_heads=2),
                          n_terms=3, n_demos=2000, sft_steps=120, sft_batch=64, sft_lr=3e-3,
                          grpo_steps=40, group=8, prompts_per_step=8, grpo_lr=3e-4,
                          inner_steps=2, eval_prompts=200, pass_n=16),
    },
    # 15 · the toy server (course.serving): a seeded request stream served by the tiny
    # DeepSeek (FP32 variant) on the CPU under both presets; V3 serving is on paper.
    "serving": {
        "toy": dict(n_requests=32, rate=40.0, prefix_share=0.5, prefix_len=32, prompt_min=2,
                    prompt_max=6, output_min=4, output_max=20, max_batch=8,
                    budget_tokens=512),
        "realistic": dict(n_requests=32, rate=40.0, prefix_share=0.5, prefix_len=32,
                          prompt_min=2, prompt_max=6, output_min=4, output_max=20,
                          max_batch=8, budget_tokens=512),
    },
}


def preset(name: str, size: str | None = None) -> dict:
    """The sizes of `name` at the current (or given) size preset, as a fresh dict."""
    if name not in PRESETS:
        raise ValueError(f"No preset named {name!r}; known: {', '.join(sorted(PRESETS))}.")
    chosen = size or device.size()
    if chosen not in device.SIZES:
        raise ValueError(f"size must be one of {', '.join(device.SIZES)}, not {chosen!r}.")
    return dict(PRESETS[name][chosen])
