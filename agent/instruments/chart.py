"""A reply's entropy curves as a matplotlib figure (``epistemic log plot``): entropy and
varentropy above, the chosen token's logprob below, reasoning shaded, the adaptive sampler's
actions as coloured markers, a second turn overlaid in another colour.

matplotlib (the optional ``plot`` extra) is imported inside :func:`draw`, through its
object-oriented API and the Agg canvas: no pyplot, no global backend, no display needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.instruments.compare import Alignment, Anchor, align
from agent.instruments.curves import ACTIONS, TurnCurves

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
TURN_COLOURS = ("#1f77b4", "#d62728")  # first turn blue, second red
ACTION_COLOURS = {"argmax": "#2ca02c", "sample": "#7f7f7f", "explore": "#ff7f0e", "pause": "#9467bd"}
TURN_MARKERS = ("o", "^")


@dataclass(frozen=True)
class ChartRequest:
    """What to draw: one turn, or two on one token axis; the picture's size in pixels (immutable)."""

    first: TurnCurves
    second: TurnCurves | None = None
    anchor: Anchor = "start"
    width: int = 1400
    height: int = 800


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _title(request: ChartRequest) -> str:
    turns = [request.first] if request.second is None else [request.first, request.second]
    head = "  vs  ".join(t.label for t in turns)
    prompt = request.first.prompt.strip().replace("\n", " ")
    return head + (f'\n"{prompt[:90]}{"…" if len(prompt) > 90 else ""}"' if prompt else "")


def draw(request: ChartRequest) -> Figure:
    """The figure for ``request``: axes[0] entropy (its twin axes[2] varentropy), axes[1] logprob.

    Each curve is a line labelled ``entropy #ID`` / ``varentropy #ID`` / ``logprob #ID`` whose
    y data are the turn's values on the shared token axis (NaN where a turn has no token or the
    value was not recorded)."""
    from matplotlib.figure import Figure

    turns = [request.first] if request.second is None else [request.first, request.second]
    aligned = align(turns[0], turns[-1], request.anchor)
    offsets = [aligned.offset_a, aligned.offset_b][: len(turns)]
    fig = Figure(figsize=(request.width / DPI, request.height / DPI), dpi=DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    var_axis = top.twinx()
    labelled: set[str] = set()  # each action in the legend once, whichever turn shows it first
    for n, (turn, offset) in enumerate(zip(turns, offsets, strict=True)):
        _draw_turn(top, var_axis, bottom, turn, offset, n, labelled)
    _dress(top, var_axis, bottom, turns, aligned if request.second is not None else None)
    fig.suptitle(_title(request), fontsize=10)
    return fig


def _draw_turn(top: Axes, var_axis: Axes, bottom: Axes, turn: TurnCurves, offset: int, n: int,
               labelled: set[str]) -> None:
    colour = TURN_COLOURS[n]
    x = list(range(offset, offset + len(turn)))
    for k, (start, end) in enumerate(turn.reasoning_runs):
        span = (offset + start - 0.5, offset + end - 0.5)
        top.axvspan(*span, color=colour, alpha=0.08, lw=0, label=f"reasoning #{turn.turn_id}" if k == 0 else None)
        bottom.axvspan(*span, color=colour, alpha=0.08, lw=0)
    entropy = _nan(turn.entropy)
    top.plot(x, entropy, color=colour, lw=1.3, label=f"entropy #{turn.turn_id}")
    if turn.has_varentropy:
        var_axis.plot(x, _nan(turn.varentropy), color=colour, lw=1.0, ls="--", alpha=0.8, label=f"varentropy #{turn.turn_id}")
    else:  # logged before varentropy was recorded: said, never drawn as zeros
        top.plot([], [], ls="", label=f"varentropy #{turn.turn_id}: not recorded")
    bottom.plot(x, _nan(turn.logprob), color=colour, lw=1.0, drawstyle="steps-mid", label=f"logprob #{turn.turn_id}")
    for action in ACTIONS:
        at = [i for i, a in enumerate(turn.actions) if a == action]
        if at:
            top.scatter([x[i] for i in at], [entropy[i] for i in at], s=14, marker=TURN_MARKERS[n], zorder=3,
                        color=ACTION_COLOURS[action], label=None if action in labelled else action)
            labelled.add(action)


def _dress(top: Axes, var_axis: Axes, bottom: Axes, turns: Sequence[TurnCurves], aligned: Alignment | None) -> None:
    bound = any(t.lower_bound for t in turns)
    top.set_ylabel("entropy ≥ (top-k only), nats" if bound else "entropy, nats")
    var_axis.set_ylabel("varentropy, nats²")
    if not any(t.has_varentropy for t in turns):
        var_axis.set_yticks([])
        top.text(0.99, 0.97, "varentropy not recorded", transform=top.transAxes, ha="right", va="top",
                 fontsize=8, color="#555555")
    bottom.set_ylabel("chosen-token logprob")
    bottom.set_xlabel("token")
    if aligned is not None and aligned.diverged_at is not None:
        for axis in (top, bottom):
            axis.axvline(aligned.diverged_at - 0.5, color="#444444", lw=0.8, ls=":")
        top.annotate(" diverge", (aligned.diverged_at - 0.5, 0.01), xycoords=("data", "axes fraction"),
                     fontsize=8, ha="left", va="bottom", color="#444444")
    handles, labels = top.get_legend_handles_labels()
    more, more_labels = var_axis.get_legend_handles_labels()
    top.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.06, 1.0))
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.06, 1.0))
    for axis in (top, bottom):
        axis.grid(alpha=0.3)


def save(fig: Figure, path: Path) -> None:
    """Write the figure as a PNG of exactly its pixel size; OSError if the file cannot be written."""
    fig.savefig(path, format="png", dpi=DPI)
