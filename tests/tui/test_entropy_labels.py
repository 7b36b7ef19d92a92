"""Entropy from a remote server's top-k is a lower bound, and the UI and the log say so."""

from __future__ import annotations

from agent.llm.base import (
    LOWER_BOUND,
    GenerationResult,
    PreparedPrompt,
    Timings,
    TokenStep,
    token_id_label,
)
from agent.log.summary import token_table
from tui.widgets.tokens import step_row


def test_unknown_token_ids_show_as_a_question_mark():
    step = TokenStep(0, -1, "hi", -0.1, 0.5)
    assert step_row(step)[1] == "?" and token_id_label(7) == "7"
    assert "?" in token_table([step])[1].split()[1]


def test_the_token_table_header_says_lower_bound():
    assert "entropy>=" in token_table([], lower_bound=True)[0]
    assert "entropy>=" not in token_table([])[0]


async def test_the_entropy_strip_labels_a_lower_bound():
    from textual.app import App

    from agent.events import TurnFinished
    from tui.stats import TurnStats
    from tui.widgets.entropy import EntropyView

    result = GenerationResult("x", (TokenStep(0, -1, "x", -0.1, 0.4),), "eos", Timings(1, 1, 0.1, 0.1, None),
                              PreparedPrompt("p", ()), extra={"entropy": LOWER_BOUND})
    stats = TurnStats()
    stats.finished(TurnFinished(None, "x", "", result, False, False))

    class Host(App[None]):
        def compose(self):
            yield EntropyView()

    async with Host().run_test() as pilot:
        view = pilot.app.query_one(EntropyView)
        view.show([0.4], lower_bound=stats.entropy_lower_bound)
        assert "≥" in str(view.query_one("#entropy-label").render())
        view.show([0.4])
        assert "≥" not in str(view.query_one("#entropy-label").render())
