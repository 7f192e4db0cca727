"""A discrete-event simulator of pipeline-parallel schedules (notebook 07).

    tl = simulate("dualpipe", stages=8, microbatches=20, f=1.0, b=2.0, w=1.0, fb=2.5)
    tl.makespan, tl.bubble, tl.peak_activations, tl.events[:3]

Each device runs its program (the order of operations, from `course.schedules`) one
operation at a time; an operation starts when its device is free *and* its inputs exist:
a forward needs the previous stage's forward of the same micro-batch, a backward needs
this stage's forward and the next stage's backward of that micro-batch, a weight-gradient
step needs its backward. Times follow the DeepSeek-V3 report (§3.2.1, Table 2): `f` one
forward chunk, `b` one full backward chunk, `w` its weight-gradient part (`w=0`: the
backward is not split), `fb` a forward and a backward chunk run overlapped (None: `f+b`).

Schedules: "gpipe", "1f1b", "zb1p" (ZB-H1), "interleaved" (1F1B with `virtual` model chunks
per device, each taking f/virtual and b/virtual), "dualpipe" (`stages` devices,
`microbatches` counting both directions) and "dualpipev" (`stages` model stages on
`stages // 2` What the simulation found about Table 2 (tests/test_pipeline.py): 1F1B's
formula is exact; ZB1P's when W <= F and W <= B - W; DualPipe's, for its worst (middle)
devices, when B - W = F and W <= F; interleaved 1F1B's (PP-1)(F+B)/v (Narayanan et al.
2021 §2.2.2) when the micro-batches are a multiple of PP and more than PP. Elsewhere the
schedule's real gaps differ.

Left out: communication is free unless `comm` is given (DualPipe's point is that it is
hidden), all stages are equally fast, and the optimizer step is not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from course import schedules, validate

SCHEDULES = ("gpipe", "1f1b", "zb1p", "interleaved", "dualpipe", "dualpipev")
MAX_VIRTUAL = 16
#: The chunk times notebook 07 uses throughout and the planner (notebook 13) prices V3's
#: bubble with: B = 2F (two matmuls per forward one), W = F, and a forward and a backward
#: run overlapped in 2.5 F instead of 3 F (an assumption: the report gives no F&B time).
CHUNK_TIMES = dict(f=1.0, b=2.0, w=1.0, fb=2.5)


class Event(NamedTuple):
    device: int
    kind: str  # "F", "B" (full backward), "Bi" (input-grad part), "W", "F&B"
    microbatch: int  # for "F&B", the forward's micro-batch
    start: float
    end: float
    stage: int  # model stage (for "F&B", the forward's)
    other: int = -1  # for "F&B", the backward's micro-batch


@dataclass
class Timeline:
    """The simulated run: every operation with its start and end, and what it implies."""

    schedule: str
    stages: int
    microbatches: int
    events: list[Event]
    makespan: float
    busy: tuple  # (devices,) compute time of each device
    peak_activations: tuple  # (devices,) most micro-batch activations stored at once
    params_per_device: tuple  # (devices,) model stages held by each device (chunks / virtual)
    times: dict = field(default_factory=dict)  # f, b, w, fb, comm used
    virtual: int = 1  # model chunks per stage ("interleaved"; 1 for the other schedules)
    sends: int = 0  # point-to-point messages between devices (activations and gradients)

    @property
    def sends_per_microbatch(self) -> float:
        """Messages one micro-batch causes: a forward hop and a backward hop per boundary
        between chunks on different devices."""
        return self.sends / self.microbatches

    @property
    def devices(self) -> int:
        return len(self.busy)

    @property
    def idle(self) -> tuple:
        """Idle time of each device between time 0 and the makespan."""
        return tuple(self.makespan - b for b in self.busy)

    @property
    def bubble(self) -> float:
        """Idle time per device, averaged over devices."""
        return sum(self.idle) / self.devices

    @property
    def bubble_fraction(self) -> float:
        return self.bubble / self.makespan


MAX_STAGES, MAX_MICROBATCHES = 256, 4096
MAX_OPERATIONS = 2**16  # stages x micro-batches: keeps one simulation under a few seconds


def _check_times(f=1.0, b=2.0, w=0.0, fb=None, comm=0.0) -> tuple:
    """The chunk times as floats, or a ValueError saying which one is impossible."""
    f, b = validate.positive("f", f), validate.positive("b", b)
    w, comm = validate.non_negative("w", w), validate.non_negative("comm", comm)
    fb = validate.optional(validate.positive, "fb", fb)
    if not w < b:
        raise ValueError("w is the weight-gradient part of b: it must satisfy 0 <= w < b.")
    if fb is not None and fb < max(f, b):
        raise ValueError("fb runs a forward and a backward together: it cannot be shorter "
                         "than the longer of the two, max(f, b).")
    return f, b, w, fb, comm


def _check_virtual(schedule: str, virtual) -> int:
    virtual = validate.integer("virtual", virtual, 1, MAX_VIRTUAL)
    if virtual > 1 and schedule != "interleaved":
        raise ValueError(f"virtual (model chunks per device) applies only to the interleaved "
                         f"schedule; {schedule} needs virtual=1, not {virtual}.")
    return virtual


def _check_shape(schedule: str, stages, microbatches=None) -> tuple:
    validate.choice("schedule", schedule, SCHEDULES)
    stages = validate.integer("stages", stages)
    if not 1 <= stages <= MAX_STAGES:
        raise ValueError(f"stages must be from 1 to {MAX_STAGES}, not {stages}.")
    if schedule.startswith("dualpipe") and (stages % 2 or stages < 2):
        raise ValueError(f"DualPipe needs an even number of stages, not {stages}.")
    if microbatches is None:
        return stages, None
    microbatches = validate.integer("microbatches", microbatches)
    if microbatches < 1:
        raise ValueError("There must be at least one micro-batch.")
    if microbatches > MAX_MICROBATCHES or stages * microbatches > MAX_OPERATIONS:
        raise ValueError(f"{stages} stages x {microbatches} micro-batches is more than the "
                         f"simulator's {MAX_OPERATIONS:,}; use fewer.")
    if schedule == "dualpipev" and microbatches < stages:
        raise ValueError(f"DualPipeV needs at least as many micro-batches as stages "
                         f"({stages}), got {microbatches}.")
    if schedule == "dualpipe":
        if microbatches % 2 or microbatches < 2 * stages:
            raise ValueError(f"DualPipe needs an even number of micro-batches, at least "
                             f"2 x stages = {2 * stages} (got {microbatches}).")
    return stages, microbatches


def simulate(schedule: str, stages: int, microbatches: int, f: float = 1.0, b: float = 2.0,
             w: float = 0.0, fb: float | None = None, comm: float = 0.0,
             virtual: int = 1) -> Timeline:
    """Simulate one training step of `schedule` on `stages` devices and return its Timeline.

    `comm` is the time for an activation or gradient to reach another device (default 0).
    `virtual` is the number of model chunks per device of "interleaved" (1 elsewhere); f
    and b stay a whole stage's times, so one chunk takes f / virtual and b / virtual.
    """
    stages, microbatches = _check_shape(schedule, stages, microbatches)
    f, b, w, fb, comm = _check_times(f, b, w, fb, comm)
    virtual = _check_virtual(schedule, virtual)
    if virtual > 1 and microbatches % stages:  # Narayanan et al. 2021 §2.2.2
        raise ValueError(f"Interleaved 1F1B with virtual > 1 needs the micro-batches to be a "
                         f"multiple of the stages ({stages}), got {microbatches}.")
    if schedule == "interleaved" and stages * virtual * microbatches > MAX_OPERATIONS:
        raise ValueError(f"{stages} stages x {virtual} chunks x {microbatches} micro-batches "
                         f"is more than the simulator's {MAX_OPERATIONS:,}; use fewer.")
    split = w > 0 and schedule in ("zb1p", "dualpipe", "dualpipev")
    positions = stages
    if schedule == "interleaved":  # chunk k of the stages x virtual chain sits on device k % PP
        programs = schedules.interleaved(stages, microbatches, virtual)
        positions = stages * virtual
        place, offset = [[k % stages for k in range(positions)]], (0,)
    elif schedule == "dualpipev":  # one V: position k sits on device k, then comes back
        programs = schedules.dualpipev(stages, microbatches, split)
        place, offset = [[min(k, stages - 1 - k) for k in range(stages)]], (0,)
    elif schedule == "dualpipe":
        programs = schedules.dualpipe(stages, microbatches, split)
        # Direction 1 enters at the last device, so its position p sits on device PP-1-p;
        # micro-batch m of direction 1 is numbered m + M/2 and runs model stage p.
        place = [list(range(stages)), list(range(stages - 1, -1, -1))]
        offset = (0, microbatches // 2)
    else:
        programs = schedules.one_direction(schedule, stages, microbatches, split)
        place, offset = [list(range(stages))], (0,)
    fb = f + b if fb is None else fb
    durations = {"F": f / virtual, "B": b / virtual, "Bi": b - w, "W": w, "F&B": fb}
    events = _run(programs, place, positions, durations, comm, offset)
    tl = timeline_from_events(schedule, stages, microbatches, events, len(programs),
                              times=dict(f=f, b=b, w=w, fb=fb, comm=comm), virtual=virtual)
    tl.sends = _sends(place, microbatches)
    return tl


def _sends(place, microbatches: int) -> int:
    """p2p messages: along each chain, every boundary between positions on different devices
    carries each of its micro-batches once forward (activations) and once back (gradients)."""
    per_chain = microbatches // len(place)  # DualPipe: half the micro-batches each way
    return sum(2 * per_chain * sum(a != b for a, b in zip(chain, chain[1:])) for chain in place)


def timeline_from_events(schedule: str, stages: int, microbatches: int, events: list[Event],
                         devices: int, times: dict | None = None, virtual: int = 1) -> Timeline:
    """A Timeline from a list of events (simulated, or measured with time 0 at the start).
    With `virtual` chunks per stage, activations and parameters count in whole stages."""
    if not events:
        raise ValueError("A timeline needs at least one event.")
    makespan = max(e.end for e in events)
    peaks, params = _peaks(events, devices), _params(events, devices)
    if virtual > 1:  # a chunk's activations and weights are 1/virtual of a stage's
        peaks = tuple(p / virtual for p in peaks)
        params = tuple(p / virtual for p in params)
    return Timeline(schedule, stages, microbatches, events, makespan,
                    busy=_busy(events, devices), peak_activations=peaks,
                    params_per_device=params, times=times or {}, virtual=virtual)


def _deps(task: tuple, last: int) -> tuple:
    """What a task waits for: the data it consumes (DeepSeek-V3 Fig. 5's arrows)."""
    chain, pos, m, part = task
    if part == "F":
        return ((chain, pos - 1, m, "F"),) if pos > 0 else ()
    if part == "B":  # the loss at the last position turns the forward into the backward
        own = (chain, pos, m, "F")
        return (own, (chain, pos + 1, m, "B")) if pos < last else (own,)
    return ((chain, pos, m, "B"),)  # "W"


def _run(programs, place, stages, durations, comm, offset) -> list[Event]:
    """Event-driven core: a device advances while its next operation's inputs exist, and
    waits on the first missing one; finishing a task wakes the devices waiting on it."""
    n, last = len(programs), stages - 1
    deps = [[tuple(dep for task in tasks for dep in _deps(task, last)) for _, tasks in prog]
            for prog in programs]
    done: dict = {}
    waiting: dict = {}
    ptr, clock, events = [0] * n, [0.0] * n, []
    ready_devices = list(range(n))
    while ready_devices:
        d = ready_devices.pop()
        prog, prog_deps, i, now = programs[d], deps[d], ptr[d], clock[d]
        while i < len(prog):
            start, missing = now, None
            for dep in prog_deps[i]:
                t = done.get(dep)
                if t is None:
                    missing = dep
                    break
                if comm and place[dep[0]][dep[1]] != d:
                    t += comm
                if t > start:
                    start = t
            if missing is not None:
                waiting.setdefault(missing, []).append(d)
                break
            kind, tasks = prog[i]
            now = start + durations[kind]
            for task in tasks:
                done[task] = now
                if task in waiting:
                    ready_devices.extend(waiting.pop(task))
            c, pos, m, _ = tasks[0]
            other = tasks[1][2] + offset[tasks[1][0]] if len(tasks) > 1 else -1
            events.append((d, kind, m + offset[c], start, now, pos, other))
            i += 1
        ptr[d], clock[d] = i, now
    if any(p < len(prog) for p, prog in zip(ptr, programs)):
        raise RuntimeError("The schedule deadlocked: an operation waits on a later one.")
    return [Event._make(e) for e in events]


def _busy(events: list[Event], n: int) -> tuple:
    busy = [0.0] * n
    for e in events:
        busy[e.device] += e.end - e.start
    return tuple(busy)


def _peaks(events: list[Event], n: int) -> tuple:
    """A forward stores one micro-batch's activations from its start; a full backward, a
    weight-gradient step or the backward half of an F&B frees them at its end."""
    changes: list[list] = [[] for _ in range(n)]
    for e in events:
        if e.kind in ("F", "F&B"):
            changes[e.device].append((e.start, 1))
        if e.kind in ("B", "W", "F&B"):
            changes[e.device].append((e.end, -1))
    peaks = []
    for ch in changes:
        level = peak = 0
        for _, delta in sorted(ch):  # at equal times frees (-1) sort before stores
            level += delta
            peak = max(peak, level)
        peaks.append(peak)
    return tuple(peaks)


def _params(events: list[Event], n: int) -> tuple:
    held: list[set] = [set() for _ in range(n)]
    for e in events:
        if e.kind in ("F", "F&B"):
            held[e.device].add(e.stage)
    return tuple(len(s) for s in held)


def published_bubble(schedule: str, stages: int, f: float = 1.0, b: float = 2.0,
                     w: float = 0.0, fb: float | None = None, virtual: int = 1) -> float:
    """The bubble formula of DeepSeek-V3 Table 2 (GPipe shares 1F1B's), for comparison;
    interleaved 1F1B's (PP-1)(F+B)/v is Narayanan et al. 2021 §2.2.2.

    Same inputs as `simulate`. The formula can go negative where its assumptions fail
    (ZB1P: W > B - W or W > F); the simulation then shows the real bubble."""
    stages = _check_shape(schedule, stages)[0]
    f, b, w, fb, _ = _check_times(f, b, w, fb)
    virtual = _check_virtual(schedule, virtual)
    fb = f + b if fb is None else fb
    formulas = {"gpipe": (stages - 1) * (f + b), "1f1b": (stages - 1) * (f + b),
                "interleaved": (stages - 1) * (f + b) / virtual,
                "zb1p": (stages - 1) * (f + b - 2 * w),
                "dualpipe": (stages / 2 - 1) * (fb + b - 3 * w)}
    formulas["dualpipev"] = formulas["dualpipe"]
    return formulas[schedule]


def published_activations(schedule: str, stages: int, microbatches: int) -> int:
    """Peak activations per device in micro-batches as published (GPipe stores all)."""
    stages, microbatches = _check_shape(schedule, stages, microbatches)
    if schedule == "interleaved":
        raise ValueError("DeepSeek-V3 Table 2 has no interleaved row; simulate it and read "
                         "Timeline.peak_activations.")
    return {"gpipe": microbatches, "1f1b": stages, "zb1p": stages,
            "dualpipe": stages + 1, "dualpipev": stages + 1}[schedule]


def bubble_sweep(names, stages: int, microbatches, **times) -> dict[str, list]:
    """Bubble fraction of each schedule at each micro-batch count (None where the schedule
    cannot run that shape, e.g. DualPipe below 2 x stages). Unknown schedules and times
    raise ValueError."""
    names, microbatches = _names(names), list(microbatches)
    for key in times:
        validate.choice("time", key, ("f", "b", "w", "fb", "comm", "virtual"))
    for name in names:
        validate.choice("schedule", name, SCHEDULES)
    virtual = validate.integer("virtual", times.pop("virtual", 1), 1, MAX_VIRTUAL)
    _check_times(**times)
    validate.integer("stages", stages, 1, MAX_STAGES)
    for m in microbatches:
        validate.positive_int("microbatches", m)
    out: dict[str, list] = {}
    for name in names:
        row = []
        for m in microbatches:
            try:
                v = virtual if name == "interleaved" else 1
                row.append(simulate(name, stages, m, **times, virtual=v).bubble_fraction)
            except ValueError:  # this schedule cannot run m micro-batches on these stages
                row.append(None)
        out[name] = row
    return out


def _names(names) -> list:
    return [names] if isinstance(names, str) else list(names)
