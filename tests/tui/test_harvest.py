"""The Harvest screen driven with the pilot on a real SQLite log: rate, edit, prefer, exclude and
undo in place, the counts follow, the turns never change, and SQLite is never touched on the
event loop's thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Static, TextArea

from agent.harvest.curation import CurationState, load_state
from agent.log import DialogueLog
from tests.test_curation import fill, originals
from tests.tui.conftest import SIZE, wait_until
from tui.screens.harvest import HarvestScreen
from tui.widgets.harvest_lists import ConversationList, CountsBar, TurnList


class WatchedLog(DialogueLog):
    """The real log, noting which threads read and write it."""

    threads: set[str]

    @contextmanager
    def transaction(self, action: str) -> Iterator:
        self.threads.add(threading.current_thread().name)
        with super().transaction(action) as conn:
            yield conn

    @contextmanager
    def snapshot(self, action: str = "reading") -> Iterator:
        self.threads.add(threading.current_thread().name)
        with super().snapshot(action) as conn:
            yield conn


class Host(App[None]):
    """Shows one Harvest screen, as the product's app does on F11."""

    def __init__(self, screen: HarvestScreen) -> None:
        super().__init__()
        self.harvest = screen
        self.notices: list[tuple[str, str]] = []

    async def on_mount(self) -> None:
        await self.push_screen(self.harvest)

    def notify(self, message: str, *args, **kwargs) -> None:  # type: ignore[override]
        self.notices.append((kwargs.get("severity", "information"), str(message)))
        super().notify(message, *args, **kwargs)


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[WatchedLog, dict[str, int]]]:
    log = WatchedLog(tmp_path / "data" / "dialogues.sqlite3")
    log.threads = set()
    ids = fill(log)
    yield log, ids
    log.close()


def state_of(log: DialogueLog) -> CurationState:
    """What is stored, read on a connection of the test's own (so the log's watch sees only the app)."""
    raw = sqlite3.connect(log.path)
    try:
        return load_state(raw)
    finally:
        raw.close()


def counts_text(app: Host) -> str:
    return str(app.harvest.query_one(CountsBar).render())


async def choose_turn(pilot, app: Host, turn_id: int) -> None:
    turns = app.harvest.query_one(TurnList)
    turns.focus()
    ids = [option.id for option in turns.options]
    turns.highlighted = ids.index(str(turn_id))
    await pilot.pause()


async def settle(pilot, app: Host, log: DialogueLog, holds) -> CurationState:
    """Wait until the stored curation satisfies ``holds`` and the screen has caught up."""
    await wait_until(pilot, lambda: holds(state_of(log)) and not app.harvest.acting, 20)
    await wait_until(pilot, lambda: app.harvest.state == state_of(log), 20)
    return state_of(log)


