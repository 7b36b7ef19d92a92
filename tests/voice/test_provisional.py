"""The engine's provisional reply (the voice loop's early start) with the real starter model and a
real SQLite log: it generates at once but logs, shows and remembers nothing until it is kept; a
discarded one leaves no trace; the turn gate stays held the whole time."""

from __future__ import annotations

import threading
import time

import pytest

from agent.errors import TurnInProgress
from agent.events import ReplyToken, TurnFinished, TurnStarted
from agent.provisional import Provisional
from agent.runtime import build_runtime
from agent.voice.early import normalise

GREEDY = '[sampler]\ntemperature = 0.0\nmax_tokens = 24\n[chat]\npersona = "plain"\n[personas.plain]\nsystem_prompt = "Answer briefly."\n'


@pytest.fixture
def runtime(make_config, starter_model):
    rt = build_runtime(make_config(GREEDY), model=starter_model)
    yield rt
    rt.log.close()


class Early:
    """``respond(provisional=...)`` on its own thread, as the voice loop's early start runs it."""

    def __init__(self, engine, text: str, timeout_s: float = 30.0) -> None:
        self.events: list[object] = []
        self.cancel = threading.Event()
        self.provisional = Provisional(timeout_s=timeout_s)
        self.result: TurnFinished | None = None
        self.thread = threading.Thread(target=self._run, args=(engine, text), daemon=True)
        self.thread.start()

    def _run(self, engine, text: str) -> None:
        self.result = engine.respond(text, on_event=self.events.append, cancel=self.cancel, source="voice",
                                     provisional=self.provisional)

    def end(self) -> TurnFinished | None:
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.result


def _wait_generating(early: Early, engine) -> None:
    deadline = time.monotonic() + 30
    while early.provisional.generation_started_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert early.provisional.generation_started_at is not None and engine.busy


def test_a_kept_reply_is_logged_with_the_final_wording_and_matches_a_normal_reply(runtime, make_config, starter_model):
    engine = runtime.engine
    early = Early(engine, "what is the capital of france")
    _wait_generating(early, engine)
    time.sleep(0.5)  # let it generate ahead
    assert early.events == [] and runtime.log.list_conversations() == []  # nothing shown, nothing logged
    with pytest.raises(TurnInProgress):
        engine.respond("typed meanwhile")  # the early start holds the gate
    assert early.provisional.keep("What is the capital of France?", audio_path="audio/x.wav", stt={"model": "base"})
    finished = early.end()
    assert finished is not None and finished.logged and finished.answer
    assert early.provisional.head_start_s() >= 0.5
    kinds = [type(e) for e in early.events]
    assert kinds[0] is TurnStarted and kinds[-1] is TurnFinished and ReplyToken in kinds

    [conversation] = runtime.log.list_conversations()
    user, reply = runtime.log.conversation_turns(conversation.id)
    assert (user.text, user.data.get("source"), user.data.get("audio_path")) == ("What is the capital of France?", "voice", "audio/x.wav")
    assert reply.text == finished.answer and reply.parent_id == user.id
    assert [e.content for e in engine.history] == ["What is the capital of France?", finished.answer]

    fresh = build_runtime(make_config(GREEDY), model=starter_model)  # the same prompt answered normally
    try:
        normal = fresh.engine.respond("what is the capital of france")
        assert normal is not None and normal.answer == finished.answer  # greedy: the same tokens
    finally:
        fresh.log.close()


def test_a_discarded_reply_leaves_no_trace(runtime):
    engine = runtime.engine
    engine.respond("Hello.")
    history = list(engine.history)
    before = runtime.log.conversation_turns(runtime.log.list_conversations()[0].id)
    early = Early(engine, "what is the capital of")
    _wait_generating(early, engine)
    early.provisional.discard()
    assert early.end() is None
    assert early.cancel.is_set() and early.events == []
    assert engine.history == history and not engine.busy
    assert runtime.log.conversation_turns(runtime.log.list_conversations()[0].id) == before
    assert engine.respond("Next question?") is not None  # the gate is free again


def test_an_undecided_reply_is_dropped_after_its_timeout(runtime):
    engine = runtime.engine
    early = Early(engine, "hello there", timeout_s=0.3)
    assert early.end() is None and runtime.log.list_conversations() == [] and not engine.busy


def test_a_provisional_reply_needs_a_cancel_flag(runtime):
    with pytest.raises(ValueError, match="cancel"):
        runtime.engine.respond("hi", provisional=Provisional())
    assert not runtime.engine.busy


def test_transcripts_are_compared_normalised():
    assert normalise("What is the capital of France?") == normalise("what is the capital of france")
    assert normalise("Ну, как дела?") == normalise("ну как дела")
    assert normalise("What is the capital of France?") != normalise("What is the capital of France? And Spain?")
