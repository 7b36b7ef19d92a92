"""The conversation engine end to end with real llama.cpp, the starter model and a real SQLite log."""

from __future__ import annotations

import threading

import pytest

from agent.events import ContextTrimmed, Notice, ReplyToken, TurnFinished, TurnStarted
from agent.llm import load_backend
from agent.llm.sampler import SamplerSettings
from agent.runtime import build_runtime


@pytest.fixture
def runtime(make_config, starter_model):
    rt = build_runtime(make_config('[sampler]\nseed = 7\n'), model=starter_model)
    yield rt
    rt.log.close()  # the shared model stays loaded


def test_a_turn_is_answered_and_logged_with_every_field(runtime):
    events = []
    finished = runtime.engine.respond("What is the capital of France?", on_event=events.append)
    assert isinstance(finished, TurnFinished) and finished.answer
    kinds = [type(e) for e in events]
    assert kinds[0] is TurnStarted and kinds[-1] is TurnFinished and ReplyToken in kinds

    log = runtime.log
    [conversation] = log.list_conversations()
    user, reply = log.conversation_turns(conversation.id)
    assert (user.role, user.text) == ("user", "What is the capital of France?")
    assert reply.role == "assistant" and reply.parent_id == user.id and reply.text == finished.answer
    data = reply.data
    expected_prompt = runtime.model.render_prompt(
        [*_system(runtime), _msg("user", "What is the capital of France?")]
    )
    assert data["prompt_text"] == expected_prompt.text
    assert data["prompt_tokens"] == expected_prompt.token_count
    assert data["backend"] == "llama_cpp" and data["model_id"] and len(data["model_hash"]) == 64
    assert reply.persona == "assistant"
    assert set(reply.sampler) == set(SamplerSettings.model_fields)
    assert reply.sampler["seed"] == 7 and reply.sampler["temperature"] == 0.3  # persona override
    assert data["stop_reason"] in ("eos", "max_tokens", "stop_string")
    timings = data["timings"]
    assert timings["completion_tokens"] > 0 and timings["tokens_per_second"] > 0
    assert timings["time_to_first_token"] > 0
    steps = log.token_steps(reply.id)
    assert len(steps) == timings["completion_tokens"]
    assert "".join(s.text for s in steps) == data["raw_text"]
    assert all(s.entropy is not None and s.entropy >= 0 and s.logprob <= 0 for s in steps)


def _msg(role, content):
    from agent.llm.base import ChatMessage

    return ChatMessage(role, content)


def _system(runtime):
    prompt = runtime.engine.persona.system_prompt
    return [_msg("system", prompt)] if prompt else []


def test_persona_and_sampler_changes_are_logged_with_the_next_turn(runtime):
    engine = runtime.engine
    engine.respond("Hi")
    engine.set_persona("philosopher")
    engine.set_sampler(temperature=0.15, top_k=5, max_tokens=24)
    engine.respond("What is truth?")
    turns = [t for t in runtime.log.conversation_turns(engine.conversation_id) if t.role == "assistant"]
    assert turns[0].persona == "assistant" and turns[0].sampler["temperature"] == 0.3
    assert turns[1].persona == "philosopher"
    assert (turns[1].sampler["temperature"], turns[1].sampler["top_k"], turns[1].sampler["max_tokens"]) == (0.15, 5, 24)
    assert "philosopher" in turns[1].data["prompt_text"]


def test_cancel_mid_reply_logs_the_partial_reply_as_interrupted(runtime):
    engine = runtime.engine
    engine.set_sampler(max_tokens=400, temperature=0.8)
    cancel = threading.Event()
    seen = []

    def on_event(event):
        if isinstance(event, ReplyToken):
            seen.append(event.step.index)
            if len(set(seen)) == 3:
                cancel.set()

    finished = engine.respond("Write a very long story about a dragon.", on_event=on_event, cancel=cancel)
    assert finished.interrupted and finished.result.stop_reason == "cancelled"
    assert len(finished.result.steps) <= 4  # stops within a token
    reply = runtime.log.get_turn(finished.turn_id)
    assert reply.interrupted and reply.data["stop_reason"] == "cancelled"


def test_regenerate_keeps_both_replies(runtime):
    engine = runtime.engine
    engine.set_sampler(temperature=1.0, seed=None)
    first = engine.respond("Name a colour.")
    second = engine.regenerate()
    third = engine.regenerate()
    turns = runtime.log.conversation_turns(engine.conversation_id)
    replies = [t for t in turns if t.role == "assistant"]
    assert [r.id for r in replies] == [first.turn_id, second.turn_id, third.turn_id]
    assert replies[1].alternative_of == first.turn_id and replies[2].alternative_of == first.turn_id
    active = runtime.log.active_turns(engine.conversation_id)
    assert [t.id for t in active][-1] == third.turn_id
    assert len(engine.history) == 2 and engine.history[-1].turn_id == third.turn_id


def test_a_message_longer_than_the_context_is_refused_with_a_notice(runtime):
    events = []
    result = runtime.engine.respond("word " * 3000, on_event=events.append)
    assert result is None
    assert any(isinstance(e, Notice) and "too long" in e.message for e in events)
    assert runtime.log.list_conversations() == []


def test_context_budget_holds_on_a_long_conversation(make_config):
    config = make_config('[llm]\ncontext_size = 384\n[sampler]\nmax_tokens = 48\nseed = 3\n')
    model = load_backend(config)
    rt = build_runtime(config, model=model)
    try:
        events = []
        for i in range(10):
            rt.engine.respond(f"Fact number {i}: " + "the sky is blue and the grass is green. " * 4, on_event=events.append)
        budget = 384 - 48
        started = [e for e in events if isinstance(e, TurnStarted)]
        assert len(started) == 10 and all(e.prompt_tokens <= budget for e in started)
        trims = [e for e in events if isinstance(e, ContextTrimmed)]
        assert trims, "a 10-turn conversation cannot fit 336 tokens without dropping turns"
        replies = [t for t in rt.log.conversation_turns(rt.engine.conversation_id) if t.role == "assistant"]
        assert replies[-1].data["context"]["dropped_turn_ids"]
        assert all(r.data["prompt_tokens"] + r.data["timings"]["completion_tokens"] <= 384 for r in replies)
    finally:
        rt.close()
