"""Figures for notebook 07: Gantt charts of pipeline schedules, bubbles against the number
of micro-batches, and the two streams inside an overlapped DualPipe chunk pair."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from course.plots import COLORS, SEQUENCE, figure

#: Colour and legend name of each kind of operation (DeepSeek-V3 Fig. 5 uses the same four).
KINDS = {
    "F": ("forward F", COLORS["primary"]),
    "B": ("backward B (full)", COLORS["secondary"]),
    "Bi": ("backward, input part (B − W)", SEQUENCE[5]),  # sky blue
    "W": ("weight gradient W", COLORS["good"]),
    "F&B": ("overlapped F&B", COLORS["accent"]),
}
LABEL_LIMIT = 400  # micro-batch numbers are written inside bars up to this many events


def gantt_arrays(timeline) -> dict[str, dict]:
    """Per kind: bar lengths, starts, devices, hover data and labels, ready for a trace."""
    label = len(timeline.events) <= LABEL_LIMIT
    out = {}
    for kind in KINDS:
        evs = [e for e in timeline.events if e.kind == kind]
        mb = [f"{e.microbatch}/{e.other}" if e.other >= 0 else str(e.microbatch) for e in evs]
        out[kind] = dict(
            x=np.array([e.end - e.start for e in evs]), base=np.array([e.start for e in evs]),
            y=np.array([e.device for e in evs]),
            customdata=np.array([[m, e.stage, e.start, e.end] for m, e in zip(mb, evs)],
                                dtype=object).reshape(-1, 4),
            text=mb if label else None)
    return out


def gantt(timeline, title: str = "", height: int | None = None,
          x_title: str = "time (units of the F, B, W you chose)") -> go.Figure:
    """Device x time chart of a Timeline, one colour per kind of operation."""
    devices = timeline.devices
    fig = figure(title or _title(timeline), x_title, "device",
                 height=height or _height(devices), width=860, barmode="overlay",
                 bargap=0.15, margin=dict(t=90), uniformtext=dict(minsize=8, mode="hide"),
                 legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    for kind, arrays in gantt_arrays(timeline).items():
        name, colour = KINDS[kind]
        fig.add_bar(orientation="h", name=name, marker=dict(color=colour, line_width=0.5,
                                                            line_color="white"),
                    textposition="inside", insidetextanchor="middle", textfont_size=9,
                    hovertemplate=(f"{name}<br>micro-batch %{{customdata[0]}}<br>"
                                   "stage %{customdata[1]}<br>%{customdata[2]:.3g} → "
                                   "%{customdata[3]:.3g}<extra>device %{y}</extra>"),
                    **arrays)
    fig.update_yaxes(autorange="reversed", dtick=1)
    return fig


def _height(devices: int) -> int:
    return 170 + 30 * devices


def _title(timeline) -> str:
    return (f"{timeline.schedule}: {timeline.stages} stages, {timeline.microbatches} "
            f"micro-batches · bubble {timeline.bubble:.3g} per device "
            f"({timeline.bubble_fraction:.0%} of the step)")


def update_gantt(fig: go.Figure, timeline) -> None:
    """Replace the bars of a `gantt` figure in place (for a FigureWidget)."""
    for trace, arrays in zip(fig.data, gantt_arrays(timeline).values()):
        trace.update(**arrays)
    fig.layout.title.text = _title(timeline)
    fig.layout.height = _height(timeline.devices)


def bubble_curves(microbatches, fractions: dict[str, list], title: str = "") -> go.Figure:
    """Bubble fraction (idle share of the step) against the number of micro-batches."""
    fig = figure(title or "Share of the step spent idle", "micro-batches per step",
                 "bubble / step time")
    for i, (name, ys) in enumerate(fractions.items()):
        xs = [m for m, y in zip(microbatches, ys) if y is not None]
        fig.add_scatter(x=xs, y=[y for y in ys if y is not None], mode="lines+markers",
                        name=name, line_color=SEQUENCE[i % len(SEQUENCE)])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def formula_bars(names, simulated, published, title: str = "") -> go.Figure:
    """Simulated bubble beside the published formula, one pair of bars per schedule."""
    fig = figure(title or "Bubble per device: simulation vs DeepSeek-V3 Table 2", "",
                 "idle time per device", barmode="group")
    fig.add_bar(x=list(names), y=list(simulated), name="simulated",
                marker_color=COLORS["primary"])
    fig.add_bar(x=list(names), y=list(published), name="published formula",
                marker_color=COLORS["neutral"])
    return fig


def streams(pieces, title: str = "") -> go.Figure:
    """The compute and communication streams of a chunk pair, forward vs backward pieces."""
    fig = figure(title, "time (units of one forward attention)", "", height=260, width=760,
                 barmode="overlay", margin=dict(t=80),
                 legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    colours = {"forward": COLORS["primary"], "backward": COLORS["secondary"]}
    for chunk, colour in colours.items():
        ps = [p for p in pieces if p.chunk == chunk]
        fig.add_bar(orientation="h", name=f"{chunk} chunk", x=[p.end - p.start for p in ps],
                    base=[p.start for p in ps], y=[p.stream for p in ps],
                    text=[p.name for p in ps], textposition="inside",
                    insidetextanchor="middle", marker=dict(color=colour, line_width=1,
                                                           line_color="white"),
                    hovertemplate="%{text}: %{base:.2g} → %{x:.2g} long<extra></extra>")
    fig.update_yaxes(categoryorder="array", categoryarray=["comm", "compute"])
    return fig


def tradeoff(names, bubbles, sends, params, title: str = "") -> go.Figure:
    """Each schedule as a point: bubble per device against p2p sends per micro-batch, the
    label giving the parameters each device holds (in units of 1F1B's)."""
    fig = figure(title or "Bubble against communication, same devices",
                 "p2p sends per micro-batch", "bubble per device (units of F, B)",
                 height=380, width=760)
    for i, (name, x, y, p) in enumerate(zip(names, sends, bubbles, params)):
        fig.add_scatter(x=[x], y=[y], mode="markers+text", name=name,
                        text=[f"{name} ({p:g}× params)"], textposition="top center",
                        marker=dict(size=14, color=SEQUENCE[i % len(SEQUENCE)]))
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(rangemode="tozero")
    return fig
