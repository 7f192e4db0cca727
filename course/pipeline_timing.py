"""Where the simulator's F, B, W and F&B come from (notebook 07).

* `measure_chunk_times` times a real transformer block on this machine: the forward, the
  full backward, the input-gradient part alone (`torch.autograd.grad` on the input only,
  which skips the weight-gradient matmuls) and a forward of one micro-batch run
  concurrently with the backward of another (two CPU threads, or two CUDA streams).
* `overlap_pair` is a two-stream model of one DeepSeek-V3 chunk pair (§3.2.1, Fig. 4):
  attention and MLP on the compute stream, all-to-all dispatch and combine on the
  communication stream. The exact order of DeepSeek's pieces is shown only in their
  figure (DeepSeek-V3 report §3.2.1, Figure 4; not in its text): this is one plausible
  greedy arrangement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

import torch

from course import timing


@dataclass
class ChunkTimes:
    """Best-of-n seconds of one micro-batch through one block."""

    f: float  # forward
    b: float  # full backward: input and weight gradients
    b_input: float  # input-gradient part only
    fb: float  # forward of one micro-batch concurrently with the backward of another

    @property
    def w(self) -> float:
        """Weight-gradient part: what the full backward costs beyond the input part."""
        return max(self.b - self.b_input, 0.0)

    def for_simulator(self, unit: float = 1e-3) -> dict:
        """f, b, w, fb in `unit` seconds (default ms), fb kept inside [max(f, b), f + b]:
        timing noise can put a concurrent run a hair outside what is physically possible."""
        f, b, w = self.f / unit, self.b / unit, min(self.w, 0.95 * self.b) / unit
        return dict(f=f, b=b, w=w, fb=min(max(self.fb / unit, f, b), f + b))


def measure_chunk_times(block: torch.nn.Module, batch: int, seq_len: int, repeats: int = 7,
                        seed: int = 0) -> ChunkTimes:
    """Time F, B, B-input and F&B of `block` on micro-batches of shape (batch, seq_len, d).

    `block(x)` may return a tensor or a tuple whose first item is the output (course Block).
    On a CPU each stream gets one thread: the forward and the backward of F&B then run on
    two cores, like the two streams of a GPU, and busy machines do not thrash.
    """
    if batch < 1 or seq_len < 1 or repeats < 1:
        raise ValueError("batch, seq_len and repeats must be at least 1.")
    with timing.one_thread():
        return _measure(block, batch, seq_len, repeats, seed)


def _measure(block, batch: int, seq_len: int, repeats: int, seed: int) -> ChunkTimes:
    param = next(block.parameters())
    dev, dim = param.device, param.shape[-1]
    gen = torch.Generator(device=dev).manual_seed(seed)
    params = [p for p in block.parameters() if p.requires_grad]
    sync = timing.synchronizer(dev)

    def new_input() -> torch.Tensor:
        return torch.randn(batch, seq_len, dim, device=dev, generator=gen, requires_grad=True)

    def run(x: torch.Tensor) -> torch.Tensor:
        out = block(x)
        return out[0] if isinstance(out, tuple) else out

    x = new_input()
    grad_out = torch.randn_like(run(x))
    f = timing.best_seconds(lambda: run(x), repeats, sync=sync)
    b = _time_backward(_Graphs(run, new_input, repeats + 1), grad_out, params, repeats, sync,
                       weights=True)
    b_input = _time_backward(_Graphs(run, new_input, repeats + 1), grad_out, params, repeats,
                             sync, weights=False)
    side = torch.cuda.Stream(device=dev) if dev.type == "cuda" else None
    fb = _time_pair(run, new_input, grad_out, params, repeats, sync, side)
    return ChunkTimes(f=f, b=b, b_input=b_input, fb=fb)


class _Graphs:
    """Fresh forward graphs, built ahead so a backward timing holds only the backward."""

    def __init__(self, run, new_input, n: int):
        self.items = [(x, run(x)) for x in (new_input() for _ in range(n))]

    def next(self) -> tuple:
        return self.items.pop()


def _time_backward(graphs: _Graphs, grad_out, params, repeats, sync, weights: bool) -> float:
    def step():
        x, out = graphs.next()
        torch.autograd.grad(out, [x, *params] if weights else [x], grad_out)
    return timing.best_seconds(step, repeats, sync=sync)


def _time_pair(run, new_input, grad_out, params, repeats, sync, side=None) -> float:
    """A forward of a new micro-batch and the full backward of an older one, at once: the
    forward on a second thread (and, on a GPU, on a second CUDA stream)."""
    graphs = _Graphs(run, new_input, repeats + 1)

    def forward():
        if side is None:
            run(new_input())
            return
        with torch.cuda.stream(side):
            run(new_input())

    def step():
        x, out = graphs.next()
        other = threading.Thread(target=forward)
        other.start()
        torch.autograd.grad(out, [x, *params], grad_out)
        other.join()
    return timing.best_seconds(step, repeats, sync=sync)


class Piece(NamedTuple):
    stream: str  # "compute" or "comm"
    chunk: str  # "forward" or "backward"
    name: str
    start: float
    end: float


def chunk_pieces(attention: float, dispatch: float, mlp: float, combine: float,
                 backward_ratio: float = 2.0) -> dict[str, list[tuple]]:
    """The four components of a forward chunk and, in reverse, of a backward chunk, whose
    computation costs `backward_ratio` times more (its communication moves as many bytes)."""
    if min(attention, dispatch, mlp, combine) < 0 or backward_ratio <= 0:
        raise ValueError("Component times must not be negative and backward_ratio positive.")
    k = backward_ratio
    return {"forward": [("compute", "attention", attention), ("comm", "dispatch", dispatch),
                        ("compute", "MLP", mlp), ("comm", "combine", combine)],
            "backward": [("comm", "combine", combine), ("compute", "MLP", k * mlp),
                         ("comm", "dispatch", dispatch), ("compute", "attention", k * attention)]}


def overlap_pair(attention: float = 1.0, dispatch: float = 1.0, mlp: float = 1.0,
                 combine: float = 1.0, backward_ratio: float = 2.0,
                 overlap: bool = True) -> list[Piece]:
    """Schedule a forward chunk and a backward chunk (of another micro-batch) on two streams.

    Each component waits for the previous component of its own chunk and for its stream.
    `overlap=False` runs the whole forward, then the whole backward. Returns the pieces.
    """
    chains = chunk_pieces(attention, dispatch, mlp, combine, backward_ratio)
    if not overlap:
        chains = {"forward": chains["forward"] + [None] + chains["backward"]}
    free = {"compute": 0.0, "comm": 0.0}
    ready = {c: 0.0 for c in chains}
    nxt = {c: 0 for c in chains}
    pieces, chunk_of = [], "forward"
    while any(nxt[c] < len(chains[c]) for c in chains):
        # Greedy: start whichever next component can start first (backward wins ties).
        options = [(max(free[chains[c][nxt[c]][0]], ready[c]) if chains[c][nxt[c]] else
                    ready[c], c != "backward", c) for c in chains if nxt[c] < len(chains[c])]
        start, _, c = min(options)
        item = chains[c][nxt[c]]
        nxt[c] += 1
        if item is None:  # the boundary between the two chunks in the sequential run
            chunk_of = "backward"
            continue
        stream, name, dur = item
        end = start + dur
        free[stream], ready[c] = end, end
        pieces.append(Piece(stream, c if overlap else chunk_of, name, start, end))
    return pieces


def pair_time(pieces: list[Piece]) -> float:
    """Wall time of a chunk pair: from its first piece's start to its last piece's end."""
    return max(p.end for p in pieces) - min(p.start for p in pieces)
