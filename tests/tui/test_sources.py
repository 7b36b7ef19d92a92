"""The sources panel (Ctrl+K) and citations in the transcript, on the real engine, the starter model,
a real knowledge store and a real SQLite log."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App
from textual.content import Content
from textual.widgets import Static

from agent.knowledge.service import make_indexer, open_store
from agent.records import AssistantTurnRecord, UserTurnRecord
from agent.runtime import build_runtime
from tests.tui.conftest import SIZE, send, wait_idle, wait_until
from tui.app import make_app
from tui.knowledge_watch import KnowledgeWatch
from tui.widgets.citations import (
    KNOWN_STYLE,
    UNKNOWN_STYLE,
    SourceRef,
    cited_numbers,
    footnote,
    refs_from_retrieval,
)
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.transcript import AssistantMessage, StreamingText

CONFIG = """
[sampler]
seed = 7
max_tokens = 16
[personas.reader]
system_prompt = "Answer from the sources and cite them as [1]."
retrieve = "knowledge"
"""
NOTE = "# Lighthouse\n\nThe keeper of the Vardø lighthouse feeds his cat Pelle at seven every morning.\n"


@pytest.fixture
def reader(make_config, starter_model, tmp_path):
    config = make_config(CONFIG)
    note = tmp_path / "lighthouse.md"
    note.write_text(NOTE, encoding="utf-8")
    with open_store(config) as store:
        make_indexer(config, store).add(str(note))
    runtime = build_runtime(config, persona="reader", model=starter_model)
    yield runtime
    runtime.engine.retriever.close()  # type: ignore[union-attr]
    assert runtime.log is not None
    runtime.log.close()  # the shared model stays loaded


def _last(app):
    assert app.last_finished is not None
    return app.last_finished


def _panel_text(app) -> list[str]:
    return [str(s.render()) for s in app.conversation.query_one(SourcesPanel).query(Static)]


async def test_ctrl_k_shows_the_last_turns_sources_and_the_reply_resolves_its_citations(reader):
    app = make_app(reader.config, runtime=reader)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.conversation.query_one(SourcesPanel)
        assert not panel.has_class("-visible")
        assert "No turn has retrieved sources yet." in _panel_text(app)
        await send(pilot, app, "When does the lighthouse keeper feed his cat?")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+k")  # the prompt has focus: the screen's binding still wins
        assert panel.has_class("-visible")
        retrieval = _last(app).retrieval
        assert retrieval is not None and panel.retrieval is retrieval
        [state, first] = _panel_text(app)[1:3]
        assert state.startswith("1 sources, ") and "Searched your documents" in state
        assert first.startswith("[1] score ") and "similarity" in first
        assert "lighthouse.md § Lighthouse" in first and "feeds his cat Pelle at seven" in first
        reply = app.conversation.query_one(AssistantMessage)
        line = str(reply.query_one(".sources", Static).render())
        assert line == footnote(reply.answer, refs_from_retrieval(retrieval)) != ""
        assert reply.has_class("-has-sources")
        await pilot.press("ctrl+k")
        assert not panel.has_class("-visible")


async def test_the_panel_says_when_nothing_passed_the_threshold_and_when_retrieval_is_off(reader):
    app = make_app(reader.config, runtime=reader)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Quantum chromodynamics gluon confinement lattice")
        await wait_idle(pilot, app)
        assert _last(app).retrieval is not None and _last(app).retrieval.sources == ()
        assert any(t.startswith("No sources retrieved: nothing passed the relevance threshold.") for t in _panel_text(app))
        app.switch_persona("assistant")  # a built-in persona that retrieves nothing
        await wait_idle(pilot, app)
        await send(pilot, app, "When does the lighthouse keeper feed his cat?")
        await wait_idle(pilot, app)
        assert _last(app).retrieval is None
        assert 'Retrieval is off for this persona (retrieve = "none").' in _panel_text(app)


def _styles(widget: StreamingText) -> dict[str, str]:
    """Each styled span of the shown answer: its text -> its style."""
    out = {}
    for part in widget.query(Static):
        content = part.content
        assert isinstance(content, Content)
        for span in content.spans:
            out[content.plain[span.start:span.end]] = str(span.style)
    return out


async def test_a_continued_conversation_resolves_logged_citations_and_marks_unknown_ones(reader, tmp_path):
    log = reader.log
    assert log is not None
    conversation = log.new_conversation(persona="reader", title="cat")
    user = log.add_user_turn(UserTurnRecord(conversation, "When is Pelle fed?"))
    sources = [{"number": 1, "chunk_id": 1, "score": 0.03, "similarity": 0.6, "source": str(tmp_path / "lighthouse.md"),
                "heading": "Lighthouse", "text_hash": "h", "truncated": False, "chars": 80}]
    text = "Pelle is fed at seven [1].\nThe keeper says so [3]."
    log.add_assistant_turn(AssistantTurnRecord(
        conversation_id=conversation, parent_id=user, text=text, reasoning="", raw_text=text, prompt_text="(p)",
        prompt_tokens=3, backend="llama_cpp", model_id="m", model_path="/m", model_hash="h", persona="reader",
        adapters=[], sampler={}, timings={}, stop_reason="eos", interrupted=False,
        extra={"retrieval": {"scope": "knowledge", "sources": sources}},
    ))
    app = make_app(reader.config, runtime=reader)
    async with app.run_test(size=SIZE) as pilot:
        app._continue_conversation(conversation)
        await wait_idle(pilot, app)
        await wait_until(pilot, lambda: bool(app.conversation.query(AssistantMessage)))
        await pilot.pause()
        reply = app.conversation.query_one(AssistantMessage)
        line = str(reply.query_one(".sources", Static).render())
        assert line == "[1] lighthouse.md § Lighthouse · [3] names no source of this turn"
        styles = _styles(reply.query_one(".answer", StreamingText))
        assert styles == {"[1]": KNOWN_STYLE, "[3]": UNKNOWN_STYLE}


def test_citation_numbers_and_the_footnote():
    assert cited_numbers("a [2] b [1, 3] c [2-4] d [see](http://x) e[1]") == [2, 1, 3, 4]
    refs = (SourceRef(1, "a.md § A"), SourceRef(2, "b.pdf"))
    assert footnote("x [2] y [1][7]", refs) == "[2] b.pdf · [1] a.md § A · [7] names no source of this turn"
    assert footnote("no citation", refs) == "2 sources given, none cited (Ctrl+K lists them)"
    assert footnote("no citation", ()) == ""


async def test_a_file_written_into_a_watched_folder_while_the_tui_runs_is_cited_by_the_next_turn(make_config, starter_model, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = make_config(CONFIG + f'[knowledge]\nwatch = ["{inbox}"]\nwatch_debounce_ms = 100\n')
    runtime = build_runtime(config, persona="reader", model=starter_model)
    app = make_app(config, runtime=runtime)
    shown: list[str] = []
    original = app.notify

    def record(message: str, **kwargs: Any) -> None:
        shown.append(str(message))
        original(message, **kwargs)

    app.notify = record  # type: ignore[method-assign]
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: any(m.startswith("knowledge: watching") for m in shown))
            (inbox / "boat.md").write_text("# Boat\n\nThe rowing boat is moored at the north jetty.\n", encoding="utf-8")
            await wait_until(pilot, lambda: any(m.startswith("knowledge: added") and "boat.md" in m for m in shown), 20)
            await send(pilot, app, "Where is the rowing boat moored?")
            await wait_idle(pilot, app)
            retrieval = _last(app).retrieval
            assert retrieval is not None and [s.label for s in retrieval.sources] == ["boat.md § Boat"]
        assert not app.knowledge_watch.running  # stopped with the app
    finally:
        runtime.engine.retriever.close()  # type: ignore[union-attr]
        assert runtime.log is not None
        runtime.log.close()


class _Recorder(App[None]):
    """A bare app that keeps the watcher's messages (the real EpistemicApp shows them as notifications)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def on_knowledge_watch_changed(self, message: KnowledgeWatch.Changed) -> None:
        self.lines.append((message.severity, message.line))


async def test_a_watched_folder_that_does_not_exist_is_one_error_line(make_config, tmp_path):
    config = make_config(f'[knowledge]\nwatch = ["{tmp_path / "gone"}"]\n')
    app = _Recorder()
    async with app.run_test() as pilot:
        watch = KnowledgeWatch(app, config)
        assert watch.start() and not watch.start()  # once only
        await wait_until(pilot, lambda: bool(app.lines), 30)
        watch.stop()
    assert app.lines == [("error", f"knowledge: watch stopped: {tmp_path / 'gone'}: not a folder, cannot watch it")]
    assert not KnowledgeWatch(app, make_config("")).start()  # nothing configured: no thread
