"""Events the conversation engine streams to any consumer (CLI, TUI, tests).

Small frozen dataclasses; consumers receive them through a plain callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agent.knowledge.protocols import Retrieval
from agent.llm.base import GenerationResult, TokenStep

Channel = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class TurnStarted:
    """A reply begins: the user turn is logged and the prompt is ready."""

    conversation_id: int | None  # None when the dialogue log is off
    user_turn_id: int | None
    persona: str
    prompt_tokens: int
    context_size: int


@dataclass(frozen=True)
class ContextTrimmed:
    """Oldest turns were left out of the prompt so it fits the model's window."""

    dropped_turn_ids: tuple[int, ...]
    prompt_tokens: int
    budget: int


@dataclass(frozen=True)
class ReplyToken:
    """One generated token; ``text`` is the part of it shown on ``channel`` (tags removed)."""

    step: TokenStep
    channel: Channel
    text: str


@dataclass(frozen=True)
class TurnFinished:
    """The reply ended (finished, stopped or failed: see ``result.stop_reason``).

    ``logged`` says whether it is in the dialogue log; ``turn_id`` is its id there, else None.
    """

    turn_id: int | None
    answer: str
    reasoning: str
    result: GenerationResult
    interrupted: bool
    logged: bool
    retrieval: Retrieval | None = None  # the numbered sources the reply was given (None: the persona retrieves none)


@dataclass(frozen=True)
class Notice:
    """Something the user should see (e.g. a too-long prompt); never a crash."""

    level: Literal["info", "warning", "error"]
    message: str


EngineEvent = TurnStarted | ContextTrimmed | ReplyToken | TurnFinished | Notice
EventSink = Callable[[EngineEvent], None]
