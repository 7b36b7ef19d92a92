"""The Harvest screen (F11): curate the dialogue log for training datasets.

Left, the conversations with their tags and curation tallies; right, the highlighted
conversation's turns (regenerated alternatives included) and how many examples an export would
contain now. On the highlighted reply: g / b rate it good / bad, e edits it (a text area; Ctrl+S
saves the correction beside the original), p prefers it over its alternatives, x excludes it (or
includes it again); X excludes the whole conversation, u undoes the conversation's last action.

Every SQLite read and write runs in a thread worker; results come back as messages, so the
event loop never waits for the log (which the engine may be writing at the same moment).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.worker import get_current_worker

from agent.errors import LogError
from agent.harvest import curation
from agent.harvest.counts import (
    ConversationCuration,
    ExportCounts,
    count,
    per_conversation,
    turn_shapes,
)
from agent.harvest.curation import CurationState, CurationStore, load_state
from agent.records import ConversationSummary, StoredTurn
from tui.widgets.harvest_lists import ConversationList, CountsBar, TurnList, turn_marks

LIST_LIMIT = 500  # conversations shown (newest first)


class HarvestLog(CurationStore, Protocol):
    """The dialogue log as the Harvest screen uses it (:class:`agent.log.db.DialogueLog`), called
    from the screen's thread workers only."""

    def list_conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Conversations, newest first."""
        ...

    def conversation_turns(self, conversation_id: int) -> list[StoredTurn]:
        """Every turn in order, alternatives included."""
        ...

    def close(self) -> None:
        """Close the file."""
        ...


Act = Callable[[HarvestLog], str]  # a curation step run in a worker; returns what to tell the user


class HarvestScreen(Screen[None]):
    """Curate conversations in place (see the module docstring for the keys).

    Called on the UI thread; its workers (``_open``, ``_read_overview``, ``_read_turns``, ``_act``)
    run in threads and post :class:`Opened`, :class:`Overviewed`, :class:`TurnsRead`,
    :class:`Acted` or :class:`Failed`. One action runs at a time (``acting``), so "undo last"
    never overtakes the action before it. The log's own lock guards its connection.
    """

    DEFAULT_CSS = """
    HarvestScreen > Horizontal { height: 1fr; }
    HarvestScreen #harvest-conversations { width: 42; height: 1fr; border-right: tall $primary; }
    HarvestScreen #harvest-pane { width: 1fr; }
    HarvestScreen #harvest-counts { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    HarvestScreen #harvest-turns { height: 1fr; }
    HarvestScreen #harvest-detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $primary; }
    HarvestScreen #harvest-editor { height: 10; display: none; }
    HarvestScreen.editing #harvest-editor { display: block; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "rate('good')", "Good"),
        Binding("b", "rate('bad')", "Bad"),
        Binding("e", "edit", "Edit"),
        Binding("p", "prefer", "Prefer"),
        Binding("x", "exclude_turn", "Exclude"),
        Binding("X", "exclude_conversation", "Excl. conv.", key_display="shift+x"),
        Binding("u", "undo_last", "Undo"),
        Binding("ctrl+s", "save_edit", "Save edit", show=False),
        Binding("r", "reload", "Reload", show=False),
    ]

    @dataclass
    class Opened(Message):
        """The screen opened its own log (no engine log was given)."""

        log: HarvestLog

    @dataclass
    class Overviewed(Message):
        """Conversations, curation and export counts, read in one snapshot."""

        summaries: Sequence[ConversationSummary]
        state: CurationState
        counts: ExportCounts
        tallies: Mapping[int, ConversationCuration]

    @dataclass
    class TurnsRead(Message):
        """One conversation's turns."""

        conversation_id: int
        turns: Sequence[StoredTurn]
        state: CurationState

    @dataclass
    class Acted(Message):
        """A curation action was stored (or undone)."""

        text: str

    @dataclass
    class Failed(Message):
        """A read or an action failed (one line)."""

        reason: str

    def __init__(self, log: HarvestLog | None = None, *, path: Path | None = None) -> None:
        super().__init__()
        self.dialogue_log = log
        self.path = path
        self.owns_log = False
        self.state = CurationState()
        self.conversation_id: int | None = None
        self.acting = False
        self.editing: int | None = None  # the turn whose correction the text area holds

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ConversationList(id="harvest-conversations", markup=False)
            with Vertical(id="harvest-pane"):
                yield CountsBar("Reading the dialogue log…", id="harvest-counts")
                yield TurnList(id="harvest-turns")
                yield Static("", id="harvest-detail", markup=False)
                yield TextArea(id="harvest-editor")
        yield Footer()

    def on_mount(self) -> None:
        if self.dialogue_log is not None:
            self.action_reload()
        elif self.path is not None:
            self._open(self.path)
        else:
            self.query_one(CountsBar).update("The dialogue log is off.")

    async def on_unmount(self) -> None:
        if self.owns_log and self.dialogue_log is not None:
            await asyncio.to_thread(self.dialogue_log.close)

    # -- workers (threads) -----------------------------------------------------------------

    @work(thread=True, group="harvest-open", exit_on_error=False)
    def _open(self, path: Path) -> None:
        from agent.log import DialogueLog

        if not path.exists():
            self.post_message(self.Failed(f"{path}: no dialogue log yet (talk first, then curate)"))
            return
        try:
            self.post_message(self.Opened(DialogueLog(path)))
        except LogError as exc:
            self.post_message(self.Failed(str(exc)))

    @work(thread=True, exclusive=True, group="harvest-overview", exit_on_error=False)
    def _read_overview(self, log: HarvestLog) -> None:
        try:
            with log.snapshot("reading the curation") as conn:
                state, shapes = load_state(conn), turn_shapes(conn)
                summaries = log.list_conversations(limit=LIST_LIMIT)
        except LogError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Overviewed(summaries, state, count(state, shapes), per_conversation(state, shapes)))

    @work(thread=True, exclusive=True, group="harvest-turns", exit_on_error=False)
    def _read_turns(self, log: HarvestLog, conversation_id: int) -> None:
        try:
            with log.snapshot("reading a conversation") as conn:
                state = load_state(conn)
                turns = log.conversation_turns(conversation_id)
        except LogError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        if not get_current_worker().is_cancelled:  # a newer highlight replaced this read
            self.post_message(self.TurnsRead(conversation_id, turns, state))

    @work(thread=True, group="harvest-act", exit_on_error=False)
    def _act(self, log: HarvestLog, step: Act) -> None:
        try:
            self.post_message(self.Acted(step(log)))
        except LogError as exc:
            self.post_message(self.Failed(str(exc)))

    # -- results (UI thread) ---------------------------------------------------------------

    def on_harvest_screen_opened(self, message: Opened) -> None:
        self.dialogue_log, self.owns_log = message.log, True
        self.action_reload()

    def on_harvest_screen_overviewed(self, message: Overviewed) -> None:
        self.state = message.state
        self.query_one(CountsBar).show(message.counts)
        listing = self.query_one(ConversationList)
        listing.show(message.summaries, message.state, message.tallies)
        if not message.summaries:
            self.query_one("#harvest-detail", Static).update("No conversations logged yet.")
        elif self.focused is None:
            listing.focus()
        self._read_selected()

    def on_harvest_screen_turns_read(self, message: TurnsRead) -> None:
        if message.conversation_id != self.conversation_id:
            return
        self.state = message.state
        self.query_one(TurnList).show(message.turns, message.state)
        self._show_detail()

    def on_harvest_screen_acted(self, message: Acted) -> None:
        self.acting = False
        self.notify(message.text, timeout=3)
        self.action_reload()

    def on_harvest_screen_failed(self, message: Failed) -> None:
        self.acting = False
        self.notify(message.reason, severity="error")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "harvest-conversations":
            self._read_selected()
        else:
            self._show_detail()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "harvest-conversations":
            self.query_one(TurnList).focus()

    def _read_selected(self) -> None:
        selected = self.query_one(ConversationList).selected_id
        if selected is not None and self.dialogue_log is not None:
            self.conversation_id = selected
            self._read_turns(self.dialogue_log, selected)

    def _show_detail(self) -> None:
        turn = self.query_one(TurnList).selected
        detail = self.query_one("#harvest-detail", Static)
        if turn is None:
            detail.update("")
            return
        marks = turn_marks(turn, self.state)
        lines = [f"#{turn.id} {turn.role}" + (f" · {', '.join(marks)}" if marks else ""), turn.text]
        for label, corrected in (("corrected", self.state.edits.get(turn.id)),
                                 ("really said", self.state.transcripts.get(turn.id))):
            if corrected is not None:
                lines += [f"{label}:", corrected]
        detail.update("\n".join(lines))

    # -- actions (UI thread; the work goes to ``_act``) -------------------------------------

    def _run(self, step: Act) -> None:
        if self.dialogue_log is None:
            self.notify("The dialogue log is not open.", severity="warning")
        elif self.acting:
            self.notify("Still saving the last action.", severity="warning", timeout=2)
        else:
            self.acting = True
            self._act(self.dialogue_log, step)

    def _turn(self) -> StoredTurn | None:
        turn = self.query_one(TurnList).selected
        if turn is None:
            self.notify("Choose a turn first.", severity="warning")
        return turn

    def action_rate(self, rating: str) -> None:
        turn = self._turn()
        if turn is not None and self.editing is None:
            tid = turn.id
            self._run(lambda log: f"action {curation.rate(log, tid, rating)}: turn {tid} rated {rating}")

    def action_prefer(self) -> None:
        turn = self._turn()
        if turn is not None and self.editing is None:
            tid = turn.id
            self._run(lambda log: f"action {curation.prefer(log, tid)}: turn {tid} preferred")

    def action_exclude_turn(self) -> None:
        turn = self._turn()
        if turn is None or self.editing is not None:
            return
        tid = turn.id
        if tid in self.state.excluded_turns:
            self._run(lambda log: f"turn {tid} included again (undid {_ids(curation.include(log, 'turn', tid))})")
        else:
            self._run(lambda log: f"action {curation.exclude(log, 'turn', tid)}: turn {tid} excluded")

    def action_exclude_conversation(self) -> None:
        cid = self.conversation_id
        if cid is None or self.editing is not None:
            return
        if cid in self.state.excluded_conversations:
            self._run(lambda log: f"conversation {cid} included again (undid {_ids(curation.include(log, 'conversation', cid))})")
        else:
            self._run(lambda log: f"action {curation.exclude(log, 'conversation', cid)}: conversation {cid} excluded")

    def action_undo_last(self) -> None:
        cid = self.conversation_id
        if cid is not None and self.editing is None:
            self._run(lambda log: _undo_last(log, cid))

    def action_edit(self) -> None:
        turn = self._turn()
        if turn is None or self.editing is not None:
            return
        if turn.role != "assistant":
            self.notify(f"turn {turn.id} is a user turn: only assistant replies are edited", severity="error")
            return
        self.editing = turn.id
        editor = self.query_one("#harvest-editor", TextArea)
        editor.load_text(self.state.edits.get(turn.id, turn.text))
        self.add_class("editing")
        editor.focus()
        self.notify(f"Correcting turn {turn.id}: Ctrl+S saves, Esc cancels.", timeout=4)

    def action_save_edit(self) -> None:
        tid = self.editing
        if tid is None:
            return
        text = self.query_one("#harvest-editor", TextArea).text
        self._close_editor()
        self._run(lambda log: f"action {curation.edit(log, tid, text)}: turn {tid} corrected")

    def action_back(self) -> None:
        if self.editing is not None:
            self._close_editor()
            self.notify("Edit cancelled; nothing saved.", timeout=2)
        else:
            self.dismiss(None)

    def _close_editor(self) -> None:
        self.editing = None
        self.remove_class("editing")
        self.query_one(TurnList).focus()

    def action_reload(self) -> None:
        if self.dialogue_log is not None:
            self._read_overview(self.dialogue_log)


def _ids(ids: list[int]) -> str:
    return "action " + ", ".join(map(str, ids))


def _undo_last(log: HarvestLog, conversation_id: int) -> str:
    last = curation.last_action(log, conversation_id)
    if last is None:
        raise LogError(f"conversation {conversation_id}: nothing to undo")
    curation.undo(log, last.id)
    return f"undone: action {last.id} ({last.target} {last.target_id}: {last.describe()})"
