"""Train the course's one model with MoE FFNs on the toy corpus (notebooks 08-09).

`train(balance, steps, seed, **sizes)` trains `course.model.TinyLM` with `ffn="moe"` (via
`course.train.train_lm`) and returns a `MoERun`: the load per expert after every step, the
losses, held-out numbers and, with `balance="bias"`, the routing biases. Runs are cached by
their settings (`RUNS`); a shorter run is cut, exactly, from a cached longer one with the
same settings (held-out numbers are taken every `CHECKPOINT_EVERY` steps).
Also: `held_out_load` and `kind_expert_counts`, the held-out routing of a trained model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from course import validate
from course.moe import AUX_SCOPES, SCORE_FUNCS
from course.moe_stats import max_vio
from course.runcache import RunCache
from course.timing import one_thread

BALANCES = ("none", "aux", "bias")
TRAIN_KEYS = dict(n_experts="n_routed_experts", top_k="experts_per_token",
                  n_shared="n_shared_experts", moe_inter_dim="moe_inter_dim",
                  n_dense_layers="n_dense_layers", n_groups="n_groups",
                  topk_groups="topk_groups", score_func="score_func",
                  route_scale="route_scale", alpha="aux_alpha", gamma="bias_gamma",
                  d_model="d_model", n_layers="n_layers")
RUN_KEYS = ("batch", "lr", "warmup")
ROUTER_KEYS = ("router_std", "router_temp", "aux_scope", "capacity_factor")
MAX_STEPS = 100_000

#: How each setting is checked: (kind, lowest, highest). The bounds keep a run on a CPU.
_WHOLE = dict(n_experts=(1, 256), top_k=(1, 256), n_shared=(0, 16), moe_inter_dim=(1, 4096),
              n_dense_layers=(0, 16), n_groups=(1, 256), topk_groups=(1, 256),
              d_model=(1, 1024), n_layers=(1, 16), batch=(1, 1024), warmup=(1, MAX_STEPS))
_POSITIVE = ("route_scale", "lr", "router_std", "router_temp")
_NON_NEGATIVE = ("alpha", "gamma")


def _checked(settings: dict) -> dict:
    """The settings with every value checked and in a clean form (8.0 -> 8)."""
    out = {}
    for name, value in settings.items():
        if name in _WHOLE:
            out[name] = validate.integer(name, value, *_WHOLE[name])
        elif name in _POSITIVE:
            out[name] = validate.positive(name, value)
        elif name in _NON_NEGATIVE:
            out[name] = validate.non_negative(name, value)
        elif name == "score_func":
            out[name] = validate.choice(name, value, SCORE_FUNCS)
        elif name == "aux_scope":
            out[name] = validate.choice(name, value, AUX_SCOPES)
        elif name == "capacity_factor":
            out[name] = validate.optional(validate.non_negative, name, value)
        else:
            out[name] = value
    if out.get("n_dense_layers", 0) >= out.get("n_layers", 2):
        raise ValueError(f"n_dense_layers ({out['n_dense_layers']}) leaves no MoE layer in "
                         f"{out.get('n_layers', 2)} layers.")
    return out


@dataclass
class MoERun:
    load: np.ndarray  # (steps, E) share of routed tokens per expert (mean over MoE layers' rows)
    loss: np.ndarray  # (steps,) training loss (LM loss + alpha * aux loss)
    lm_loss: np.ndarray  # (steps,) next-token cross-entropy
    val_loss: float
    val_load: np.ndarray  # (n_moe_layers, E) held-out share of routed tokens per expert
    layer_load: np.ndarray  # (steps, n_moe_layers, E) shares per MoE layer
    bias: np.ndarray | None  # (steps, n_moe_layers, E) routing bias after each step, or None
    seconds: float
    settings: dict = field(default_factory=dict)
    model: nn.Module | None = None  # None for a run cut from a longer one (`truncated`)
    #: held-out (val_loss, val_load, val_kinds) after every CHECKPOINT_EVERY steps
    checkpoints: dict = field(default_factory=dict)
    #: (n_moe_layers, n_kinds, E) held-out routing slots by word kind (`kinds()`) and expert
    val_kinds: np.ndarray | None = None

    def truncated(self, steps: int) -> MoERun:
        """The first `steps` steps of this run: exactly the run `train` would give for
        `steps` (same seed, batches and learning rates), held-out numbers from the
        checkpoint at `steps`; its model is not kept (None)."""
        if steps == len(self.loss):
            return self
        if steps not in self.checkpoints:
            raise ValueError(f"This run has no checkpoint at step {steps}; it has "
                             f"{sorted(self.checkpoints)}.")
        val_loss, val_load, val_kinds = self.checkpoints[steps]
        return MoERun(load=self.load[:steps], loss=self.loss[:steps],
                      lm_loss=self.lm_loss[:steps], val_loss=val_loss, val_load=val_load,
                      val_kinds=val_kinds,
                      layer_load=self.layer_load[:steps],
                      bias=None if self.bias is None else self.bias[:steps],
                      seconds=self.seconds * steps / len(self.loss),
                      settings=dict(self.settings, steps=steps),
                      checkpoints={k: v for k, v in self.checkpoints.items() if k < steps})

    @property
    def max_vio(self) -> np.ndarray:
        """(steps,) MaxVio per batch, averaged over MoE layers."""
        return max_vio(self.layer_load).mean(-1)

    @property
    def val_max_vio(self) -> float:
        """MaxVio over the whole held-out set (MaxVio_global), averaged over MoE layers."""
        return float(max_vio(self.val_load).mean())


def settings_key(steps: int | None = None, **sizes) -> tuple:
    """The checked settings of a run as a sorted tuple: the "moe" preset with `sizes` over
    it, defaults dropped so that default and explicit calls name the same run."""
    from course.presets import preset

    unknown = set(sizes) - set(TRAIN_KEYS) - set(RUN_KEYS) - set(ROUTER_KEYS)
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(sorted(map(str, unknown)))} for "
                         "moe.train.")
    settings = preset("moe")
    settings.update(sizes)
    settings.setdefault("router_std", 0.02)
    settings = _checked(settings)
    if settings.get("aux_scope", "batch") == "batch":
        settings.pop("aux_scope", None)  # the default: default and explicit calls share
    if settings.get("capacity_factor") is None:
        settings.pop("capacity_factor", None)
    settings["steps"] = validate.integer("steps", settings["steps"] if steps is None
                                         else steps, 1, MAX_STEPS)
    return tuple(sorted((k, round(v, 8) if isinstance(v, float) else v)
                        for k, v in settings.items()))


def train(balance: str = "none", steps: int | None = None, seed: int = 0,
          progress=None, **sizes) -> MoERun:
    """Train the course's one model (`course.model.TinyLM`) with MoE FFNs on the toy corpus.

    balance: "none", "aux" (Switch-style loss, weight `alpha`) or "bias" (DeepSeek-V3's
    bias, step `gamma`). sizes override the "moe" preset: n_experts, top_k, n_shared,
    moe_inter_dim, score_func, router_std, router_temp, alpha, gamma, batch, lr,
    n_dense_layers, n_groups, ... Cached: the same arguments return the same (shared)
    run. `progress(done, total, text)` is called every step of a run that is not cached.
    """
    balance = validate.choice("balance", balance, BALANCES)
    seed = validate.non_negative_int("seed", seed)
    key = settings_key(steps, **sizes)
    _config(balance, dict(key))  # sizes that cannot build a model fail here, before training
    if (balance, seed, key) not in RUNS:
        longer = _longer_run(balance, seed, key)
        if longer is not None:  # a cached longer run holds this one as its first steps
            return longer.truncated(dict(key)["steps"])
    return RUNS.get((balance, seed, key), lambda: _train(balance, seed, key, progress))


def _longer_run(balance: str, seed: int, key: tuple) -> MoERun | None:
    s = dict(key)
    rest = {k: v for k, v in s.items() if k != "steps"}
    for (b, sd, k), run in RUNS.items():
        other = dict(k)
        if (b, sd) == (balance, seed) and other.pop("steps") > s["steps"] and other == rest \
                and s["steps"] in run.checkpoints:
            return run
    return None


def describe(balance: str, settings: dict) -> str:
    """"training the MoE with γ = 0.01" and the like, for progress lines."""
    scope = "sequence-wise " if settings.get("aux_scope") == "sequence" else ""
    what = {"aux": f" with {scope}aux loss α = {settings.get('alpha', 0.0):g}",
            "bias": f" with bias γ = {settings.get('gamma', 0.0):g}"}.get(balance,
                                                                        " with no balancing")
    return f"training the MoE{what}"


#: Trained runs by (balance, seed, settings); `RUNS.clear()` forgets them.
RUNS = RunCache(64)
#: Held-out numbers are also taken every this many steps, so that a shorter run with the
#: same settings is cut from a cached longer one instead of trained (the widgets' steps
#: sliders move by this much).
CHECKPOINT_EVERY = 30


def _config(balance: str, s: dict):
    """The TinyConfig of a run with settings `s`; ValueError if its MoE cannot be built."""
    from course.moe import check_sizes
    from course.train import tiny_config

    cfg = tiny_config(ffn="moe", balance=balance,
                      extra={k: s[k] for k in ROUTER_KEYS if k in s},
                      **{TRAIN_KEYS[k]: v for k, v in s.items() if k in TRAIN_KEYS})
    check_sizes(cfg)
    return cfg


def _train(balance: str, seed: int, key: tuple, progress=None) -> MoERun:
    from course import data
    from course.train import train_lm

    s = dict(key)
    cfg = _config(balance, s)
    held_out = data.split()[1]
    checkpoints = {}

    def checkpoint(done: int, model) -> None:
        if done % CHECKPOINT_EVERY == 0 and done < s["steps"]:
            checkpoints[done] = held_out_routing(model, held_out, cfg.seq_len)

    start = time.perf_counter()
    with one_thread():  # subtle: tiny matmuls run faster on one thread than on two
        res = train_lm(cfg, steps=s["steps"], batch_size=s.get("batch", 32),
                       lr=s.get("lr", 3e-3), seed=seed, warmup=s.get("warmup", 20),
                       progress=progress, label=describe(balance, s), checkpoint=checkpoint)
        _, val_load, val_kinds = held_out_routing(res.model, held_out, cfg.seq_len)
    if not np.isfinite(res.loss).all():
        raise ValueError(f"The run diverged (loss {res.loss[~np.isfinite(res.loss)][0]} at "
                         f"step {int(np.argmin(np.isfinite(res.loss))) + 1}): lower lr or "
                         "alpha.")
    layer_load = res.load / res.load.sum(-1, keepdims=True)
    moe = res.model.moe_layers()
    bias = np.stack([np.stack(m.bias_log) for m in moe], 1) if balance == "bias" else None
    return MoERun(load=layer_load.mean(1), loss=res.loss, lm_loss=res.lm_loss,
                  val_loss=res.val_loss, val_load=val_load, layer_load=layer_load, bias=bias,
                  seconds=time.perf_counter() - start,
                  settings=dict(s, balance=balance, seed=seed), model=res.model,
                  checkpoints=checkpoints, val_kinds=val_kinds)


def _windows(stream: torch.Tensor, seq_len: int, max_windows: int) -> tuple:
    """The first whole windows of a held-out stream (at most `max_windows`): inputs (n, T)
    and next-token targets (n, T); the same windows as `course.train.evaluate`."""
    n = min(max_windows, (len(stream) - 1) // seq_len)
    return (stream[: n * seq_len].view(n, seq_len),
            stream[1: n * seq_len + 1].view(n, seq_len))


@torch.no_grad()
def held_out_routing(model: nn.Module, stream: torch.Tensor, seq_len: int,
                     max_windows: int = 64) -> tuple[float, np.ndarray, np.ndarray]:
    """One forward pass over held-out windows: the next-token loss (as
    `course.train.evaluate`), each MoE layer's share of routing slots per expert
    (n_moe_layers, E), and its slots by word kind and expert (n_moe_layers, n_kinds, E)."""
    x, y = _windows(stream, seq_len, max_windows)
    model.eval()
    loss = model(x, y).lm_loss.item()
    model.train()
    load = np.stack([m.last_load.float().numpy() for m in model.moe_layers()])
    return loss, load / load.sum(-1, keepdims=True), _kind_counts(model, x)


@torch.no_grad()
def held_out_load(model: nn.Module, stream: torch.Tensor, seq_len: int,
                  max_windows: int = 64) -> np.ndarray:
    """Tokens per expert of each MoE layer over held-out windows, (n_moe_layers, E)."""
    n = min(max_windows, len(stream) // seq_len)
    model.eval()
    model(stream[: n * seq_len].view(n, seq_len))
    model.train()
    return np.stack([m.last_load.float().numpy() for m in model.moe_layers()])


# ---------------------------------------------------------------- word kinds of the corpus


@lru_cache(maxsize=1)
def kinds() -> tuple[str, ...]:
    """The word kinds of the toy corpus (assets/corpus/word_kinds.json, via
    `course.mtp.token_type`), plus "end of sentence" and "function word"."""
    from course.mtp import _corpus_lists

    return (*_corpus_lists(), "end of sentence", "function word")


@lru_cache(maxsize=1)
def _kind_of_token() -> torch.Tensor:
    from course.data import tokenizer
    from course.mtp import token_type

    index = {k: i for i, k in enumerate(kinds())}
    return torch.tensor([index[token_type(w)] for w in tokenizer().words])


def _kind_counts(model: nn.Module, idx: torch.Tensor) -> np.ndarray:
    """Slots by (kind, expert) of the forward pass just run on the tokens `idx`."""
    kind = _kind_of_token()[idx.flatten()]
    out = []
    for m in model.moe_layers():
        chosen = m.last_indices  # (n*seq_len, k), same token order as idx.flatten()
        joint = torch.zeros(len(kinds()), m.E)
        joint.index_put_((kind[:, None].expand_as(chosen).flatten(), chosen.flatten()),
                         torch.ones(chosen.numel()), accumulate=True)
        out.append(joint.numpy())
    return np.stack(out)


@torch.no_grad()
def kind_expert_counts(model: nn.Module, stream: torch.Tensor, seq_len: int,
                       max_windows: int = 64) -> np.ndarray:
    """Routing slots by the kind of the token at that position and the expert chosen, over
    held-out windows: (n_moe_layers, n_kinds, E)."""
    n = min(max_windows, len(stream) // seq_len)
    idx = stream[: n * seq_len].view(n, seq_len)
    model.eval()
    model(idx)
    model.train()
    return _kind_counts(model, idx)
