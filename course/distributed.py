"""Start a few real torch.distributed worker processes on this machine and collect what
each returns. Used by the parallelism (04), communication (06) and pipeline (07) notebooks.

On a CPU the backend is gloo; processes talk over the loopback interface (127.0.0.1) only.
A worker that fails or hangs is reported as an error, never a hang: the process group
has a timeout and the parent waits a bounded time.
"""

from __future__ import annotations

import datetime
import os
import socket
import traceback
from typing import Any, Callable

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, fn: Callable, args: tuple,
            queue, timeout_s: float) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    import torch

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
        queue.put((rank, "ok", fn(rank, world_size, *args)))
    except Exception:
        queue.put((rank, "error", traceback.format_exc(limit=4)))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_workers(fn: Callable[..., Any], world_size: int, *args,
                timeout_s: float = 60.0) -> list[Any]:
    """Run `fn(rank, world_size, *args)` in `world_size` gloo processes; return each rank's
    result (picklable), in rank order. `fn` must be importable (defined in a module)."""
    if not 1 <= world_size <= 16:
        raise ValueError("world_size must be between 1 and 16 processes on one machine.")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, fn, args, queue, timeout_s),
                         daemon=True) for r in range(world_size)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    try:
        for _ in range(world_size):
            rank, status, payload = queue.get(timeout=timeout_s + 30)
            if status == "error":
                raise RuntimeError(f"worker {rank} failed:\n{payload}")
            results[rank] = payload
    except Exception as err:
        if not isinstance(err, RuntimeError):
            raise RuntimeError(f"workers did not finish within {timeout_s + 30:.0f} s") from err
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    return [results[r] for r in range(world_size)]
