"""The one-line status bar: persona, tokens/s, time to first token, context, then model and backend.

The model name comes last: on a narrow terminal it is the part that gets cut.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from tui.stats import TurnStats


def _fmt_rate(rate: float | None) -> str:
    return f"{rate:.1f} tok/s" if rate is not None else "- tok/s"


def _fmt_ttft(ttft: float | None) -> str:
    return f"ttft {ttft * 1000:.0f}ms" if ttft is not None else "ttft -"


class StatusBar(Widget):
    """Shows what shapes the next reply and how the current one is going."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    backend: reactive[str] = reactive("")
    model: reactive[str] = reactive("loading…")
    persona: reactive[str] = reactive("")
    state: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stats = TurnStats()

    def show_stats(self, stats: TurnStats) -> None:
        """Show ``stats`` (the reply in flight or the last one)."""
        self.stats = stats
        self.refresh()

    def render(self) -> Content:
        s = self.stats
        parts: list[tuple[str, str] | str] = [
            (f" {self.persona} ", "bold reverse"), " ",
            _fmt_rate(s.rate), " │ ", _fmt_ttft(s.ttft), " │ ", f"ctx {s.context_used}/{s.context_size or '-'}",
        ]
        if s.acceptance is not None:
            parts += [" │ ", f"spec {s.acceptance:.0%}"]
        if self.state:
            parts += [" │ ", (self.state, "italic")]
        parts += [" │ ", (self.model, "bold"), (f" ({self.backend})" if self.backend else "", "dim")]
        return Content.assemble(*parts)