async def test_curating_in_place(watched) -> None:
    log, ids = watched
    before = originals(log.path)
    app = Host(HarvestScreen(log))
    async with app.run_test(size=SIZE) as pilot:
        conversations = app.harvest.query_one(ConversationList)
        await wait_until(pilot, lambda: conversations.option_count == 2, 20)
        assert "2 SFT conversations · 0 DPO pairs · 0 KTO rows" in counts_text(app)
        assert conversations.selected_id == ids["b"]  # newest first
        await pilot.press("down", "enter")  # conversation a, focus its turns
        turns = app.harvest.query_one(TurnList)
        await wait_until(pilot, lambda: turns.option_count == 5 and app.harvest.conversation_id == ids["a"], 20)
        assert turns.selected is not None and turns.selected.id == ids["single"]  # the last turn

        await pilot.press("g")
        await settle(pilot, app, log, lambda s: s.ratings == {ids["single"]: ("good", None)})
        assert "[good]" in str(turns.get_option(str(ids["single"])).prompt)
        assert "1 KTO rows" in counts_text(app)

        await pilot.press("e")
        editor = app.harvest.query_one("#harvest-editor", TextArea)
        assert editor.display and editor.has_focus and editor.text == "Берлин."
        await pilot.press("end", "space", "g", "o", "o", "d")  # typed into the text area, not a rating
        await pilot.press("ctrl+s")
        await settle(pilot, app, log, lambda s: s.edits == {ids["single"]: "Берлин. good"})
        assert not editor.display and state_of(log).ratings == {ids["single"]: ("good", None)}
        assert "corrected:\nБерлин. good" in str(app.harvest.query_one("#harvest-detail", Static).render())
        assert "1 DPO pairs" in counts_text(app)

        await choose_turn(pilot, app, ids["second"])
        await pilot.press("p")
        await settle(pilot, app, log, lambda s: s.preferred == {ids["first"]: ids["second"]})
        assert "2 DPO pairs" in counts_text(app)

        await pilot.press("x")
        await settle(pilot, app, log, lambda s: s.excluded_turns == {ids["second"]})
        await pilot.press("x")  # again: included
        await settle(pilot, app, log, lambda s: s.excluded_turns == frozenset())
        await pilot.press("u")  # the last action not undone: the preference
        await settle(pilot, app, log, lambda s: s.preferred == {})
        assert any("undone: action" in text and "prefer" in text for _, text in app.notices)

        await pilot.press("X")
        await settle(pilot, app, log, lambda s: s.excluded_conversations == {ids["a"]})
        assert "[excluded]" in str(conversations.get_option(str(ids["a"])).prompt)
        assert "1 SFT conversations · 0 DPO pairs · 0 KTO rows" in counts_text(app)

        await choose_turn(pilot, app, ids["spoken"])
        await pilot.press("b")  # a user turn: refused in one line, nothing stored
        await wait_until(pilot, lambda: any(s == "error" for s, _ in app.notices), 20)
        assert ("error", f"turn {ids['spoken']} is a user turn: only assistant replies are rated") in app.notices
        assert state_of(log).ratings == {ids["single"]: ("good", None)}
    assert originals(log.path) == before
    assert log.threads and threading.main_thread().name not in log.threads


async def test_escape_cancels_an_edit_without_saving(watched) -> None:
    log, ids = watched
    app = Host(HarvestScreen(log))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.harvest.query_one(TurnList).option_count == 2, 20)  # conversation b
        await pilot.press("enter", "e", "end", "!", "escape")
        assert app.harvest.editing is None and app.screen is app.harvest
        await pilot.press("escape")  # now back out of the screen
        await wait_until(pilot, lambda: app.screen is not app.harvest, 5)
    assert state_of(log).edits == {}


async def test_the_screen_opens_the_log_file_itself_when_given_a_path(watched, tmp_path: Path) -> None:
    log, ids = watched
    app = Host(HarvestScreen(path=log.path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.harvest.query_one(ConversationList).option_count == 2, 20)
        await pilot.press("enter", "g")
        await wait_until(pilot, lambda: state_of(log).ratings == {ids["b_reply"]: ("good", None)}, 20)
        assert app.harvest.owns_log
    missing = Host(HarvestScreen(path=tmp_path / "nothing.sqlite3"))
    async with missing.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: any("no dialogue log yet" in text for _, text in missing.notices), 20)
    assert not (tmp_path / "nothing.sqlite3").exists()


async def test_f11_opens_harvest_on_the_engine_log(app, runtime) -> None:
    conversation = runtime.log.new_conversation(persona="assistant", title="logged")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f11")
        await wait_until(pilot, lambda: isinstance(app.screen, HarvestScreen), 20)
        screen = app.screen
        assert isinstance(screen, HarvestScreen) and screen.dialogue_log is runtime.log
        await wait_until(pilot, lambda: screen.query_one(ConversationList).selected_id == conversation, 20)
        assert "0 SFT conversations" in str(screen.query_one(CountsBar).render())
