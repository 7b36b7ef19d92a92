"""The token inspector: how the last reply was generated token by token (with, for mixture-of-experts
models, each token's experts and the reply's expert usage), and how any text splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from agent.llm.base import MoERouting, TokenStep
from agent.log.moe_view import moe_status_line, token_routing, usage_histogram
from tui.widgets.entropy import entropy_summary
from tui.widgets.tokens import pieces_content, step_row, steps_content

Tokenizer = Callable[[str], list[tuple[int, str]]]


class TokenInspectorScreen(Screen[None]):
    """Chips coloured by uncertainty (green sure .. red unsure), a per-token table, the MoE panel
    (the highlighted token's experts; the reply's expert usage), a tokenizer box.

    Runs on the Textual event loop; it only formats data it was given (no model or SQLite calls).
    """

    DEFAULT_CSS = """
    TokenInspectorScreen #reply-title, TokenInspectorScreen #typed-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    TokenInspectorScreen #reply-chips { height: auto; max-height: 8; padding: 0 1; }
    TokenInspectorScreen #steps { height: 1fr; }
    TokenInspectorScreen #typed { margin: 0 1; }
    TokenInspectorScreen #typed-chips { height: auto; max-height: 5; padding: 0 1; }
    TokenInspectorScreen #moe { height: auto; max-height: 14; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,f4", "dismiss(None)", "Back")]

    def __init__(self, steps: Sequence[TokenStep], tokenize: Tokenizer | None, *, lower_bound: bool = False,
                 routing: MoERouting | None = None, moe_status: str | None = None) -> None:
        super().__init__()
        self.steps = list(steps)
        self.tokenize = tokenize
        self.lower_bound = lower_bound  # entropies from the top-k only (a remote server)
        self.routing = routing  # the reply's MoE routing, None if not recorded
        self.moe_status = moe_status  # the reply's extra["moe_routing"]: captured / off / dense / None

    def compose(self) -> ComposeResult:
        entropies = [s.entropy for s in self.steps if s.entropy is not None]
        bound = " (entropy ≥: from the top-k only)" if self.lower_bound else ""
        title = f"Last reply: {len(self.steps)} tokens · {entropy_summary(entropies)}{bound}" if self.steps else "No reply yet"
        yield Static(title, id="reply-title")
        with VerticalScroll(id="reply-chips"):
            yield Static(steps_content(self.steps), id="reply-pieces")
        yield DataTable(id="steps", zebra_stripes=True, cursor_type="row")
        if self.steps:
            yield Static(self._moe_text(0), id="moe")
        yield Static("Tokenize any text", id="typed-title")
        yield Input(placeholder="type here to see how the model splits it", id="typed")
        yield Static("", id="typed-chips")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#steps", DataTable)
        table.add_columns("#", "id", "piece", "logprob", "entropy", "top alternatives")
        table.add_rows(step_row(s) for s in self.steps)
        self.query_one("#typed", Input).focus()

    def _moe_text(self, row: int) -> str:
        if self.routing is None:
            return moe_status_line(self.moe_status)
        token = token_routing(self.routing, self.steps[row].index) if row < len(self.steps) else ""
        return f"{token}\n{usage_histogram(self.routing)}"

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.steps and self.routing is not None:
            self.query_one("#moe", Static).update(self._moe_text(event.cursor_row))

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
