"""Per-token curves drawn in the terminal: one column per token, Unicode eighth blocks for the
turn being read, braille dots for the turn it is compared with, reasoning columns shaded, the
cursor's column highlighted, the adaptive sampler's action as a coloured mark per token.

:func:`chart_content` is pure (size in, :class:`~textual.content.Content` out), so what is drawn
can be tested without a terminal; :class:`CurveChart` only keeps the window on the cursor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from agent.instruments.compare import Alignment

EIGHTHS = " ▁▂▃▄▅▆▇█"
_DOTS = (0x01 | 0x08, 0x02 | 0x10, 0x04 | 0x20, 0x40 | 0x80)  # braille dot rows, top to bottom
GUTTER = 7
FIRST, SECOND, CURSOR = "#5fafff", "#ff5f5f", "#ffd75f"
REASONING_BG, CURSOR_BG = "#2e2a48", "#4a4a4a"
ACTION_MARKS = {"argmax": ("▪", "#5fd75f"), "sample": ("•", "#9e9e9e"), "explore": ("◆", "#ffaf00"),
                "pause": ("‖", "#af87ff")}
Cell = tuple[str, str]  # glyph, style


@dataclass(frozen=True)
class Band:
    """One curve band: the first turn's values and the second's (None: no comparison) on the
    common axis, drawn from 0 up to ``top`` (immutable; built and drawn on the UI thread)."""

    title: str
    first: Sequence[float | None]
    second: Sequence[float | None] | None
    top: float


def _fill(value: float | None, top: float, rows: int) -> int:
    """Bar height in eighths of a row (a known positive value shows at least one eighth)."""
    if value is None or math.isnan(value) or value <= 0:
        return 0
    return max(1, min(rows * 8, round(value / top * rows * 8)))


def _dot(value: float | None, top: float, rows: int) -> tuple[int, int] | None:
    """(row from the top, dot row in that cell) of a compared value; None when unknown."""
    if value is None or math.isnan(value):
        return None
    quarters = max(0, min(rows * 4 - 1, math.floor(max(value, 0.0) / top * rows * 4)))
    return rows - 1 - quarters // 4, 3 - quarters % 4


def _background(position: int, cursor: int, shaded: Sequence[bool]) -> str:
    if position == cursor:
        return CURSOR_BG
    return REASONING_BG if position < len(shaded) and shaded[position] else ""


def band_cells(band: Band, rows: int, positions: range, cursor: int, shaded: Sequence[bool]) -> list[list[Cell]]:
    """The band's grid, ``rows`` × ``len(positions)``, top row first."""
    grid: list[list[Cell]] = [[] for _ in range(rows)]
    top = band.top if band.top > 0 else 1.0
    for p in positions:
        bg = _background(p, cursor, shaded)
        colour = CURSOR if p == cursor else FIRST
        style = colour + (f" on {bg}" if bg else "")
        fill = _fill(band.first[p] if p < len(band.first) else None, top, rows)
        dot = _dot(band.second[p] if band.second is not None and p < len(band.second) else None, top, rows)
        full = rows - fill // 8  # rows from this one down are full
        for r, row in enumerate(grid):
            part = 8 if r >= full else (fill % 8 if r == full - 1 else 0)
            if dot is not None and dot[0] == r:
                under = colour if part == 8 else bg
                row.append((chr(0x2800 + _DOTS[dot[1]]), f"bold {SECOND}" + (f" on {under}" if under else "")))
            else:
                row.append((EIGHTHS[part], style))
    return grid


def action_cells(actions: Sequence[str | None], positions: range, cursor: int, shaded: Sequence[bool]) -> list[Cell]:
    """One row: each token's adaptive-sampler action as a coloured mark (blank: none recorded)."""
    row: list[Cell] = []
    for p in positions:
        bg = _background(p, cursor, shaded)
        action = actions[p] if p < len(actions) else None
        mark, colour = ACTION_MARKS.get(action or "", (" ", ""))
        row.append((mark, (colour or "default") + (f" on {bg}" if bg else "")))
    return row


def axis_cells(positions: range, cursor: int) -> list[Cell]:
    """Token numbers every ten columns, the cursor's column marked."""
    text = [" "] * len(positions)
    for i, p in enumerate(positions):
        label = str(p)
        if p % 10 == 0 and i + len(label) <= len(text) and all(c == " " for c in text[max(0, i - 1): i + len(label)]):
            text[i: i + len(label)] = list(label)
    return [("▲" if p == cursor else text[i], f"bold {CURSOR}" if p == cursor else "dim") for i, p in enumerate(positions)]


@dataclass(frozen=True)
class ChartData:
    """Everything of the two turns the chart draws, on the common axis: built once per alignment
    (the cursor moves without recomputing it). Immutable; built and drawn on the UI thread."""

    bands: tuple[Band, ...]
    shaded: tuple[bool, ...]  # reasoning columns of the first turn
    actions: tuple[tuple[str, tuple[str | None, ...]], ...]  # (row label, action per position)


