"""The ring collectives' cost factors, in one place (Thakur, Rabenseifner & Gropp 2005;
Patarasuk & Yuan 2009; what NCCL does for large messages). Over p ranks, for n bytes per
rank (all-reduce: the whole buffer; all-to-all: what a rank sends out plus what it keeps):

    reduce-scatter, all-gather   p-1 steps, each rank sends (p-1)/p * n bytes
    all-reduce                   2(p-1) steps, 2 (p-1)/p * n bytes   (= RS then AG)
    all-to-all (pairwise)        p-1 steps, (p-1)/p * n bytes

`course.comms` turns steps and bytes into seconds; `course.parallel` and `course.diloco`
predict bytes with `ring_bytes`. `ring_all_reduce`, `ring_reduce_scatter` and
`ring_all_gather` run the same rings for real, as point-to-point sends between
torch.distributed processes, and count the bytes each rank sends (`course.parallel_run`
trains with them, so its byte counts can disagree with `ring_bytes`).
"""

from __future__ import annotations

from course import validate

KINDS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all")


def steps_and_volume(kind: str, p: int) -> tuple[int, float]:
    """(messages each rank sends, multiple of n each rank sends) for a collective on p ranks."""
    validate.choice("collective", kind, KINDS)
    p = validate.positive_int("the number of ranks", p)
    if kind == "all_reduce":
        return 2 * (p - 1), 2 * (p - 1) / p
    return p - 1, (p - 1) / p


def ring_bytes(kind: str, n_bytes: float, p: int) -> float:
    """Bytes one rank sends in a ring `kind` of `n_bytes` per rank over `p` ranks."""
    n_bytes = validate.non_negative("n_bytes", n_bytes)
    return steps_and_volume(kind, p)[1] * n_bytes


# ------------------------------------------------------------ the rings, run for real
# Inside a torch.distributed process group (`course.distributed.run_workers` on CPUs):
# each collective is a chain of point-to-point sends to the next rank, and `RingCounter`
# adds up the bytes this rank hands to `send`: bytes that really cross to another process.


class RingCounter:
    """Bytes this rank sent and received, by collective."""

    def __init__(self):
        self.sent: dict[str, int] = {}
        self.received: dict[str, int] = {}

    def add(self, name: str, sent: int, received: int) -> None:
        self.sent[name] = self.sent.get(name, 0) + sent
        self.received[name] = self.received.get(name, 0) + received


def _exchange(send, recv, rank: int, world: int, counter, name: str) -> None:
    """Send `send` to the next rank while receiving `recv` from the previous one."""
    import torch.distributed as dist

    # posted together (a group, for NCCL), so no rank waits on a send before its receive
    ops = [dist.P2POp(dist.isend, send.contiguous(), (rank + 1) % world),
           dist.P2POp(dist.irecv, recv, (rank - 1) % world)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    if counter is not None:
        counter.add(name, send.numel() * send.element_size(),
                    recv.numel() * recv.element_size())


def _chunks(flat, world: int) -> list:
    if flat.dim() != 1:
        raise ValueError("The ring collectives work on a flat (1-D) tensor.")
    return list(flat.tensor_split(world))  # views: writing a chunk writes `flat`


def ring_reduce_scatter(flat, counter: RingCounter | None = None,
                        name: str = "reduce_scatter"):
    """Sum `flat` over the ranks in place, chunk by chunk; return this rank's chunk.

    Step s (of p-1): send chunk (r-s-1) to rank r+1, receive chunk (r-s-2) from rank r-1
    and add it in. After p-1 steps chunk r holds the sum of every rank's chunk r (other
    chunks hold partial sums)."""
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = _chunks(flat, world)
    for s in range(world - 1):
        got = chunks[(rank - s - 2) % world]
        buf = got.new_empty(got.shape)
        _exchange(chunks[(rank - s - 1) % world], buf, rank, world, counter, name)
        got += buf
    return chunks[rank]


def ring_all_gather(flat, counter: RingCounter | None = None, name: str = "all_gather"):
    """Fill every chunk of `flat` from the rank that owns it (rank r owns chunk r), in
    place: step s sends chunk (r-s) to rank r+1 and receives chunk (r-s-1)."""
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = _chunks(flat, world)
    for s in range(world - 1):
        _exchange(chunks[(rank - s) % world], chunks[(rank - s - 1) % world], rank, world,
                  counter, name)
    return flat


def ring_all_reduce(flat, counter: RingCounter | None = None, name: str = "all_reduce"):
    """Sum `flat` over the ranks in place: a ring reduce-scatter, then a ring all-gather."""
    ring_reduce_scatter(flat, counter, name)
    return ring_all_gather(flat, counter, name)


def against_torch_worker(rank: int, world: int, numel: int, seed: int = 0) -> dict:
    """In a process group: run the three rings on a random float32 tensor and torch's own
    collectives on the same data. Returns both results (numpy) and the bytes counted."""
    import torch
    import torch.distributed as dist

    x = torch.randn(numel, generator=torch.Generator().manual_seed(seed + rank))
    counter = RingCounter()
    ours = {"all_reduce": ring_all_reduce(x.clone(), counter),
            "reduce_scatter": ring_reduce_scatter(x.clone(), counter).clone()}
    mine = x.tensor_split(world)[rank]
    full = x.new_zeros(numel)
    full.tensor_split(world)[rank].copy_(mine)
    ours["all_gather"] = ring_all_gather(full, counter)
    theirs = {"all_reduce": x.clone()}
    dist.all_reduce(theirs["all_reduce"])
    theirs["reduce_scatter"] = theirs["all_reduce"].tensor_split(world)[rank]
    size = -(-numel // world)  # gloo gathers equal sizes: pad each chunk to the largest
    parts = [x.new_empty(size) for _ in range(world)]
    dist.all_gather(parts, torch.cat([mine, mine.new_zeros(size - len(mine))]))
    theirs["all_gather"] = torch.cat([p[:len(c)] for p, c in zip(parts, x.tensor_split(world))])
    return {"ring": {k: v.numpy() for k, v in ours.items()},
            "torch": {k: v.numpy() for k, v in theirs.items()},
            "sent": counter.sent, "received": counter.received}
