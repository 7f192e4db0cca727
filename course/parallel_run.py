"""A real distributed training step of a toy model: plain data parallelism, ZeRO-1 and an
expert-parallel MoE forward, each on real torch.distributed processes.

* "dp":    every rank keeps the whole model and AdamW; gradients are all-reduced in one
           flat bucket (as DDP does), then every rank takes the same step.
* "zero1": gradients are reduce-scattered; each rank keeps AdamW states and an FP32 master
           copy for its 1/N shard only, updates it, and the shards are all-gathered.
* "ep":    experts live on different ranks; tokens travel to their expert with an
           all-to-all (dispatch) and come back with a second one (combine). Forward only.

Every collective goes through `CountingComm`: all-reduce, reduce-scatter and all-gather run
as rings of point-to-point sends (`course.ring`), all-to-all as torch's own, and each counts
the bytes this rank really sends, to compare with `course.parallel`'s formulas.

In the notebook: `run("zero1", world=2)` (gloo on CPU, via `course.distributed`). On a
cluster: `torchrun --nproc-per-node N -m course.parallel_run --strategy dp|zero1|ep`
(NCCL on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from course import validate
from course.activations import toy_mlp
from course.ring import RingCounter, ring_all_gather, ring_all_reduce, ring_reduce_scatter

STRATEGIES = ("dp", "zero1", "ep")
SIZES = dict(d=16, hidden=32, blocks=2, batch=32, steps=5, lr=1e-2, experts=4, tokens=24)
LIMITS = dict(d=4096, hidden=16384, blocks=64, batch=65536, steps=10_000, experts=256,
              tokens=65536)  # most a run on local processes may use
TIMEOUT_S = 300  # a rank that waits longer than this on the others fails, never hangs


class CountingComm:
    """The collectives of a training step, run as rings of point-to-point sends
    (`course.ring`), counting the bytes this rank really sends: what it hands to `send`
    (all-reduce, reduce-scatter, all-gather) or what leaves it in an all-to-all."""

    def __init__(self, world: int):
        self.world = world
        self.ring = RingCounter()
        self.sent = self.ring.sent  # one dict: collective -> bytes sent

    def all_reduce(self, t: torch.Tensor) -> None:
        ring_all_reduce(t, self.ring)

    def reduce_scatter(self, out: torch.Tensor, full: torch.Tensor) -> None:
        out.copy_(ring_reduce_scatter(full.clone(), self.ring))

    def all_gather(self, full: torch.Tensor, shard: torch.Tensor) -> None:
        full.tensor_split(self.world)[dist.get_rank()].copy_(shard)
        ring_all_gather(full, self.ring)

    def all_to_all(self, name: str, out: torch.Tensor, inp: torch.Tensor, out_splits: list,
                   in_splits: list, rank: int) -> None:
        dist.all_to_all_single(out, inp, out_splits, in_splits)
        row = _nbytes(inp) // max(1, inp.shape[0])
        self.ring.add(name, (sum(in_splits) - in_splits[rank]) * row,  # rows leaving
                      (sum(out_splits) - out_splits[rank]) * row)  # rows arriving


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def toy_data(sizes: dict, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed regression batch: x (batch, d) and y = tanh(x A) (batch, d)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sizes["batch"], sizes["d"], generator=g)
    return x, torch.tanh(x @ torch.randn(sizes["d"], sizes["d"], generator=g))


def _model(sizes: dict, device) -> nn.Module:
    return toy_mlp(sizes["d"], sizes["hidden"], sizes["blocks"], seed=1).to(device)


def train_single(sizes: dict | None = None) -> dict:
    """The reference: one process, the whole batch, AdamW."""
    sizes = {**SIZES, **(sizes or {})}
    model, (x, y) = _model(sizes, "cpu"), toy_data(sizes)
    opt = torch.optim.AdamW(model.parameters(), lr=sizes["lr"])
    for _ in range(sizes["steps"]):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return {"params": parameters_to_vector(model.parameters()).detach()}


def _local_batch(sizes: dict, rank: int, world: int, device):
    if sizes["batch"] % world:
        raise ValueError(f"batch {sizes['batch']} does not split evenly over {world} ranks.")
    x, y = toy_data(sizes)
    rows = slice(rank * sizes["batch"] // world, (rank + 1) * sizes["batch"] // world)
    return x[rows].to(device), y[rows].to(device)


def train_data_parallel(rank: int, world: int, strategy: str, sizes: dict,
                        device: str = "cpu") -> dict:
    """Train with "dp" or "zero1"; return final params, bytes sent and memory held."""
    model, comm = _model(sizes, device), CountingComm(world)
    x, y = _local_batch(sizes, rank, world, device)
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    shard = -(-n // world)  # ceil: the flat buffer is padded to world * shard
    if strategy == "dp":
        opt = torch.optim.AdamW(params, lr=sizes["lr"])
    else:  # ZeRO-1: an FP32 master copy and AdamW states for this rank's shard only
        flat = torch.zeros(world * shard, device=device)
        flat[:n] = parameters_to_vector(params).detach()
        master = nn.Parameter(flat[rank * shard:(rank + 1) * shard].clone())
        opt = torch.optim.AdamW([master], lr=sizes["lr"])
    for _ in range(sizes["steps"]):
        model.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        grads = parameters_to_vector([p.grad for p in params])
        if strategy == "dp":
            comm.all_reduce(grads)
            vector_to_parameters(grads / world, [p.grad for p in params])
            opt.step()
        else:
            full = torch.zeros(world * shard, device=device)
            full[:n] = grads / world
            master.grad = torch.empty(shard, device=device)
            comm.reduce_scatter(master.grad, full)  # sum of the ranks' shards = mean grad
            opt.step()
            comm.all_gather(full, master.detach())
            with torch.no_grad():
                vector_to_parameters(full[:n], params)
    states = [v for s in opt.state.values() for k, v in s.items() if k.startswith("exp_avg")]
    return {
        "params": parameters_to_vector(params).detach().cpu(),
        "sent": dict(comm.sent), "received": dict(comm.ring.received),
        "memory": {"weights": 4 * n, "gradients": 4 * n,
                   "optimizer": sum(_nbytes(v) for v in states),
                   "master_shard": 0 if strategy == "dp" else _nbytes(master)},
    }


def _moe(sizes: dict):
    """Router (d -> experts) and experts (d -> hidden -> d), identical on every rank."""
    g = torch.Generator().manual_seed(2)
    d, h, e = sizes["d"], sizes["hidden"], sizes["experts"]
    router = torch.randn(d, e, generator=g) / d**0.5
    experts = [(torch.randn(d, h, generator=g) / d**0.5, torch.randn(h, d, generator=g) / h**0.5)
               for _ in range(e)]
    tokens = torch.randn(sizes["tokens"] * sizes.get("world", 1), d, generator=g)
    return router, experts, tokens


def _expert(w: tuple, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.gelu(x @ w[0]) @ w[1]


def route(tokens: torch.Tensor, router: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 routing: (gate weight, expert index) per token."""
    return torch.softmax(tokens @ router, dim=-1).max(dim=-1)


