"""course.ring: the ring collectives run as point-to-point sends between real gloo
processes give torch's own results, and the bytes they count follow the ring formula."""

import numpy as np
import pytest

from course import ring
from course.distributed import run_workers


@pytest.fixture(scope="module")
def three_ranks():
    # 1001 floats over 3 ranks: chunks of 334, 334 and 333, so uneven sends are exercised
    return run_workers(ring.against_torch_worker, 3, 1001, 7, timeout_s=60)


def test_rings_equal_torch_collectives(three_ranks):
    for rank in three_ranks:
        for kind in ("all_reduce", "reduce_scatter", "all_gather"):
            np.testing.assert_allclose(rank["ring"][kind], rank["torch"][kind],
                                       rtol=1e-6, atol=1e-6)
    # the sum really mixes the ranks: it is not any one rank's input
    assert np.abs(three_ranks[0]["ring"]["all_reduce"]
                  - three_ranks[0]["ring"]["all_gather"]).max() > 0.1


def test_counted_bytes_follow_the_ring_formula(three_ranks):
    chunk_bytes = [4 * 334, 4 * 334, 4 * 333]
    for r, rank in enumerate(three_ranks):
        # reduce-scatter: rank r sends chunks r-1 and r-2 (mod 3), never its own
        assert rank["sent"]["reduce_scatter"] == sum(chunk_bytes) - chunk_bytes[r]
        # all-gather: rank r sends chunks r and r-1, never the one it receives last
        assert rank["sent"]["all_gather"] == sum(chunk_bytes) - chunk_bytes[(r + 1) % 3]
        assert rank["sent"]["all_reduce"] == (rank["sent"]["reduce_scatter"]
                                              + rank["sent"]["all_gather"])
    for kind in ("all_reduce", "reduce_scatter", "all_gather"):
        total = sum(rank["sent"][kind] for rank in three_ranks)
        assert total == sum(rank["received"][kind] for rank in three_ranks)
        # over all ranks the ring sends exactly (p-1)/p (twice for all-reduce) of p buffers
        assert total == pytest.approx(3 * ring.ring_bytes(kind, 4 * 1001, 3), rel=1e-12)


def test_ring_needs_a_flat_tensor():
    import torch

    with pytest.raises(ValueError, match="flat"):
        ring._chunks(torch.zeros(2, 2), 2)
