"""The token inspector: how the last reply was generated token by token, and how any text splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from agent.llm.base import TokenStep
from tui.widgets.entropy import entropy_summary
from tui.widgets.tokens import pieces_content, step_row, steps_content

Tokenizer = Callable[[str], list[tuple[int, str]]]


class TokenInspectorScreen(Screen[None]):
    """Chips coloured by uncertainty (green sure .. red unsure), a per-token table, a tokenizer box."""

    DEFAULT_CSS = """
    TokenInspectorScreen #reply-title, TokenInspectorScreen #typed-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    TokenInspectorScreen #reply-chips { height: auto; max-height: 8; padding: 0 1; }
    TokenInspectorScreen #steps { height: 1fr; }
    TokenInspectorScreen #typed { margin: 0 1; }
    TokenInspectorScreen #typed-chips { height: auto; max-height: 5; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f4", "dismiss(None)", "Back")]

    def __init__(self, steps: Sequence[TokenStep], tokenize: Tokenizer | None, *, lower_bound: bool = False) -> None:
        super().__init__()
        self.steps = list(steps)
        self.tokenize = tokenize
        self.lower_bound = lower_bound  # entropies from the top-k only (a remote server)

    def compose(self) -> ComposeResult:
        entropies = [s.entropy for s in self.steps if s.entropy is not None]
        bound = " (entropy ≥: from the top-k only)" if self.lower_bound else ""
        title = f"Last reply: {len(self.steps)} tokens · {entropy_summary(entropies)}{bound}" if self.steps else "No reply yet"
        yield Static(title, id="reply-title")
        with VerticalScroll(id="reply-chips"):
            yield Static(steps_content(self.steps), id="reply-pieces")
        yield DataTable(id="steps", zebra_stripes=True, cursor_type="row")
        yield Static("Tokenize any text", id="typed-title")
        yield Input(placeholder="type here to see how the model splits it", id="typed")
        yield Static("", id="typed-chips")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#steps", DataTable)
        table.add_columns("#", "id", "piece", "logprob", "entropy", "top alternatives")
        table.add_rows(step_row(s) for s in self.steps)
        self.query_one("#typed", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        chips = self.query_one("#typed-chips", Static)
        if self.tokenize is None:
            chips.update("The model is not loaded yet.")
            return
        try:
            pieces = self.tokenize(event.value) if event.value else []
        except Exception as exc:  # a tokenizer failure must not close the UI
            chips.update(f"cannot tokenize: {exc}")
            return
        self.query_one("#typed-title", Static).update(f"Tokenize any text: {len(pieces)} tokens")
        chips.update(pieces_content(pieces))
