"""The history screen: past conversations from the dialogue log; read one, then continue it."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from agent.errors import LogError
from agent.records import ConversationSummary, StoredTurn
from tui.widgets.transcript import TranscriptView


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
    """Lists conversations (newest first); dismisses with the id to continue, or None."""

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
    ]

    def __init__(self, log: Any) -> None:
        super().__init__()
        self.dialogue_log = log
        self.selected: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="conversations")
            with Vertical(id="preview-pane"):
                yield Static("Choose a conversation: ↑↓ reads it, Enter continues it", id="preview-title")
                yield TranscriptView(id="preview")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        listing = self.query_one("#conversations", OptionList)
        listing.clear_options()
        try:
            summaries = self.dialogue_log.list_conversations(limit=200)
        except LogError as exc:
            self.notify(str(exc), severity="error")
            return
        listing.add_options([Option(summary_label(s), id=str(s.id)) for s in summaries])
        if not summaries:
            self.query_one("#preview-title", Static).update("No conversations logged yet.")
        else:
            listing.highlighted = 0
        listing.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.show_conversation(int(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def show_conversation(self, conversation_id: int) -> None:
        """Read a conversation's current branch into the preview."""
        try:
            summary = self.dialogue_log.get_conversation(conversation_id)
            turns = self.dialogue_log.active_turns(conversation_id)
        except LogError as exc:
            self.notify(str(exc), severity="error")
            return
        self.selected = conversation_id
        self.query_one("#preview-title", Static).update(f"#{summary.id} {summary.title} — Enter continues it")
        preview = self.query_one("#preview", TranscriptView)
        preview.clear()
        for turn in turns:
            if turn.role == "user":
                preview.add_user(turn.text)
            else:
                preview.add_assistant(turn.text, turn.reasoning, turn_note(turn))

    def action_continue_conversation(self) -> None:
        if self.selected is None:
            listing = self.query_one("#conversations", OptionList)
            option = listing.highlighted_option
            if option is None or option.id is None:
                self.notify("Choose a conversation first.", severity="warning")
                return
            self.selected = int(option.id)
        self.dismiss(self.selected)
