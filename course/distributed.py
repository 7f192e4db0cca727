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

from course import validate


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


class _PortTaken(RuntimeError):
    """Another program took the free port between `free_port` and the store's bind."""


_PORT_ERRORS = ("EADDRINUSE", "address already in use")
ATTEMPTS = 3  # fresh ports tried before giving up


def run_workers(fn: Callable[..., Any], world_size: int, *args,
                timeout_s: float = 60.0) -> list[Any]:
    """Run `fn(rank, world_size, *args)` in `world_size` gloo processes; return each rank's
    result (picklable), in rank order. `fn` must be importable (defined in a module).

    If another program grabs the chosen port before rank 0 listens on it, the run starts
    again on a new port (up to `ATTEMPTS` times)."""
    world_size = validate.integer("world_size", world_size, 1, 16)
    timeout_s = validate.positive("timeout_s", timeout_s)
    for attempt in range(ATTEMPTS):
        try:
            return _run_once(fn, world_size, args, timeout_s, free_port())
        except _PortTaken:
            if attempt == ATTEMPTS - 1:
                raise RuntimeError(f"No free port for the workers after {ATTEMPTS} tries.") \
                    from None
    raise AssertionError("unreachable")


def _run_once(fn: Callable, world_size: int, args: tuple, timeout_s: float,
              port: int) -> list[Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, fn, args, queue, timeout_s),
                         daemon=True) for r in range(world_size)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    finished = False
    try:
        for _ in range(world_size):
            rank, status, payload = queue.get(timeout=timeout_s + 30)
            if status == "error":
                if any(e in payload for e in _PORT_ERRORS):
                    raise _PortTaken(payload)
                raise RuntimeError(f"worker {rank} failed:\n{payload}")
            results[rank] = payload
        finished = True
    except Exception as err:
        if not isinstance(err, RuntimeError):
            raise RuntimeError(f"workers did not finish within {timeout_s + 30:.0f} s") from err
        raise
    finally:
        # After a failure the other ranks wait for a peer that is gone: stop them now.
        _join(procs, grace_s=5.0 if finished else 0.0)
    return [results[r] for r in range(world_size)]


def _join(procs: list, grace_s: float = 5.0) -> None:
    """Wait up to `grace_s` for every worker to exit; stop the ones that do not (no
    orphans, no zombies)."""
    for p in procs:
        p.join(timeout=grace_s)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
