"""A turn is atomic, one job at a time, failures are logged: the real engine and starter model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from agent.errors import GenerationFailed, ModelError, TurnInProgress, UserError
from agent.events import Notice, ReplyToken, TurnFinished
from agent.llm.base import LanguageModel, PreparedPrompt, TokenStep
from agent.llm.sampler import SamplerSettings
from agent.log import DialogueLog
from agent.runtime import build_runtime


class FailsMidReply:
    """The real starter model, except that its stream raises after ``after`` tokens (a backend
    failing at generate time, e.g. a CUDA error): every other call goes to the real model."""

    def __init__(self, model: LanguageModel, after: int) -> None:
        self.model = model
        self.after = after
        self.info = model.info

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def generate(self, prompt: PreparedPrompt, sampler: SamplerSettings, *, cancel: threading.Event | None = None) -> Iterator[TokenStep]:
        stream = self.model.generate(prompt, sampler, cancel=cancel)
        for count, step in enumerate(stream):
            if count == self.after:
                stream.close()
                raise ModelError("the device fell off the bus")
            yield step
        raise AssertionError("the reply ended before the injected failure")


@pytest.fixture
def runtime(make_config, starter_model):
    rt = build_runtime(make_config('[sampler]\nseed = 7\nmax_tokens = 48\n'), model=starter_model)
    yield rt
    rt.log.close()


def _user_messages(prompt_text: str) -> int:
    return prompt_text.count("<|im_start|>user")


def test_a_sampler_value_the_backend_refuses_is_refused_when_set(runtime):
    engine = runtime.engine
    with pytest.raises(UserError, match="dry_multiplier"):
        engine.set_sampler(dry_multiplier=0.8)
    assert engine.sampler.dry_multiplier == 0.0 and "dry_multiplier" not in engine.sampler_overrides
    assert engine.respond("Say hi.") is not None


def test_a_failed_reply_is_logged_as_an_error_and_history_stays_whole(runtime):
    engine = runtime.engine
    engine.model = FailsMidReply(runtime.model, after=3)  # type: ignore[assignment]
    events: list[object] = []
    with pytest.raises(GenerationFailed, match="device fell off"):
        engine.respond("Name a colour.", on_event=events.append)
    assert engine.history == []
    ended = [e for e in events if isinstance(e, TurnFinished)]
    assert len(ended) == 1 and ended[0].result.stop_reason == "error" and ended[0].logged
    user, failed = runtime.log.conversation_turns(engine.conversation_id)
    assert user.role == "user" and failed.parent_id == user.id
    assert failed.data["stop_reason"] == "error" and "device fell off the bus" in failed.data["error"]
    assert failed.interrupted and len(runtime.log.token_steps(failed.id)) == 3

    engine.model = runtime.model
    finished = engine.respond("Name a fruit.")
    assert finished is not None and [e.role for e in engine.history] == ["user", "assistant"]
    reply = runtime.log.get_turn(finished.turn_id)
    assert _user_messages(reply.data["prompt_text"]) == 1  # the failed exchange is not in the prompt
    engine.open_conversation(engine.conversation_id)
    assert [e.role for e in engine.history] == ["user", "assistant"]  # reopened: still alternating


def test_a_failed_regenerate_keeps_the_old_reply(runtime):
    engine = runtime.engine
    first = engine.respond("Name a planet.")
    engine.model = FailsMidReply(runtime.model, after=2)  # type: ignore[assignment]
    with pytest.raises(GenerationFailed):
        engine.regenerate()
    assert engine.history[-1].turn_id == first.turn_id
    turns = runtime.log.conversation_turns(engine.conversation_id)
    assert turns[-1].alternative_of == first.turn_id and turns[-1].data["stop_reason"] == "error"
    assert runtime.log.active_turns(engine.conversation_id)[-1].id == first.turn_id


def test_one_job_at_a_time_for_every_driver(runtime):
    engine = runtime.engine
    streaming, release = threading.Event(), threading.Event()

    def hold_at_first_token(event: object) -> None:
        if isinstance(event, ReplyToken) and not streaming.is_set():
            streaming.set()
            release.wait(30)

    worker = threading.Thread(target=engine.respond, args=("Tell me about the sea.",), kwargs={"on_event": hold_at_first_token})
    worker.start()
    try:
        assert streaming.wait(60) and engine.busy
        for attempt in (engine.new_conversation, lambda: engine.respond("hello"), engine.regenerate,
                        lambda: engine.set_persona("philosopher"), lambda: engine.open_conversation(1)):
            with pytest.raises(TurnInProgress, match="a reply is running"):
                attempt()
        assert engine.persona.name == "assistant"
    finally:
        release.set()
        worker.join(60)
    assert not engine.busy and [e.role for e in engine.history] == ["user", "assistant"]
    conversation = engine.conversation_id
    engine.new_conversation()
    engine.respond("Second conversation.")
    assert engine.conversation_id != conversation
    assert [t.role for t in runtime.log.conversation_turns(conversation)] == ["user", "assistant"]


def test_a_waiting_turn_runs_after_the_running_one(runtime):
    engine = runtime.engine
    first = threading.Thread(target=engine.respond, args=("Count to three.",))
    first.start()
    while not engine.busy and first.is_alive():
        time.sleep(0.001)
    finished = engine.respond("And to four?", wait=120)
    first.join(60)
    assert finished is not None and [e.role for e in engine.history] == ["user", "assistant"] * 2


def test_turns_without_a_log_have_no_id(make_config, starter_model):
    rt = build_runtime(make_config('[log]\nenabled = false\n[sampler]\nmax_tokens = 8\n'), model=starter_model)
    finished = rt.engine.respond("Hi.")
    assert finished is not None and finished.turn_id is None and not finished.logged
    assert rt.engine.history[0].turn_id is None and rt.engine.conversation_id is None


def test_a_reply_is_saved_while_it_streams(runtime, monkeypatch):
    monkeypatch.setattr("agent.reply_stream.DRAFT_EVERY_TOKENS", 4)
    engine, seen = runtime.engine, []
    reader = DialogueLog(runtime.log.path, readonly=True)

    def peek(event: object) -> None:
        if isinstance(event, ReplyToken) and event.step.index == 10:
            seen.extend(reader._query("SELECT token_count, raw_text FROM reply_drafts"))

    finished = engine.respond("Describe a forest in two sentences.", on_event=peek)
    [(count, text)] = [tuple(row) for row in seen]
    assert count >= 8 and finished.result.text.startswith(text) and text
    assert reader._query("SELECT COUNT(*) FROM reply_drafts")[0][0] == 0  # replaced by the turn
    reader.close()


def test_a_log_failure_mid_reply_is_a_notice_not_a_lost_reply(runtime):
    engine, events = runtime.engine, []
    runtime.log.close()  # every write now fails with LogError
    finished = engine.respond("Hello there.", on_event=events.append)
    assert finished is not None and finished.answer and not finished.logged
    assert any(isinstance(e, Notice) and "Could not log" in e.message for e in events)


def test_the_system_prompt_as_sent_is_logged_with_the_reply(runtime):
    finished = runtime.engine.respond("Hello.")
    context = runtime.log.get_turn(finished.turn_id).data["context"]
    assert context["system_prompt"] == runtime.engine.persona.system_prompt != ""
    assert context["system_prompt"] in runtime.log.get_turn(finished.turn_id).data["prompt_text"]
