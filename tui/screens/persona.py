"""A small picker to switch persona (the command palette offers the same)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class PersonaPicker(ModalScreen[str | None]):
    """Returns the chosen persona's name, or None when dismissed."""

    DEFAULT_CSS = """
    PersonaPicker { align: center middle; }
    PersonaPicker > Vertical { width: 70; max-width: 95%; height: auto; max-height: 80%; border: thick $primary; background: $surface; }
    PersonaPicker OptionList { height: auto; max-height: 16; border: none; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, personas: Sequence[tuple[str, str]], current: str) -> None:
        super().__init__()
        self.personas = list(personas)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(" Switch persona (applies from the next turn)")
            options = [Option(f"{'●' if n == self.current else '○'} {n} — {d}", id=n) for n, d in self.personas]
            yield OptionList(*options)

    def on_mount(self) -> None:
        names = [n for n, _ in self.personas]
        if self.current in names:
            self.query_one(OptionList).highlighted = names.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
