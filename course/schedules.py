"""Per-device programs of the pipeline schedules that `course.pipeline.simulate` runs.

A program is the ordered list of operations one device executes; the simulator (not this
module) decides *when* each starts, from the data dependencies. An operation is a tuple
`(kind, tasks)`: `kind` is "F", "B" (full backward), "Bi" (input-gradient part only),
"W" (weight-gradient part) or "F&B" (a forward and a full backward run overlapped), and
each task is `(chain, pos, m, part)`: micro-batch `m` of pipeline `chain` at position
`pos` along it, `part` in "F", "B", "W".

Orders follow: GPipe (Huang et al. 2019), 1F1B (PipeDream-flush / Megatron-LM), interleaved
1F1B (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters
Using Megatron-LM" §2.2.2; the order of Megatron-LM's
`forward_backward_pipelining_with_interleaving`), ZB-H1
(Qi et al. 2023, "Zero Bubble Pipeline Parallelism" §3.1) and DualPipe, transcribed from
the eight phases of `DualPipe.step` in deepseek-ai/DualPipe `dualpipe/dualpipe.py`
(and the DeepSeek-V3 report §3.2.1, Fig. 5). Communication is not modelled here: sends
are taken as immediate.
"""

from __future__ import annotations

from collections import deque

from course import validate

Op = tuple  # (kind, tuple of tasks)


def one_direction(schedule: str, stages: int, microbatches: int, split: bool) -> list[list[Op]]:
    """Programs for GPipe, 1F1B and ZB-H1: one pipeline (chain 0), stage i on device i."""
    validate.choice("one-direction schedule", schedule, ("gpipe", "1f1b", "zb1p"))
    stages, microbatches = _sizes(stages, microbatches)
    programs = []
    for i in range(stages):
        if schedule == "gpipe":
            ops = [("F", m) for m in range(microbatches)] + [("B", m) for m in range(microbatches)]
        else:
            ops = _one_f_one_b(stages, microbatches, i)
        # ZB-H1: stage i runs W of micro-batch m after B of m + i, so the later stages, whose
        # 1F1B cool-down would end first, keep W work to do while the gradients of the last
        # micro-batch travel back to stage 0.
        delay = i if schedule == "zb1p" else 0
        programs.append(_with_weights(ops, i, microbatches, split, delay))
    return programs


def _sizes(stages, microbatches) -> tuple[int, int]:
    return (validate.positive_int("stages", stages),
            validate.positive_int("microbatches", microbatches))


def _one_f_one_b(stages: int, microbatches: int, i: int) -> list[tuple[str, int]]:
    warmup = min(stages - 1 - i, microbatches)
    ops = [("F", m) for m in range(warmup)]
    for k in range(microbatches - warmup):  # steady state: one forward, one backward
        ops += [("F", warmup + k), ("B", k)]
    ops += [("B", m) for m in range(microbatches - warmup, microbatches)]  # cool-down
    return ops


def _with_weights(ops, i: int, microbatches: int, split: bool, delay: int) -> list[Op]:
    out, done_w = [], 0
    for kind, m in ops:
        if kind == "F":
            out.append(("F", ((0, i, m, "F"),)))
            continue
        out.append(("Bi" if split else "B", ((0, i, m, "B"),)))
        if split and m - delay >= 0:
            out.append(("W", ((0, i, m - delay, "W"),)))
            done_w = m - delay + 1
    if split:
        out += [("W", ((0, i, m, "W"),)) for m in range(done_w, microbatches)]
    return out


def interleaved(stages: int, microbatches: int, virtual: int) -> list[list[Op]]:
    """Programs of interleaved 1F1B: the model is cut into `stages * virtual` chunks and
    chunk k (position k along chain 0) sits on device k % stages, so device d holds chunks
    d, d + PP, d + 2PP, ... A device takes micro-batches in groups of PP: the forwards of a
    group through its first chunk, then through its second, and so on (backwards in the
    reverse chunk order). Warm-up: 2(PP - d - 1) + (v - 1)PP forwards (Megatron-LM), then
    one forward, one backward. v = 1 is plain 1F1B. Micro-batches that are not a multiple
    of PP leave a partial group; `course.pipeline.simulate` refuses them, as the paper does
    (this order can then deadlock)."""
    stages, microbatches = _sizes(stages, microbatches)
    virtual = validate.positive_int("virtual", virtual)
    groups = [range(g, min(g + stages, microbatches)) for g in range(0, microbatches, stages)]
    fwd = [(c, m) for grp in groups for c in range(virtual) for m in grp]
    bwd = [(c, m) for grp in groups for c in reversed(range(virtual)) for m in grp]
    total = len(fwd)
    programs = []
    for d in range(stages):
        if virtual == 1:  # plain 1F1B
            warmup = min(stages - d - 1, total)
        elif microbatches == stages:  # Megatron-LM: one group only, all forwards first
            warmup = total
        else:
            warmup = min(2 * (stages - d - 1) + (virtual - 1) * stages, total)
        order = [("F", x) for x in fwd[:warmup]]
        for k in range(total - warmup):
            order += [("F", fwd[warmup + k]), ("B", bwd[k])]
        order += [("B", x) for x in bwd[total - warmup:]]
        programs.append([(kind, ((0, c * stages + d, m, kind),)) for kind, (c, m) in order])
    return programs


