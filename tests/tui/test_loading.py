"""The app loading its own model in a worker: progress on screen, failures as notifications."""

from __future__ import annotations

from textual.widgets import ProgressBar

from agent.llm.base import LoadProgress
from tests.tui.conftest import SIZE, wait_until
from tui.app import make_app
from tui.screens.conversation import ConversationScreen
from tui.widgets.status import StatusBar


async def test_the_model_loads_in_a_worker_with_progress(make_config, monkeypatch):
    config = make_config("[llm]\ncontext_size = 512\n")
    app = make_app(config, persona="philosopher")
    progress: list[float] = []
    shown = ConversationScreen.show_progress

    def spy(screen: ConversationScreen, update: LoadProgress) -> None:
        progress.append(update.fraction)
        shown(screen, update)

    monkeypatch.setattr(ConversationScreen, "show_progress", spy)
    async with app.run_test(size=SIZE) as pilot:
        assert app.is_running  # the UI is up while the model loads
        await wait_until(pilot, lambda: app.runtime is not None)
        await pilot.pause()
        status = app.conversation.query_one(StatusBar)
        assert status.model == app.runtime.model.info.model_id and status.persona == "philosopher"
        assert status.stats.context_size == 512
        assert not app.conversation.query_one("#loading").display
        assert progress and progress[-1] == 1.0 and progress == sorted(progress)
        assert app.conversation.query_one("#loading-bar", ProgressBar).progress == 1.0
    assert app.runtime.log._conn is None  # the app closed the runtime it built


async def test_a_model_that_cannot_load_is_a_notification_not_a_crash(make_config, tmp_path):
    missing = tmp_path / "nothing-here.gguf"
    app = make_app(make_config(f'[llm]\nmodel = "{missing}"\n'))
    seen: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (seen.append(str(message)), notify(message, **kw))[1]  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.load_error is not None)
        assert str(missing.name) in app.load_error and any(missing.name in s for s in seen)
        await pilot.press(*"hello", "enter")
        assert app.is_running and app.runtime is None
        assert app.conversation.query_one(StatusBar).model == "no model"
