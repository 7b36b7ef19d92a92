"""The entropy view (Ctrl+E): one reply's per-token curves full screen, a cursor that walks its
tokens, and a second turn (a regenerated alternative, the same prompt under another persona or
adapter) overlaid on demand.

The log is read in thread workers (SQLite may wait for the engine's write lock; decoding a long
reply takes a moment); results come back as messages, and the UI thread only draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from agent.context import HistoryEntry
from agent.errors import UserError
from agent.instruments.compare import Alignment, Anchor, ComparableTurn, align, comparable_turns
from agent.instruments.curves import CurveLog, TurnCurves, load_curves
from agent.llm.base import TokenStep, token_id_label
from tui.widgets.curve_chart import ACTION_MARKS, FIRST, REASONING_BG, SECOND, CurveChart
from tui.widgets.tokens import visible_piece

Jump = Literal["start", "end"]


def last_reply_id(history: Sequence[HistoryEntry]) -> int | None:
    """The logged id of the conversation's last reply (None: no logged reply yet)."""
    return next((e.turn_id for e in reversed(history) if e.role == "assistant" and e.turn_id is not None), None)


def _num(value: float | None, unit: str = "", digits: int = 3) -> str:
    return "not recorded" if value is None or math.isnan(value) else f"{value:.{digits}f}{unit}"


def _step_at(curves: TurnCurves, offset: int, position: int) -> TokenStep | None:
    i = position - offset
    return curves.steps[i] if 0 <= i < len(curves) else None


def token_panel(alignment: Alignment, compared: ComparableTurn | None, position: int) -> Content:
    """The side panel: the token under the cursor with its numbers and top alternatives, and the
    compared turn's token at the same position."""
    first = alignment.a
    step = _step_at(first, alignment.offset_a, position)
    lines: list[tuple[str, str]] = []
    if step is None:
        lines.append((f"position {position}: no token of #{first.turn_id} here\n", "dim"))
    else:
        i = position - alignment.offset_a
        lines += [(f"token #{i} · {first.regions[i]} · {len(first)} in all\n", "bold"),
                  (f"{visible_piece(step.text)!s}", f"bold {FIRST}"), (f"  id {token_id_label(step.token_id)}\n", "dim")]
        bound = " (≥, top-k)" if first.lower_bound else ""
        p = "" if step.logprob is None else f"  (p {math.exp(step.logprob):.1%})"
        lines += [(f"entropy     {_num(step.entropy, ' nats')}{bound}\n", ""),
                  (f"varentropy  {_num(step.varentropy, ' nats²')}\n", ""),
                  (f"logprob     {_num(step.logprob)}{p}\n", ""),
                  (f"action      {step.action or '— (fixed sampler)'}\n", ACTION_MARKS.get(step.action or "", ("", ""))[1])]
        if step.accepted_draft is not None:
            lines.append((f"draft       {'accepted' if step.accepted_draft else 'rejected'}\n", ""))
        lines += _alternatives(step)
    if compared is not None:
        other = _step_at(alignment.b, alignment.offset_b, position)
        lines.append((f"\ncompared #{alignment.b.turn_id} ({compared.label})\n", f"bold {SECOND}"))
        if other is None:
            lines.append(("  no token here\n", "dim"))
        else:
            lines.append((f"  {visible_piece(other.text)}  H {_num(other.entropy, digits=2)}  lp {_num(other.logprob, digits=2)}\n", SECOND))
    return Content.assemble(*lines)


def _alternatives(step: TokenStep) -> list[tuple[str, str]]:
    if not step.top:
        return [("\ntop alternatives: not recorded\n", "dim")]
    out = [("\ntop alternatives\n", "bold")]
    for alt in step.top[:8]:
        p = math.exp(alt.logprob)
        bar = "█" * int(p * 10) + ("▌" if p * 10 % 1 >= 0.5 else "")
        chosen = alt.token_id == step.token_id and alt.text == step.text
        out.append((f"  {visible_piece(alt.text)[:12]:<12} {p:6.1%} {bar}\n", f"bold {FIRST}" if chosen else ""))
    return out


