"""What the engine logs for a reply: its provenance when it starts, its full record when it ends."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from agent.context import FittedPrompt
from agent.llm.base import GenerationResult, ModelInfo
from agent.llm.sampler import SamplerSettings
from agent.reasoning import ReasoningSplitter
from agent.records import AssistantTurnRecord


def provenance(info: ModelInfo, persona: str, sampler: SamplerSettings, fitted: FittedPrompt,
               system_prompt: str = "") -> dict[str, Any]:
    """Everything about a reply that is known before its first token (stored in its draft)."""
    return {
        "prompt_text": fitted.prompt.text,
        "prompt_tokens": fitted.prompt.token_count,
        "backend": info.backend,
        "model_id": info.model_id,
        "model_path": info.path,
        "model_hash": info.file_hash,
        "persona": persona,
        "adapters": [dict(a) for a in info.adapters],
        "sampler": sampler.model_dump(mode="json"),
        "context": context_note(info, fitted) | {"system_prompt": system_prompt},
    }


def context_note(info: ModelInfo, fitted: FittedPrompt) -> dict[str, Any]:
    """Window size, budget and the turns left out to fit."""
    return {"size": info.context_size, "budget": fitted.budget, "dropped_turn_ids": [e.turn_id for e in fitted.dropped]}


def reply_record(
    *,
    conversation_id: int,
    parent_id: int | None,
    alternative_of: int | None,
    result: GenerationResult,
    splitter: ReasoningSplitter,
    prov: dict[str, Any],
    wall: float,
    extra: dict[str, Any],
    error: str | None = None,
) -> AssistantTurnRecord:
    """The full record of an ended reply (finished, cancelled or failed)."""
    spec = None
    if result.speculative is not None:
        spec = asdict(result.speculative) | {"acceptance_rate": result.speculative.acceptance_rate}
    return AssistantTurnRecord(
        conversation_id=conversation_id,
        parent_id=parent_id,
        text=splitter.answer_text,
        reasoning=splitter.reasoning_text,
        raw_text=result.text,
        **{k: prov[k] for k in ("prompt_tokens", "backend", "model_id", "model_path", "model_hash",
                                "persona", "adapters", "sampler", "context")},
        prompt_text=result.prompt.text or prov["prompt_text"],
        timings=asdict(result.timings) | {"wall_seconds": wall},
        stop_reason=result.stop_reason,
        interrupted=result.stop_reason in ("cancelled", "error"),
        steps=list(result.steps),
        alternative_of=alternative_of,
        speculative=spec,
        extra={**result.extra, **extra, **({"retrieval": prov["retrieval"]} if "retrieval" in prov else {})},
        created_at=time.time(),
        error=error,
        moe_routing=result.moe_routing,
    )
