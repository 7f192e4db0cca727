"""A real 1F1B pipeline on CPU processes (notebook 07): each gloo rank holds one block of
the course's tiny model and runs the same 1F1B program the simulator runs, sending
activations forward and gradients backward with torch.distributed point-to-point calls.

Every rank records when each forward and backward computed; `run_1f1b` returns those as
a `Timeline`, so the measured idle time per rank can sit beside the simulator's. Left out:
the optimizer step, the embedding and the output head (the last rank's loss is the mean
square of its output).
"""

from __future__ import annotations

import time

from course import pipeline, schedules
from course.distributed import run_workers


def _micro_batch(m: int, shape: tuple, seed: int):
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(seed * 10_007 + m))


def _stage(rank: int, world: int, microbatches: int, batch: int, seq_len: int,
           seed: int) -> list[tuple]:
    """One rank's 1F1B step; returns (kind, micro-batch, start, end) in perf_counter seconds."""
    import torch
    import torch.distributed as dist

    from course.model import make_block
    from course.train import tiny_config

    torch.manual_seed(seed)
    cfg = tiny_config()
    block = make_block(cfg, rank)
    shape = (batch, seq_len, cfg.d_model)
    saved, pending, events = {}, [], []
    program = schedules.one_direction("1f1b", world, microbatches, split=False)[rank]
    for _ in range(2):  # warm up (a first backward with a given gradient is slow), line up
        y = block(torch.randn(shape, requires_grad=True))[0]
        y.backward(torch.randn(shape))
    block.zero_grad()
    dist.barrier()
    for kind, ((_, _, m, _),) in program:
        if kind == "F":
            x = _micro_batch(m, shape, seed) if rank == 0 else _recv(shape, rank - 1)
            x.requires_grad_(True)
            start = time.perf_counter()
            y = block(x)[0]
            events.append(("F", m, start, time.perf_counter()))
            saved[m] = (x, y)
            if rank < world - 1:
                pending.append(_send(y.detach(), rank + 1))
        else:
            x, y = saved.pop(m)
            grad = None if rank == world - 1 else _recv(shape, rank + 1)
            start = time.perf_counter()
            if grad is None:  # the last stage turns its output into a loss
                y.pow(2).mean().backward()
            else:
                y.backward(grad)
            events.append(("B", m, start, time.perf_counter()))
            if rank > 0:
                pending.append(_send(x.grad, rank - 1))
    for work, _ in pending:
        work.wait()
    return events


def _recv(shape: tuple, src: int):
    import torch
    import torch.distributed as dist

    buf = torch.empty(shape)
    dist.recv(buf, src)
    return buf


def _send(tensor, dst: int) -> tuple:
    import torch.distributed as dist

    return dist.isend(tensor.contiguous(), dst), tensor  # keep the tensor alive until sent


def run_1f1b(stages: int, microbatches: int, batch: int, seq_len: int, seed: int = 0,
             timeout_s: float = 120.0) -> pipeline.Timeline:
    """Run one real 1F1B step on `stages` gloo processes; times in milliseconds from the
    first rank's first operation."""
    if not 2 <= stages <= 8:
        raise ValueError("A real pipeline here needs between 2 and 8 processes.")
    if microbatches < 1 or batch < 1 or seq_len < 1:
        raise ValueError("microbatches, batch and seq_len must be at least 1.")
    per_rank = run_workers(_stage, stages, microbatches, batch, seq_len, seed,
                           timeout_s=timeout_s)
    t0 = min(start for events in per_rank for _, _, start, _ in events)
    events = [pipeline.Event(rank, kind, m, (start - t0) * 1e3, (end - t0) * 1e3, rank)
              for rank, evs in enumerate(per_rank) for kind, m, start, end in evs]
    return pipeline.timeline_from_events("1f1b (real, gloo)", stages, microbatches, events,
                                         stages)


def median_times(timeline: pipeline.Timeline) -> dict:
    """Median forward and backward duration of a measured run, as simulator input (ms)."""
    import statistics

    return {k.lower(): statistics.median(e.end - e.start for e in timeline.events
                                         if e.kind == k) for k in ("F", "B")}