class _DualPipeRank:
    """Builds one rank's program the way `DualPipe.step` walks it: each call takes the next
    micro-batch of a direction; deferred weight-gradient work waits in a FIFO queue
    (the reference's `WeightGradStore`)."""

    def __init__(self, where: tuple, split: bool):
        self.where, self.split = where, split  # phase -> (chain, position)
        self.next_f, self.next_b = [0, 0], [0, 0]
        self.queue: deque = deque()
        self.ops: list[Op] = []

    def _task(self, phase: int, counter: list, part: str) -> tuple:
        m = counter[phase]
        counter[phase] += 1
        return (*self.where[phase], m, part)

    def forward(self, phase: int) -> None:
        self.ops.append(("F", (self._task(phase, self.next_f, "F"),)))

    def backward(self, phase: int, zb: bool = False) -> None:
        task = self._task(phase, self.next_b, "B")
        if zb and self.split:
            self.queue.append(task[:3] + ("W",))
            self.ops.append(("Bi", (task,)))
        else:
            self.ops.append(("B", (task,)))

    def weight(self) -> None:
        if self.queue:  # with w = 0 nothing was deferred: the W step has nothing to do
            self.ops.append(("W", (self.queue.popleft(),)))

    def forward_backward(self, phase0: int, phase1: int) -> None:
        f = self._task(phase0, self.next_f, "F")
        b = self._task(phase1, self.next_b, "B")
        self.ops.append(("F&B", (f, b)))


def dualpipe(stages: int, microbatches: int, split: bool) -> list[list[Op]]:
    """Programs of DualPipe on `stages` ranks; `microbatches` counts both directions. Rank i
    is position i of direction 0 and, as direction 1 enters at the last rank, position
    PP-1-i of direction 1: it holds model stages i and PP-1-i."""
    stages, microbatches = _sizes(stages, microbatches)
    if stages % 2 or microbatches % 2 or microbatches < 2 * stages:
        raise ValueError("DualPipe needs an even number of stages and an even number of "
                         "micro-batches, at least 2 x stages.")
    programs = []
    for rank in range(stages):
        where = ((0, rank), (1, stages - 1 - rank))
        if rank >= stages // 2:  # the reference's `phase ^= self.is_in_second_half`
            where = where[::-1]
        r = min(rank, stages - 1 - rank)  # half_rank
        programs.append(_eight_steps(_DualPipeRank(where, split), stages // 2, r,
                                     microbatches // 2))
    return programs


def dualpipev(stages: int, microbatches: int, split: bool) -> list[list[Op]]:
    """Programs of DualPipeV (`dualpipev.py`): `stages // 2` devices, device i holds stages
    i and PP-1-i of one V-shaped pipeline; every micro-batch enters and leaves at device 0."""
    stages, microbatches = _sizes(stages, microbatches)
    if stages % 2 or microbatches < stages:
        raise ValueError("DualPipeV needs an even number of stages and at least as many "
                         "micro-batches as stages.")
    n = stages // 2
    return [_eight_steps(_DualPipeRank(((0, i), (0, stages - 1 - i)), split), n, i,
                         microbatches) for i in range(n)]


def _eight_steps(p: _DualPipeRank, h: int, r: int, half_chunks: int) -> list[Op]:
    """The eight steps of `DualPipe.step`; DualPipeV runs them with h = devices, r = rank
    and all chunks in place of half of them (deepseek-ai/DualPipe `dualpipe/dualpipev.py`)."""
    middle = r == h - 1
    for _ in range(2 * (h - r - 1)):  # Step 1: nF0
        p.forward(0)
    for _ in range(r + 1):  # Step 2: nF0F1
        p.forward(0)
        p.forward(1)
    for _ in range(h - r - 1):  # Step 3: nB1W1F1 (zero bubble)
        p.backward(1, zb=True)
        p.weight()
        p.forward(1)
    for i in range(half_chunks - 2 * h + r + 1):  # Step 4 (main step): nF0B1F1B0
        if i == 0 and middle:  # subtle: the reference does not overlap this pair
            p.forward(0)
            p.backward(1)
        else:
            p.forward_backward(0, 1)
        p.forward_backward(1, 0)
    for _ in range(h - r - 1):  # Step 5: nB1F1B0
        p.backward(1)
        p.forward_backward(1, 0)
    zb = False
    for i in range(r + 1):  # Step 6: nB1B0, the second half with zero bubble
        zb = zb or (i == (r + 1) // 2 and r % 2 == 1)
        p.backward(1, zb)
        zb = zb or (i == (r + 1) // 2 and r % 2 == 0)
        p.backward(0, zb)
    for _ in range(h - r - 1):  # Step 7: nWB0 (zero bubble)
        p.weight()
        p.backward(0, zb=True)
    for _ in range(r + 1):  # Step 8: nW
        p.weight()
    return p.ops