class EntropyViewScreen(Screen[None]):
    """One turn's curves (left/right, home/end, page up/down walk the tokens; c cycles the turn
    compared with it; a lines the two up at their first answer token; Esc goes back).

    Called on the UI thread; ``_load`` and ``_load_comparison`` run in thread workers (one of each
    at a time, a newer request replaces an older one) and post :class:`Loaded`,
    :class:`ComparisonLoaded` or :class:`Failed`. The log's own lock guards its connection.
    """

    DEFAULT_CSS = """
    EntropyViewScreen #ev-title { height: auto; max-height: 2; background: $panel; padding: 0 1; text-style: bold; }
    EntropyViewScreen > Horizontal { height: 1fr; }
    EntropyViewScreen #ev-main { width: 1fr; }
    EntropyViewScreen #ev-notice { height: 1fr; content-align: center middle; color: $warning; display: none; }
    EntropyViewScreen.-notice #ev-notice { display: block; }
    EntropyViewScreen.-notice #ev-chart { display: none; }
    EntropyViewScreen #ev-side { width: 40; height: 1fr; padding: 0 1; border-left: tall $primary; overflow-y: auto; }
    EntropyViewScreen #ev-legend { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("left", "move(-1)", "Prev", show=False),
        Binding("right", "move(1)", "Next", show=False),
        Binding("home", "jump('start')", "First", show=False),
        Binding("end", "jump('end')", "Last", show=False),
        Binding("pageup", "page(-1)", "Page back", show=False),
        Binding("pagedown", "page(1)", "Page on", show=False),
        Binding("c", "cycle_comparison", "Compare"),
        Binding("a", "toggle_anchor", "Align"),
    ]

    @dataclass
    class Loaded(Message):
        """The turn's curves and the turns it can be compared with were read."""

        curves: TurnCurves
        comparables: Sequence[ComparableTurn]

    @dataclass
    class ComparisonLoaded(Message):
        """A turn to compare with was read."""

        comparable: ComparableTurn
        curves: TurnCurves

    @dataclass
    class Failed(Message):
        """The turn (``fatal``) or a comparison could not be read."""

        reason: str
        fatal: bool

    def __init__(self, log: CurveLog, turn_id: int | None) -> None:
        super().__init__()
        self.dialogue_log = log
        self.turn_id = turn_id
        self.curves: TurnCurves | None = None
        self.comparables: list[ComparableTurn] = []
        self.compared: ComparableTurn | None = None
        self.compared_curves: TurnCurves | None = None
        self.align_by: Anchor = "start"
        self.cursor = 0  # position on the common axis
        self._comparison_index = -1  # into comparables; -1: nothing compared
        self._shown: Alignment | None = None  # what the chart draws now
        self._shown_by: Anchor = "start"  # the anchor _shown was aligned by

    def compose(self) -> ComposeResult:
        yield Static("Reading the turn…", id="ev-title")
        with Horizontal():
            with Vertical(id="ev-main"):
                yield CurveChart(id="ev-chart")
                yield Static("", id="ev-notice")
            yield Static("", id="ev-side")
        yield Static("", id="ev-legend")
        yield Footer()

    def on_mount(self) -> None:
        if self.turn_id is None:
            self._notice("No logged reply yet: send a message, then Ctrl+E shows its entropy curves.")
        else:
            self._load(self.turn_id)

    # -- reading (thread workers) ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="entropy-view", exit_on_error=False)
    def _load(self, turn_id: int) -> None:
        try:
            curves = load_curves(self.dialogue_log, turn_id)
            comparables = comparable_turns(self.dialogue_log, curves)
        except UserError as exc:  # unknown turn, user turn, no telemetry, damaged blob, locked log
            self.post_message(self.Failed(str(exc), fatal=True))
            return
        self.post_message(self.Loaded(curves, comparables))

    @work(thread=True, exclusive=True, group="entropy-compare", exit_on_error=False)
    def _load_comparison(self, comparable: ComparableTurn) -> None:
        try:
            self.post_message(self.ComparisonLoaded(comparable, load_curves(self.dialogue_log, comparable.turn_id)))
        except UserError as exc:
            self.post_message(self.Failed(f"cannot compare with turn {comparable.turn_id}: {exc}", fatal=False))

    # -- drawing (UI thread) -----------------------------------------------------------------

    def _notice(self, text: str) -> None:
        self.query_one("#ev-notice", Static).update(text)
        self.add_class("-notice")

    def on_entropy_view_screen_failed(self, message: Failed) -> None:
        if message.fatal:
            self.query_one("#ev-title", Static).update(f"Turn {self.turn_id}")
            self._notice(message.reason)
        self.notify(message.reason, severity="warning" if message.fatal else "error")

    def on_entropy_view_screen_loaded(self, message: Loaded) -> None:
        self.curves, self.comparables = message.curves, list(message.comparables)
        c = message.curves
        means = " · ".join(f"{region} H {_num(c.mean_entropy(region), digits=2)}" for region in ("reasoning", "answer")
                           if region in c.regions)
        prompt = c.prompt.strip().replace("\n", " ")
        self.query_one("#ev-title", Static).update(
            f"{c.label} · {len(c)} tokens · {means}" + (f'\n"{prompt[:120]}"' if prompt else ""))
        self.redraw()

    def on_entropy_view_screen_comparison_loaded(self, message: ComparisonLoaded) -> None:
        if self.compared is not None and message.comparable == self.compared:
            self.compared_curves = message.curves
            self.redraw()

    def alignment(self) -> Alignment | None:
        """The turn and the one compared with it on one axis (the same object until either or the
        anchor changes, so the chart builds its data once)."""
        if self.curves is None:
            return None
        other = self.compared_curves if self.compared is not None and self.compared_curves is not None else self.curves
        shown = self._shown
        if shown is not None and shown.a is self.curves and shown.b is other and self._shown_by == self.align_by:
            return shown
        return align(self.curves, other, self.align_by)

    def redraw(self) -> None:
        """Draw chart, side panel and legend; when the alignment changed, the cursor stays on the
        same token of the turn being read."""
        alignment = self.alignment()
        if alignment is None:
            return
        if self._shown is not None:
            self.cursor += alignment.offset_a - self._shown.offset_a
        self._shown, self._shown_by = alignment, self.align_by
        self.cursor = max(0, min(self.cursor, alignment.length - 1))
        compared = self.compared is not None and self.compared_curves is not None
        self.query_one(CurveChart).show(alignment, compared, self.cursor)
        self.query_one("#ev-side", Static).update(token_panel(alignment, self.compared if compared else None, self.cursor))
        self.query_one("#ev-legend", Static).update(self._legend(alignment, compared))

    def _legend(self, alignment: Alignment, compared: bool) -> Content:
        parts: list[tuple[str, str]] = [("█ ", FIRST), (alignment.a.label, ""), ("   ", "")]
        if compared:
            parts += [("⣿ ", SECOND), (alignment.b.label, ""), (f" · aligned by {self.align_by}", "dim")]
            diverged = alignment.diverged_at
            parts.append((f" · diverge at {diverged}" if diverged is not None else " · identical tokens", "dim"))
            parts.append(("   ", ""))
        parts += [("  ", f"on {REASONING_BG}"), (" reasoning   ", "")]
        parts += [p for action, (mark, colour) in ACTION_MARKS.items() for p in ((mark, colour), (f" {action}  ", "dim"))]
        return Content.assemble(*parts)

    # -- keys --------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        self.cursor += step
        self.redraw()

    def action_jump(self, where: Jump) -> None:
        alignment = self.alignment()
        self.cursor = 0 if where == "start" or alignment is None else alignment.length - 1
        self.redraw()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.query_one(CurveChart).columns)

    def action_cycle_comparison(self) -> None:
        if self.curves is None:
            return
        if not self.comparables:
            self.notify("Nothing to compare yet: regenerate the reply (Ctrl+R), or ask the same under another "
                        "persona or adapter.", severity="warning")
            return
        self._comparison_index = (self._comparison_index + 2) % (len(self.comparables) + 1) - 1
        self.compared = self.comparables[self._comparison_index] if self._comparison_index >= 0 else None
        self.compared_curves = None
        if self.compared is not None:
            self.notify(f"Comparing with #{self.compared.turn_id}: {self.compared.label}", timeout=3)
            self._load_comparison(self.compared)
        self.redraw()

    def action_toggle_anchor(self) -> None:
        self.align_by = "answer" if self.align_by == "start" else "start"
        self.notify(f"Aligned by the {'first answer token' if self.align_by == 'answer' else 'first token'}.", timeout=2)
        self.redraw()
