"""The epistemic view: per-token entropy of the reply as it unfolds, as a sparkline."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static


def entropy_summary(values: Sequence[float]) -> str:
    """``H 1.23 μ0.85 ↑3.10``: the last token's entropy, the mean and the maximum so far."""
    if not values:
        return "H -"
    return f"H {values[-1]:.2f} μ{sum(values) / len(values):.2f} ↑{max(values):.2f}"


class EntropyView(Horizontal):
    """A label and a sparkline of the full-distribution entropy (nats) of every generated token."""

    DEFAULT_CSS = """
    EntropyView { height: 2; padding: 0 1; }
    EntropyView.-hidden { display: none; }
    EntropyView > Static { width: 24; color: $text-muted; }
    EntropyView > Sparkline { width: 1fr; height: 2; }
    EntropyView > Sparkline > .sparkline--min-color { color: $success; }
    EntropyView > Sparkline > .sparkline--max-color { color: $error; }
    """

    def compose(self) -> ComposeResult:
        yield Static("entropy\nH -", id="entropy-label")
        yield Sparkline([], summary_function=max, id="entropy-sparkline")

    def show(self, values: Sequence[float], *, lower_bound: bool = False) -> None:
        """Draw ``values`` (the whole reply so far); ``lower_bound``: top-k estimates, labelled so."""
        self.query_one(Sparkline).data = list(values)
        label = "entropy ≥ (top-k)" if lower_bound else "entropy (nats)"
        self.query_one("#entropy-label", Static).update(f"{label}\n" + entropy_summary(values))
