"""Fit a conversation into the model's context window by leaving out the oldest turns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.llm.base import ChatMessage, PreparedPrompt


@dataclass(frozen=True)
class HistoryEntry:
    """One message of the running conversation and the logged turn it came from."""

    role: str
    content: str
    turn_id: int | None


@dataclass(frozen=True)
class FittedPrompt:
    """The prompt that fits, and which history entries were left out to make it fit."""

    prompt: PreparedPrompt
    dropped: tuple[HistoryEntry, ...]
    budget: int


class PromptTooLong(Exception):
    """Even the newest message alone does not fit the context budget."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"the message needs {tokens} tokens but the context leaves room for {budget}")
        self.tokens = tokens
        self.budget = budget


def reply_reserve(context_size: int, max_tokens: int) -> int:
    """Tokens kept free for the reply: max_tokens, but never more than half the window."""
    return min(max_tokens, context_size // 2)


def fit_prompt(
    system_prompt: str,
    history: Sequence[HistoryEntry],
    render: Callable[[Sequence[ChatMessage]], PreparedPrompt],
    budget: int,
) -> FittedPrompt:
    """Render the longest suffix of ``history`` whose prompt is at most ``budget`` tokens.

    Whole exchanges are dropped from the front (a user message with the replies after it), so the
    prompt always starts with the system message and then a user message.
    """
    start = 0
    while True:
        messages = [ChatMessage("system", system_prompt)] if system_prompt else []
        messages += [ChatMessage(e.role, e.content) for e in history[start:]]  # type: ignore[arg-type]
        prompt = render(messages)
        if prompt.token_count <= budget:
            return FittedPrompt(prompt, tuple(history[:start]), budget)
        nxt = _next_exchange(history, start)
        if nxt is None:
            raise PromptTooLong(prompt.token_count, budget)
        start = nxt


def _next_exchange(history: Sequence[HistoryEntry], start: int) -> int | None:
    """Index of the next user message after ``start`` that is not the last message, or None."""
    for index in range(start + 1, len(history)):
        if history[index].role == "user":
            return index
    return None
