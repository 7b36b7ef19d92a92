"""Frozen layouts of the main screens (pytest-textual-snapshot; `--snapshot-update` to refresh).

Deterministic states only: no generated reply (the model's text and timings vary), or a reply
built from fixed engine events.
"""

from __future__ import annotations

from agent.events import ReplyToken, TurnFinished, TurnStarted
from agent.llm.base import GenerationResult, PreparedPrompt, Timings, TokenStep
from tests.tui.conftest import steady_cursors
from tui.bridge import Stamped

WORDS = ["Plato", " held", " that", " forms", " are", " real", "."]


def _fixed_turn() -> list[Stamped]:
    """A reply with reasoning, as the engine would emit it, with fixed times and telemetry."""
    steps = [TokenStep(i, 100 + i, w, -0.2 * (i % 3), 0.4 * i) for i, w in enumerate(WORDS)]
    events: list[Stamped] = [Stamped(0.0, TurnStarted(1, 1, "philosopher", 42, 2048))]
    events.append(Stamped(0.05, ReplyToken(TokenStep(0, 99, "<think>", -0.01, 0.1), "reasoning", "Recall the forms.")))
    events += [Stamped(0.1 + 0.01 * i, ReplyToken(s, "answer", s.text)) for i, s in enumerate(steps)]
    timings = Timings(42, len(steps), 0.05, 0.16, 43.75)
    result = GenerationResult("".join(WORDS), tuple(steps), "eos", timings, PreparedPrompt("p", tuple(range(42))))
    events.append(Stamped(0.2, TurnFinished(2, "".join(WORDS), "Recall the forms.", result, False, logged=True)))
    return events


async def _steady(pilot):
    steady_cursors(pilot.app)
    await pilot.pause()


def test_main_screen_80x24(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=_steady)


def test_main_screen_with_a_reply_and_sampler_panel(snap_compare, app):
    async def show_reply(pilot):
        app.conversation.show_user("What did Plato think about forms?")
        app.conversation.apply(_fixed_turn())
        await pilot.press("f3")
        await _steady(pilot)

    assert snap_compare(app, terminal_size=(100, 32), run_before=show_reply)


def test_help_screen(snap_compare, app):
    async def show_help(pilot):
        await pilot.press("f1")
        await _steady(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=show_help)
