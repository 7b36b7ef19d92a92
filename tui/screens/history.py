"""The history screen: past conversations from the dialogue log; read one, then continue it.

The log is read in thread workers (SQLite may wait for the writer's lock, and a long
conversation takes time to decode); results come back to the UI thread as messages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from agent.errors import LogError
from agent.instruments.curves import CurveLog
from agent.records import ConversationSummary, StoredTurn
from tui.screens.entropy_view import EntropyViewScreen
from tui.widgets.transcript import TranscriptView


class ConversationReader(CurveLog, Protocol):
    """The dialogue log as the history screen reads it (:class:`agent.log.db.DialogueLog`)."""

    def list_conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Conversations, newest first."""
        ...

    def get_conversation(self, conversation_id: int) -> ConversationSummary:
        """One conversation's summary; LogError if there is none."""
        ...

    def active_turns(self, conversation_id: int) -> list[StoredTurn]:
        """A conversation's current branch."""
        ...


def summary_label(summary: ConversationSummary) -> str:
    when = time.strftime("%m-%d %H:%M", time.localtime(summary.updated_at))
    title = summary.title or "(untitled)"
    return f"{when} {title[:40]}\n  #{summary.id} · {summary.persona} · {summary.turns} turns"


def turn_note(turn: StoredTurn) -> str:
    bits = [f"turn {turn.id}"]
    if turn.persona:
        bits.append(turn.persona)
    if turn.alternative_of is not None:
        bits.append(f"alternative of {turn.alternative_of}")
    if turn.interrupted:
        bits.append("interrupted")
    return " · ".join(bits)


class HistoryScreen(Screen[int | None]):
    """Lists conversations (newest first); dismisses with the id to continue, or None.

    The UI thread only draws: ``_read_list`` and ``_read_conversation`` run in thread workers
    (one of each at a time: a newer request replaces an older one) and post :class:`Listed`,
    :class:`Previewed` or :class:`ReadFailed`.
    """

    DEFAULT_CSS = """
    HistoryScreen > Horizontal { height: 1fr; }
    HistoryScreen #conversations { width: 34; height: 1fr; border-right: tall $primary; }
    HistoryScreen #preview-pane { width: 1fr; }
    HistoryScreen #preview-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    """
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("c", "continue_conversation", "Continue", show=False),
        Binding("r", "reload", "Reload"),
        Binding("ctrl+e", "entropy_view", "Entropy view"),
    ]

    @dataclass
    class Listed(Message):
        """The conversation list was read."""

        summaries: Sequence[ConversationSummary]

    @dataclass
    class Previewed(Message):
        """A conversation's current branch was read."""

        summary: ConversationSummary
        turns: Sequence[StoredTurn]

    @dataclass
    class ReadFailed(Message):
        """The log could not be read."""

        reason: str

    def __init__(self, log: ConversationReader) -> None:
        super().__init__()
        self.dialogue_log = log
        self.selected: int | None = None
        self.last_reply: int | None = None  # the previewed conversation's last reply (Ctrl+E)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="conversations")
            with Vertical(id="preview-pane"):
                yield Static("Choose a conversation: ↑↓ reads it, Enter continues it", id="preview-title")
                yield TranscriptView(id="preview")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    # -- reading (thread workers) ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="history-list", exit_on_error=False)
    def _read_list(self) -> None:
        try:
            self.post_message(self.Listed(self.dialogue_log.list_conversations(limit=200)))
        except LogError as exc:
            self.post_message(self.ReadFailed(str(exc)))

    @work(thread=True, exclusive=True, group="history-preview", exit_on_error=False)
    def _read_conversation(self, conversation_id: int) -> None:
        try:
            summary = self.dialogue_log.get_conversation(conversation_id)
            turns = self.dialogue_log.active_turns(conversation_id)
        except LogError as exc:
            self.post_message(self.ReadFailed(str(exc)))
            return
        if not get_current_worker().is_cancelled:  # a newer highlight replaced this read
            self.post_message(self.Previewed(summary, turns))

    # -- drawing (UI thread) -----------------------------------------------------------------

    def action_reload(self) -> None:
        self.query_one("#conversations", OptionList).clear_options()
        self._read_list()

    def on_history_screen_listed(self, message: Listed) -> None:
        listing = self.query_one("#conversations", OptionList)
        listing.clear_options()
        listing.add_options([Option(summary_label(s), id=str(s.id)) for s in message.summaries])
        if not message.summaries:
            self.query_one("#preview-title", Static).update("No conversations logged yet.")
        else:
            listing.highlighted = 0
        listing.focus()

    def on_history_screen_read_failed(self, message: ReadFailed) -> None:
        self.notify(message.reason, severity="error")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.show_conversation(int(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def show_conversation(self, conversation_id: int) -> None:
        """Read a conversation's current branch into the preview (in a thread worker)."""
        self._read_conversation(conversation_id)

    def on_history_screen_previewed(self, message: Previewed) -> None:
        summary = message.summary
        self.selected = summary.id
        self.last_reply = next((t.id for t in reversed(message.turns) if t.role == "assistant"), None)
        self.query_one("#preview-title", Static).update(f"#{summary.id} {summary.title} — Enter continues it")
        preview = self.query_one("#preview", TranscriptView)
        preview.clear()
        for turn in message.turns:
            if turn.role == "user":
                preview.add_user(turn.text)
            else:
                preview.add_assistant(turn.text, turn.reasoning, turn_note(turn))

    def action_entropy_view(self) -> None:
        """Ctrl+E: the previewed conversation's last reply in the entropy view."""
        self.app.push_screen(EntropyViewScreen(self.dialogue_log, self.last_reply))

    def action_continue_conversation(self) -> None:
        listing = self.query_one("#conversations", OptionList)
        option = listing.highlighted_option
        if option is None or option.id is None:
            self.notify("Choose a conversation first.", severity="warning")
            return
        self.dismiss(int(option.id))