def moe_reference(sizes: dict) -> dict:
    """Single-process MoE forward over every rank's tokens, and the routing."""
    router, experts, tokens = _moe(sizes)
    gate, idx = route(tokens, router)
    out = torch.stack([_expert(experts[int(i)], t) for t, i in zip(tokens, idx)])
    return {"output": out * gate[:, None], "expert": idx}


def ep_forward(rank: int, world: int, sizes: dict, device: str = "cpu") -> dict:
    """One expert-parallel MoE forward: dispatch all-to-all, local experts, combine."""
    if sizes["experts"] % world:
        raise ValueError(f"{world} ranks do not divide {sizes['experts']} experts.")
    router, experts, tokens = _moe({**sizes, "world": world})
    router, tokens = router.to(device), tokens.to(device)  # NCCL moves only GPU tensors
    per = sizes["experts"] // world
    mine = {e: tuple(w.to(device) for w in experts[e])  # this rank's experts only
            for e in range(rank * per, (rank + 1) * per)}
    comm, t = CountingComm(world), sizes["tokens"]
    x = tokens[rank * t:(rank + 1) * t]
    gate, idx = route(x, router)
    order = torch.argsort(idx, stable=True)  # group tokens by destination rank
    in_splits = torch.bincount(idx // per, minlength=world)
    out_splits = torch.empty_like(in_splits)
    comm.all_to_all("all_to_all (counts)", out_splits, in_splits, [1] * world, [1] * world, rank)
    ins, outs = in_splits.tolist(), out_splits.tolist()
    recv = torch.empty(sum(outs), x.shape[1], device=device)
    comm.all_to_all("all_to_all (dispatch)", recv, x[order], outs, ins, rank)
    recv_idx = torch.empty(sum(outs), dtype=idx.dtype, device=device)
    comm.all_to_all("all_to_all (expert ids)", recv_idx, idx[order], outs, ins, rank)
    done = torch.stack([_expert(mine[int(e)], row) for row, e in zip(recv, recv_idx)]) \
        if len(recv) else recv
    back = torch.empty(t, x.shape[1], device=device)
    comm.all_to_all("all_to_all (combine)", back, done, ins, outs, rank)
    y = torch.empty_like(back)
    y[order] = back
    return {"output": y * gate[:, None], "sent": dict(comm.sent),
            "received": dict(comm.ring.received),
            "tokens_received": sum(outs)}


def worker(rank: int, world: int, strategy: str, sizes: dict, device: str = "cpu") -> dict:
    """The job one process runs (module-level so `course.distributed` can spawn it)."""
    torch.manual_seed(0)
    if strategy == "ep":
        out = ep_forward(rank, world, sizes, device)
    elif strategy in ("dp", "zero1"):
        out = train_data_parallel(rank, world, strategy, sizes, device)
    else:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}.")
    # subtle: tensors cross process queues as shared-memory handles that die with the
    # worker; numpy arrays are pickled by value.
    return {k: v.detach().cpu().numpy() if torch.is_tensor(v) else v for k, v in out.items()}