def chart_data(alignment: Alignment, compared: bool) -> ChartData:
    """The bands (entropy, varentropy where recorded, chosen-token p), shading and action rows of
    ``alignment``; ``compared``: draw ``alignment.b`` too."""
    al = alignment
    first, second = al.a, al.b

    def pair(a_vals: Sequence[float | None], b_vals: Sequence[float | None]) -> tuple[list[float | None], list[float | None] | None]:
        on_a, on_b = al.series(a_vals, b_vals)
        return on_a, (on_b if compared else None)

    def top(*series: Sequence[float | None] | None) -> float:
        known = [v for s in series if s is not None for v in s if v is not None and not math.isnan(v)]
        return max(known, default=1.0)

    entropy, entropy_b = pair(first.entropy, second.entropy)
    bound = "≥ " if first.lower_bound or (compared and second.lower_bound) else ""
    bands = [Band(f"entropy {bound}(nats)", entropy, entropy_b, top(entropy, entropy_b))]
    if first.has_varentropy or (compared and second.has_varentropy):
        var, var_b = pair(first.varentropy, second.varentropy)
        bands.append(Band("varentropy (nats²)", var, var_b, top(var, var_b)))
    p_a, p_b = pair(*([None if v is None else math.exp(v) for v in c.logprob] for c in (first, second)))
    bands.append(Band("chosen token p = e^logprob", p_a, p_b, 1.0))
    shaded = tuple(r == "reasoning" for r in al.series(list(first.regions), [])[0])
    a_actions, b_actions = al.series(first.actions, second.actions)
    actions = [("act", tuple(a_actions))] + ([("act²", tuple(b_actions))] if compared else [])
    return ChartData(tuple(bands), shaded, tuple(actions))


@dataclass(frozen=True)
class ChartView:
    """What the chart shows: the aligned turns (``alignment.b`` is ``alignment.a`` when nothing
    is compared) as :func:`chart_data`, the cursor's position on the common axis and the first
    column's position (immutable; UI thread)."""

    alignment: Alignment
    data: ChartData
    cursor: int = 0
    start: int = 0


def _split_rows(height: int, bands: int) -> list[int]:
    """Rows for each band: entropy gets the most, the probability band two or more."""
    weights = (5, 3, 2)[:bands] if bands == 3 else (5, 2)
    rows = [max(2, height * w // sum(weights)) for w in weights]
    rows[0] += max(0, height - sum(rows))
    return rows


def chart_content(view: ChartView, width: int, height: int) -> Content:
    """The whole chart for a ``width`` × ``height`` area (see the module docstring)."""
    columns = max(1, width - GUTTER)
    positions = range(view.start, min(view.alignment.length, view.start + columns))
    bands, shaded = view.data.bands, view.data.shaded
    fixed = len(bands) + 1 + len(view.data.actions) + int(len(bands) == 2)  # titles, axis, actions, note
    lines: list[list[Cell]] = []
    for band, rows in zip(bands, _split_rows(max(2 * len(bands), height - fixed), len(bands)), strict=True):
        lines.append([(f"{band.title}  max {band.top:.2f}"[:width], "dim")])
        for r, cells in enumerate(band_cells(band, rows, positions, view.cursor, shaded)):
            label = f"{band.top:>5.2f}┤" if r == 0 else ("    0┤" if r == rows - 1 else "     │")
            lines.append([(label.rjust(GUTTER - 1) + " ", "dim"), *cells])
        if len(bands) == 2 and band is bands[0]:
            lines.append([("varentropy: not recorded (logged before it was measured)"[:width], "dim italic")])
    for label, actions in view.data.actions:
        head = (label.rjust(GUTTER - 1) + " ", "dim")
        if any(actions):
            lines.append([head, *action_cells(actions, positions, view.cursor, shaded)])
        else:
            lines.append([head, ("no adaptive actions (fixed sampler)"[: max(0, width - GUTTER)], "dim italic")])
    lines.append([(" " * GUTTER, ""), *axis_cells(positions, view.cursor)])
    return Content.assemble(*_runs(lines))


def _runs(lines: Sequence[Sequence[Cell]]) -> list[Cell]:
    """The lines joined by newlines, neighbouring cells of one style merged (far fewer spans)."""
    out: list[Cell] = []
    for n, line in enumerate(lines):
        for text, style in ([("\n", "")] if n else []) + list(line):
            if out and out[-1][1] == style:
                out[-1] = (out[-1][0] + text, style)
            else:
                out.append((text, style))
    return out


class CurveChart(Widget):
    """The chart of one turn (and the one compared with it). Called on the UI thread only; it
    holds no lock: :meth:`show` replaces the whole view, and the window follows the cursor."""

    DEFAULT_CSS = "CurveChart { height: 1fr; width: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ChartView | None = None
        self._data_for: tuple[Alignment, bool] | None = None  # what view.data was built from

    @property
    def columns(self) -> int:
        return max(1, self.size.width - GUTTER)

    def show(self, alignment: Alignment, compared: bool, cursor: int) -> None:
        """Draw ``alignment`` with the cursor at ``cursor``, scrolling only as far as needed."""
        start = self.view.start if self.view is not None else 0
        if cursor < start:
            start = cursor
        elif cursor >= start + self.columns:
            start = cursor - self.columns + 1
        if self.view is None or self._data_for is None or self._data_for[0] is not alignment or self._data_for[1] != compared:
            data = chart_data(alignment, compared)
            self._data_for = (alignment, compared)
        else:
            data = self.view.data
        self.view = ChartView(alignment, data, cursor, max(0, start))
        self.refresh()

    def render(self) -> Content:
        if self.view is None:
            return Content("")
        return chart_content(self.view, self.size.width, self.size.height)
