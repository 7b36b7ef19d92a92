"""One owner decides whether a turn runs: the engine's turn gate. The TUI refuses (or defers) its
own jobs while another driver's turn holds it, and reads the log off the UI thread.

The other driver is the voice loop's turn worker; here :class:`tests.voice.held_turn.HeldTurn`
calls the real engine's ``respond`` as that worker does (``source="voice"``) and holds the reply
mid-stream until the test lets it go, so "a spoken reply is running" lasts as long as needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.widgets import Input

from tests.tui.conftest import SIZE, send, wait_idle, wait_until
from tests.voice.held_turn import HeldTurn
from tui.screens.history import HistoryScreen
from tui.widgets.transcript import UserMessage


@pytest.fixture
def held(runtime: Any) -> Iterator[Callable[[str], HeldTurn]]:
    turns: list[HeldTurn] = []

    def hold(text: str) -> HeldTurn:
        turns.append(HeldTurn(runtime.engine, text).start())
        return turns[-1]

    yield hold
    for turn in turns:
        turn.release.set()


def _warnings(notices: list[tuple[str, str]]) -> list[str]:
    return [message for severity, message in notices if severity == "warning"]


async def test_ctrl_n_during_another_drivers_reply_is_refused_and_histories_never_mix(app, runtime, notices, held):
    async with app.run_test(size=SIZE) as pilot:
        spoken = held("Name a colour.")
        conversation_id = runtime.engine.conversation_id
        assert conversation_id is not None and runtime.engine.busy

        await pilot.press("ctrl+n")
        assert runtime.engine.conversation_id == conversation_id
        assert any("running" in w for w in _warnings(notices)), notices

        await send(pilot, app, "A typed question.")  # refused: the input keeps the text
        assert app.conversation.query_one("#prompt", Input).value == "A typed question."
        assert not app.bridge.busy

        app.switch_persona("philosopher")  # deferred until the engine is free
        assert runtime.engine.persona.name == "assistant" and app.pending_persona == "philosopher"

        finished = spoken.end()
        await wait_until(pilot, lambda: runtime.engine.persona.name == "philosopher" and not app.bridge.busy)
        await send(pilot, app, "A typed question.")
        await wait_idle(pilot, app)

    [conversation] = runtime.log.list_conversations()
    assert conversation.id == conversation_id
    turns = runtime.log.conversation_turns(conversation_id)
    assert [(t.role, t.text if t.role == "user" else None) for t in turns] == [
        ("user", "Name a colour."), ("assistant", None), ("user", "A typed question."), ("assistant", None)]
    assert turns[1].id == finished.turn_id and turns[0].data["source"] == "voice"
    assert turns[3].persona == "philosopher"


async def test_history_cannot_switch_conversations_during_another_drivers_reply(app, runtime, notices, held):
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Remember the word apple.")
        await wait_idle(pilot, app)
        first_id = runtime.engine.conversation_id
        await pilot.press("ctrl+n")
        spoken = held("Name a colour.")
        second_id = runtime.engine.conversation_id
        assert second_id not in (None, first_id)

        await pilot.press("f5")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_until(pilot, lambda: history.selected is not None)
        await pilot.press("down")  # newest first: the first conversation is second
        await wait_until(pilot, lambda: history.selected == first_id)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.conversation)
        assert runtime.engine.conversation_id == second_id
        assert any("running" in w for w in _warnings(notices)), notices
        spoken.end()

    assert [t.role for t in runtime.log.conversation_turns(first_id)] == ["user", "assistant"]
    assert [t.role for t in runtime.log.conversation_turns(second_id)] == ["user", "assistant"]


async def test_the_log_is_read_off_the_ui_thread(app, runtime, monkeypatch):
    ui_thread = threading.get_ident()
    reads: list[tuple[str, bool]] = []
    log = runtime.log
    for name in ("list_conversations", "get_conversation", "active_turns"):
        real = getattr(log, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            reads.append((_name, threading.get_ident() == ui_thread))
            return _real(*args, **kwargs)

        monkeypatch.setattr(log, name, spy)

    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Remember the word apple.")
        await wait_idle(pilot, app)
        first_id = runtime.engine.conversation_id
        await pilot.press("ctrl+n")
        await pilot.press("f5")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_until(pilot, lambda: history.selected == first_id)
        await pilot.press("enter")
        await wait_until(pilot, lambda: [m.text for m in app.conversation.query(UserMessage)] == ["Remember the word apple."])
        assert runtime.engine.conversation_id == first_id

    names = {name for name, _ in reads}
    assert {"list_conversations", "get_conversation", "active_turns"} <= names, reads
    assert not [name for name, on_ui in reads if on_ui], reads