def worker_many(rank: int, world: int, strategies: tuple, sizes: dict) -> dict:
    """Run several strategies in one process group (one process start-up, not three)."""
    return {s: worker(rank, world, s, sizes) for s in strategies}


@functools.lru_cache(maxsize=16)
def _run_cached(world: int, items: tuple) -> dict:
    from course.distributed import run_workers

    ranks = run_workers(worker_many, world, STRATEGIES, dict(items), timeout_s=60)
    return {s: [r[s] for r in ranks] for s in STRATEGIES}


def run_all(world: int = 2, **overrides) -> dict:
    """Run every strategy on `world` local gloo processes: strategy -> each rank's result.

    Cached by (world, sizes): the widget's button reuses the notebook's run.
    """
    world = validate.integer("world", world, 1, 8)
    sizes = dict(SIZES)
    for key, value in overrides.items():
        validate.choice("size", key, SIZES)
        sizes[key] = (validate.positive(key, value) if key == "lr"
                      else validate.integer(key, value, 1, LIMITS[key]))
    if sizes["batch"] % world or sizes["experts"] % world:
        raise ValueError(f"{world} ranks must divide the batch ({sizes['batch']}) and the "
                         f"experts ({sizes['experts']}).")
    return _run_cached(world, tuple(sorted(sizes.items())))


def run(strategy: str, world: int = 2, **overrides) -> list[dict]:
    """Each rank's result for one strategy (all three run together, then cached)."""
    validate.choice("strategy", strategy, STRATEGIES)
    return run_all(world, **overrides)[strategy]


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategy", choices=STRATEGIES, default="dp")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo",
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    result = worker(rank, world, args.strategy, dict(SIZES), device)
    if rank == 0:
        report = {"rank": 0, "world": world, "strategy": args.strategy,
                  "sent_bytes": result["sent"], "memory": result.get("memory")}
        if args.strategy != "ep":  # the same training in one process, for comparison
            ref = train_single()["params"].numpy()
            report["max_abs_diff_vs_single_process"] = float(abs(result["params"] - ref).max())
        print(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    _main()


def compare(strategy: str, world: int = 2, rank: int = 0) -> list[tuple[str, float, float]]:
    """(what, measured, predicted) rows for one rank of the cached run: bytes by
    collective from `course.parallel`, and for DP/ZeRO-1 the AdamW state bytes."""
    from course.activations import toy_mlp_params
    from course.parallel import dp_step_bytes, ep_all_to_all_bytes

    got = run(strategy, world)[validate.integer("rank", rank, 0, int(world) - 1)]
    if strategy == "ep":
        sizes = {**SIZES, "world": world}
        t, idx = sizes["tokens"], moe_reference(sizes)["expert"].tolist()
        pred = ep_all_to_all_bytes([idx[r * t:(r + 1) * t] for r in range(world)],
                                   sizes["experts"] // world, 4 * sizes["d"])[rank]
        return [(f"all_to_all ({k})", got["sent"][f"all_to_all ({k})"], v)
                for k, v in pred.items()]
    n = toy_mlp_params(SIZES["d"], SIZES["hidden"], SIZES["blocks"])
    rows = [(k, got["sent"][k], v * SIZES["steps"])
            for k, v in dp_step_bytes(n, world, strategy).items()]
    held = n if strategy == "dp" else -(-n // world)
    return rows + [("AdamW moments", got["memory"]["optimizer"], 2 * 4 * held)]
