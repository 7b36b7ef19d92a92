"""Reasoning split while streaming, and the context budget's choice of what to leave out."""

from __future__ import annotations

import pytest

from agent.context import HistoryEntry, PromptTooLong, fit_prompt, reply_reserve
from agent.llm.base import PreparedPrompt
from agent.reasoning import ReasoningSplitter, split_reasoning


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>", "weigh it", "</think>", "Answer."],
        ["<th", "ink>weigh", " it</th", "ink>\n\nAns", "wer."],
        ["<", "t", "h", "i", "n", "k", ">", "weigh it", "<", "/", "think", ">", "Answer."],
    ],
)
def test_splitter_handles_tags_split_across_tokens(pieces):
    splitter = ReasoningSplitter()
    segments = [s for p in pieces for s in splitter.feed(p)] + splitter.flush()
    assert "".join(t for c, t in segments if c == "reasoning") == "weigh it"
    assert "".join(t for c, t in segments if c == "answer").strip() == "Answer."
    assert splitter.reasoning_text == "weigh it" and splitter.answer_text == "Answer."


def test_text_that_only_looks_like_a_tag_is_kept():
    assert split_reasoning("a < b and <thin ice>") == ("", "a < b and <thin ice>")


def test_unclosed_reasoning_stays_reasoning():
    assert split_reasoning("<think>still thinking") == ("still thinking", "")


def _render(messages):
    text = "".join(f"<{m.role}>{m.content}" for m in messages)
    return PreparedPrompt(text, tuple(range(len(text.split()))))  # one token per word


def _history(n):
    out = []
    for i in range(n):
        out.append(HistoryEntry("user", f"question {i} " + "w " * 10, 2 * i))
        out.append(HistoryEntry("assistant", f"answer {i} " + "w " * 10, 2 * i + 1))
    return out


def test_fit_drops_whole_oldest_exchanges_and_keeps_the_system_prompt():
    history = _history(10) + [HistoryEntry("user", "last question", 99)]
    fitted = fit_prompt("be brief", history, _render, budget=60)
    assert fitted.prompt.token_count <= 60
    assert fitted.prompt.text.startswith("<system>be brief<user>")
    assert fitted.dropped and fitted.dropped[-1].role == "assistant"
    assert fitted.prompt.text.endswith("<user>last question")
    kept = len(history) - len(fitted.dropped)
    assert kept < len(history)


def test_fit_refuses_when_the_last_message_alone_is_too_long():
    with pytest.raises(PromptTooLong):
        fit_prompt("", [HistoryEntry("user", "w " * 100, 1)], _render, budget=10)


def test_reply_reserve_never_takes_more_than_half():
    assert reply_reserve(1000, 256) == 256
    assert reply_reserve(1000, 4000) == 500
