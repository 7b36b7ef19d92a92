"""The tokenizer lab screen with the pilot: Ctrl+T from the conversation measures the real log with
the starter GGUF vocabulary and a tokenizer trained here, in a worker, behind a loading indicator."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.app import App
from textual.widgets import DataTable, Static

from agent.instruments.tokenizer_lab import LabReport, Progress
from agent.llm.starter import STARTER_LLM
from agent.log import DialogueLog
from agent.records import UserTurnRecord
from tests.harvest_fixtures import reply
from tests.test_tokenizer_lab import ENGLISH, RUSSIAN, train
from tests.tui.conftest import SIZE, wait_until
from tui.app import EpistemicApp
from tui.screens.tokenizer_lab import LabRunner, TokenizerLabScreen, config_runner


def fill(log: DialogueLog) -> None:
    conv = log.new_conversation(persona="assistant")
    for question, answer in zip(RUSSIAN + ENGLISH, (RUSSIAN + ENGLISH)[1:] + RUSSIAN[:1], strict=True):
        user = log.add_user_turn(UserTurnRecord(conv, question))
        log.add_assistant_turn(reply(conv, user, answer))


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def headers(table: DataTable) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def test_ctrl_t_opens_the_lab_on_the_logged_dialogues(app: EpistemicApp, tmp_path: Path) -> None:
    assert app.runtime is not None and app.runtime.log is not None
    fill(app.runtime.log)
    train(tmp_path / "models", "tiny-bpe")  # the config's models dir
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, TokenizerLabScreen))
        screen = app.screen
        assert isinstance(screen, TokenizerLabScreen)
        await wait_until(pilot, lambda: screen.report is not None, 60)
        await pilot.pause()
        fertility, worst = screen.query_one("#fertility", DataTable), screen.query_one("#worst", DataTable)
        assert headers(fertility) == ["language", "turns", "words", "metric", STARTER_LLM, "tiny-bpe"]
        rows = cells(fertility)
        assert sorted(r[0] for r in rows if r[0]) == ["en", "ru"]
        ru = rows.index(next(r for r in rows if r[0] == "ru"))
        report = screen.report
        assert report is not None
        assert rows[ru][4] == f"{report.languages['ru'].tokens_per_word(STARTER_LLM):.2f}"
        words = [r[1] for r in cells(worst)]
        assert "бессознательное" in words and all("|" in c for c in cells(worst)[0][3:])
        assert not screen.query_one("#lab-body").loading
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TokenizerLabScreen))


class Gated:
    """A runner that waits for the test before measuring, noting the thread it runs on."""

    def __init__(self, inner: LabRunner) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.thread: threading.Thread | None = None
        self.cancelled: threading.Event | None = None
        self.done = threading.Event()

    def __call__(self, progress: Progress, cancel: threading.Event) -> LabReport:
        self.thread, self.cancelled = threading.current_thread(), cancel
        try:
            self.gate.wait(30)
            return self.inner(progress, cancel)
        finally:
            self.done.set()


class Host(App[None]):
    """Shows one lab screen, as the product's app does on Ctrl+T."""

    def __init__(self, screen: TokenizerLabScreen) -> None:
        super().__init__()
        self.lab = screen
        self.notices: list[tuple[str, str]] = []

    async def on_mount(self) -> None:
        await self.push_screen(self.lab)

    def notify(self, message: str, *args, **kwargs) -> None:
        self.notices.append((kwargs.get("severity", "information"), str(message)))
        super().notify(message, *args, **kwargs)


async def test_measures_in_a_worker_behind_a_loading_indicator(make_config, tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    fill(log)
    log.close()
    train(tmp_path / "models", "tiny-bpe")
    config = make_config(f'models_dir = "{tmp_path / "models"}"\n[log]\npath = "{tmp_path / "log.db"}"\n')
    runner = Gated(config_runner(config))
    host = Host(TokenizerLabScreen(runner))
    async with host.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: runner.thread is not None)
        body = host.lab.query_one("#lab-body")
        assert body.loading and runner.thread is not threading.main_thread()
        await pilot.press("down")  # the event loop answers while the worker waits
        runner.gate.set()
        await wait_until(pilot, lambda: host.lab.report is not None, 60)
        assert not body.loading
        assert "tiny-bpe" in str(host.lab.query_one("#lab-title", Static).render())


async def test_an_empty_log_is_a_visible_notice(make_config, tmp_path: Path) -> None:
    DialogueLog(tmp_path / "log.db").close()
    config = make_config(f'[log]\npath = "{tmp_path / "log.db"}"\n')
    host = Host(TokenizerLabScreen(config_runner(config)))
    async with host.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(host.notices), 30)
        assert host.notices[0][0] == "error" and "no logged turns match" in host.notices[0][1]
        assert "no logged turns" in str(host.lab.query_one("#lab-notes", Static).render())
        assert not host.lab.query_one("#lab-body").loading


async def test_closing_the_screen_cancels_the_run(make_config, tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    fill(log)
    log.close()
    config = make_config(f'[log]\npath = "{tmp_path / "log.db"}"\n')
    runner = Gated(config_runner(config))
    host = Host(TokenizerLabScreen(runner))
    async with host.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: runner.cancelled is not None)
        await pilot.press("escape")
        await wait_until(pilot, lambda: runner.cancelled is not None and runner.cancelled.is_set())
        runner.gate.set()
        await wait_until(pilot, runner.done.is_set, 30)
        await pilot.pause(0.1)
        assert host.lab.report is None and not host.notices
