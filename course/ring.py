"""The ring collectives' cost factors, in one place (Thakur, Rabenseifner & Gropp 2005;
Patarasuk & Yuan 2009; what NCCL does for large messages). Over p ranks, for n bytes per
rank (all-reduce: the whole buffer; all-to-all: what a rank sends out plus what it keeps):

    reduce-scatter, all-gather   p-1 steps, each rank sends (p-1)/p * n bytes
    all-reduce                   2(p-1) steps, 2 (p-1)/p * n bytes   (= RS then AG)
    all-to-all (pairwise)        p-1 steps, (p-1)/p * n bytes

`course.comms` turns steps and bytes into seconds; `course.parallel`, `course.diloco` and
`course.parallel_run` count bytes with `ring_bytes`.
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
