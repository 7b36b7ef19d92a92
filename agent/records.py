"""What the dialogue log stores: one record per user turn and per assistant turn.

These are plain dataclasses so the engine, the log, the TUI and the dataset exporters agree on
one shape. JSON-able fields are dicts; telemetry is the list of TokenSteps (the log encodes it
compactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent.llm.base import MoERouting, TokenStep

TurnSource = Literal["typed", "voice", "file"]


@dataclass
class UserTurnRecord:
    """A user's turn: what he said or typed, and how it was heard."""

    conversation_id: int
    text: str
    source: TurnSource = "typed"
    audio_path: str | None = None  # recorded utterance, relative to the data dir or absolute
    stt: dict[str, Any] = field(default_factory=dict)  # model, language, confidence, timings
    created_at: float = 0.0


@dataclass
class AssistantTurnRecord:
    """An assistant's reply with everything needed to turn it into training data."""

    conversation_id: int
    parent_id: int | None  # the user turn this answers
    text: str  # the answer, reasoning removed
    reasoning: str  # <think> content, "" if none
    raw_text: str  # exactly what the model generated
    prompt_text: str  # the prompt exactly as sent
    prompt_tokens: int
    backend: str
    model_id: str
    model_path: str
    model_hash: str
    persona: str
    adapters: list[dict[str, Any]]  # [{"id", "path", "scale", "hash"}]
    sampler: dict[str, Any]  # every sampler value
    timings: dict[str, Any]  # prompt_tokens, completion_tokens, ttft, tokens_per_second, ...
    stop_reason: str
    interrupted: bool
    steps: list[TokenStep] = field(default_factory=list)  # per-token telemetry
    alternative_of: int | None = None  # regenerated: the assistant turn this is an alternative to
    heard_text: str | None = None  # the part actually heard when speech was cut off
    spoken_text: str | None = None  # normalised text sent to TTS
    speculative: dict[str, Any] | None = None  # method, proposed, accepted, rate
    context: dict[str, Any] = field(default_factory=dict)  # size, budget, dropped turn ids
    extra: dict[str, Any] = field(default_factory=dict)  # latency waterfall etc.
    created_at: float = 0.0
    error: str | None = None  # why the reply failed (stop_reason "error")
    moe_routing: MoERouting | None = None  # per-token expert routing (table moe_routing), MoE models only


@dataclass
class ReplyDraft:
    """What is known of a reply when it starts streaming; logged at once so a crash leaves a trace."""

    conversation_id: int
    parent_id: int | None  # the user turn it answers (None: the user turn is logged with it)
    alternative_of: int | None
    provenance: dict[str, Any]  # prompt_text, prompt_tokens, backend, model_*, persona, adapters, sampler, context
    started_at: float = 0.0


@dataclass(frozen=True)
class ConversationSummary:
    """One line of ``epistemic log list``."""

    id: int
    title: str
    persona: str
    started_at: float
    updated_at: float
    turns: int


@dataclass(frozen=True)
class StoredTurn:
    """A turn read back from the log (user or assistant)."""

    id: int
    conversation_id: int
    role: Literal["user", "assistant"]
    text: str
    created_at: float
    parent_id: int | None = None
    alternative_of: int | None = None
    interrupted: bool = False
    reasoning: str = ""
    persona: str | None = None
    sampler: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)  # every other stored column, decoded
