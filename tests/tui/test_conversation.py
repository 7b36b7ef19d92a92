"""The TUI driven with the pilot, on the real engine, the starter model and a real SQLite log."""

from __future__ import annotations

import pytest
from textual.widgets import Collapsible, Input

from tests.tui.conftest import SIZE, send, wait_idle, wait_until
from tui.screens.history import HistoryScreen
from tui.screens.persona import PersonaPicker
from tui.widgets.entropy import EntropyView
from tui.widgets.sampler_panel import SamplerPanel
from tui.widgets.status import StatusBar
from tui.widgets.tokens import visible_piece
from tui.widgets.transcript import AssistantMessage, TranscriptView, UserMessage


def _shown(widget) -> str:
    """The text a StreamingText shows on screen: its frozen lines, then the line being written."""
    return "\n".join(str(part.render()) for part in widget.query("Static"))


def _turns(runtime):
    [conversation] = runtime.log.list_conversations()
    return runtime.log.conversation_turns(conversation.id)


async def test_a_typed_message_streams_a_reply_and_updates_the_status_bar(app, runtime, monkeypatch):
    drawn: list[str] = []
    redraw = AssistantMessage.redraw

    def spy(self):  # record what the transcript showed at each batch
        redraw(self)
        drawn.append(self.answer)

    monkeypatch.setattr(AssistantMessage, "redraw", spy)
    async with app.run_test(size=SIZE) as pilot:
        status = app.conversation.query_one(StatusBar)
        assert status.model == runtime.model.info.model_id and status.persona == "assistant"
        await send(pilot, app, "Tell me about cats.", type_it=True)
        assert app.conversation.query_one("#prompt", Input).value == ""  # cleared, ready for more
        await wait_idle(pilot, app)

        [user, reply] = _turns(runtime)
        assert app.conversation.query_one(UserMessage).text == "Tell me about cats."
        shown = app.conversation.query_one(AssistantMessage)
        assert shown.answer == reply.text and shown.turn_id == reply.id
        partial = [d for d in drawn if d and d != reply.text]
        assert partial and all(reply.text.startswith(d) for d in partial)  # it streamed in pieces

        timings = reply.data["timings"]
        stats = status.stats
        assert stats.tokens == timings["completion_tokens"] > 0
        assert stats.rate == timings["tokens_per_second"] and stats.ttft == timings["time_to_first_token"]
        assert stats.context_used == reply.data["prompt_tokens"] + stats.tokens
        assert stats.context_size == runtime.model.info.context_size
        rendered = str(status.render())
        assert f"{stats.rate:.1f} tok/s" in rendered and f"ctx {stats.context_used}/" in rendered
        entropies = [s.entropy for s in runtime.log.token_steps(reply.id)]
        assert app.conversation.query_one("#entropy-sparkline").data == pytest.approx(entropies, rel=1e-5)


async def test_reasoning_is_folded_apart_from_the_answer(app, runtime):
    from agent.events import ReplyToken, TurnStarted
    from agent.llm.base import TokenStep
    from tui.bridge import Stamped

    async with app.run_test(size=SIZE) as pilot:
        screen = app.conversation
        pieces = [("reasoning", "Cats are mammals."), ("reasoning", "\nSo: yes."), ("answer", "Yes, cats are mammals.")]
        batch = [Stamped(0.0, TurnStarted(1, 1, "assistant", 10, 2048))]
        batch += [Stamped(0.01 * i, ReplyToken(TokenStep(i, i, t, -0.1, 0.5), c, t)) for i, (c, t) in enumerate(pieces)]
        screen.apply(batch)
        await pilot.pause()
        reply = screen.query_one(AssistantMessage)
        fold = reply.query_one(Collapsible)
        assert fold.collapsed and fold.display and "reasoning" in str(fold.title)
        assert _shown(reply.query_one(".reasoning")) == "Cats are mammals.\nSo: yes."
        assert _shown(reply.query_one(".answer")) == "Yes, cats are mammals."
        await pilot.click(fold.query_one("CollapsibleTitle"))
        assert not fold.collapsed


async def test_persona_switch_from_the_palette_is_logged_with_the_next_turn(app, runtime):
    async with app.run_test(size=SIZE) as pilot:
        assert runtime.engine.persona.name == "assistant"
        await pilot.press("ctrl+p")
        await pilot.press(*"Persona: philosopher")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: runtime.engine.persona.name == "philosopher" and not app.bridge.busy)
        await send(pilot, app, "What is time?")
        await wait_idle(pilot, app)
        assert app.conversation.query_one(StatusBar).persona == "philosopher"
    [reply] = [t for t in _turns(runtime) if t.role == "assistant"]
    assert reply.persona == "philosopher"
    assert reply.sampler["temperature"] == 0.9  # the philosopher's own sampler came with it


async def test_persona_key_opens_a_picker(app, runtime):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        assert isinstance(app.screen, PersonaPicker)
        names = [n for n, _ in app.persona_choices()]
        for _ in range(names.index("filosof")):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: runtime.engine.persona.name == "filosof" and not app.bridge.busy)
        assert app.conversation.query_one(StatusBar).persona == "filosof"


async def test_sampler_change_applies_to_the_next_turn_and_bad_values_are_refused(app, runtime, notices):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        panel = app.conversation.query_one(SamplerPanel)
        assert panel.display
        field = panel.query_one("#sampler-temperature Input", Input)
        field.focus()
        field.value = "-3"
        await pilot.press("enter")
        assert notices[-1][0] == "error" and "temperature" in notices[-1][1]
        assert field.value == "0.3" and runtime.engine.sampler.temperature == 0.3  # refused, shown as before
        field.value = "0.15"
        await pilot.press("enter")
        assert runtime.engine.sampler.temperature == 0.15
        assert panel.query_one("#sampler-temperature").has_class("-changed")
        await pilot.press("f3")
        await send(pilot, app, "Name a colour.")
        await wait_idle(pilot, app)
    [reply] = [t for t in _turns(runtime) if t.role == "assistant"]
    assert reply.sampler["temperature"] == 0.15


def _forbid_end_tokens(model) -> dict[int, float]:
    """Bias every end-of-generation token away, so the reply can only stop by the stop key."""
    return {i: -100.0 for i in range(model.n_vocab) if model.is_end_token(i)}


async def test_stop_key_ends_the_reply_and_the_log_marks_it_interrupted(app, runtime):
    runtime.engine.set_sampler(max_tokens=1500, token_bias=_forbid_end_tokens(runtime.model))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Write a long story about the sea.")
        await wait_until(pilot, lambda: app.conversation.stats.tokens >= 5)
        await pilot.press("escape")
        await wait_idle(pilot, app)
        shown = app.conversation.query_one(AssistantMessage)
        assert shown.has_class("-interrupted") and "interrupted" in str(shown.query_one(".note").render())
    [reply] = [t for t in _turns(runtime) if t.role == "assistant"]
    assert reply.interrupted and reply.data["stop_reason"] == "cancelled"
    assert 5 <= reply.data["timings"]["completion_tokens"] < 1500


async def test_regenerate_keeps_both_replies(app, runtime):
    runtime.engine.set_sampler(seed=None, temperature=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Say something.")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+r")
        await wait_idle(pilot, app)
        shown = app.conversation.query(AssistantMessage)
        assert len(shown) == 2 and shown.first().has_class("-superseded")
    user, first, second = _turns(runtime)
    assert first.role == second.role == "assistant"
    assert second.alternative_of == first.id and second.parent_id == first.parent_id == user.id
    assert shown.last().turn_id == second.id


async def test_history_opens_a_past_conversation_and_continues_it(app, runtime):
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Remember the word apple.")
        await wait_idle(pilot, app)
        first_id = runtime.engine.conversation_id
        runtime.log.new_conversation(persona="assistant", title="a later one")
        await pilot.press("ctrl+n")
        assert not app.conversation.query(UserMessage) and runtime.engine.conversation_id is None

        await pilot.press("f5")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await pilot.press("down")  # newest first: the first conversation is second
        await wait_until(pilot, lambda: history.selected == first_id)
        preview = history.query_one("#preview", TranscriptView)
        assert [m.text for m in preview.query(UserMessage)] == ["Remember the word apple."]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.conversation)
        assert runtime.engine.conversation_id == first_id
        assert [m.text for m in app.conversation.query(UserMessage)] == ["Remember the word apple."]
        await send(pilot, app, "Which word?")
        await wait_idle(pilot, app)
    texts = [t.text for t in runtime.log.conversation_turns(first_id) if t.role == "user"]
    assert texts == ["Remember the word apple.", "Which word?"]


async def test_engine_problems_become_notifications(app, runtime, notices):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert notices[-1] == ("warning", "Nothing to regenerate yet.")
        await send(pilot, app, "word " * 3000)  # cannot fit the 2048-token context
        await wait_idle(pilot, app)
        assert notices[-1][0] == "error" and "too long" in notices[-1][1]
        assert app.is_running and not runtime.log.list_conversations()


async def test_token_inspector_shows_the_reply_and_tokenizes_typed_text(app, runtime):
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Hi!")
        await wait_idle(pilot, app)
        await pilot.press("f4")
        table = app.screen.query_one("#steps")
        assert table.row_count == len(app.last_finished.result.steps) > 0
        await pilot.press(*"tokenization")
        pieces = runtime.model.tokenize_pieces("tokenization")
        assert str(app.screen.query_one("#typed-title").render()).endswith(f"{len(pieces)} tokens")
        assert str(app.screen.query_one("#typed-chips").render()) == "".join(visible_piece(p) for _, p in pieces)
        await pilot.press("escape")
        assert app.screen is app.conversation
        assert app.conversation.query_one(EntropyView).display
