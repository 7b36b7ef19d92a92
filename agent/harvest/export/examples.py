"""What every text format shares: a conversation ready to write, messages, prompts, provenance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.harvest.export.exchanges import Curation, Exchange
from agent.harvest.export.options import Filters


@dataclass
class Conversation:
    """One conversation's exchanges with what the formats need to turn them into rows."""

    id: int
    exchanges: list[Exchange]
    system: str | None  # the system prompt as sent ('' / None: there was none)
    curation: Curation
    filters: Filters
    scrub: Callable[[str], str] = field(default=lambda text: text)
    retrieved: str = "include"  # the sources block a reply was given: include (as sent) | omit

    def system_for(self, ex: Exchange | None = None) -> str:
        """The system prompt of ``ex``'s reply as exported: as sent, with the numbered sources the
        reply was given appended as the engine appended them (include), or without them (omit)."""
        block = ex.sources if ex is not None and self.retrieved == "include" else ""
        return "\n\n".join(p for p in (self.system, self.scrub(block) if block else "") if p)

    def head(self, ex: Exchange | None = None) -> list[dict[str, str]]:
        """The system message (if any) that starts the prompt of ``ex``'s reply."""
        system = self.system_for(ex)
        return [{"role": "system", "content": system}] if system else []

    def kept(self) -> list[Exchange]:
        """The exchanges that become training turns."""
        return [ex for ex in self.exchanges if ex.reason is None]

    def contexts(self) -> Iterator[tuple[Exchange, list[dict[str, str]]]]:
        """Each exchange with its prompt as the model saw it: system (with the sources this reply
        was given), the earlier exchanges as the engine's history kept them (answers without
        reasoning or sources), then this user message."""
        history: list[dict[str, str]] = []
        for ex in self.exchanges:
            user = {"role": "user", "content": self.scrub(ex.user_text)}
            yield ex, [*self.head(ex), *history, user]
            history += [user, {"role": "assistant", "content": self.scrub(ex.active.text)}]


@dataclass(frozen=True)
class Example:
    """One row of a format, the conversation it comes from, and the text duplicates are judged by."""

    conversation_id: int
    row: dict[str, Any]
    key: str
    turns: int  # the assistant turns it trains on
    sources: list[dict[str, Any]]  # the provenance of each reply it holds


def assistant(content: str) -> dict[str, str]:
    """An assistant message."""
    return {"role": "assistant", "content": content}


def provenance(ex: Exchange, reply: Any = None, **more: Any) -> dict[str, Any]:
    """Where a reply came from: turn ids, model, persona, adapters, sampler (JSON text), curation."""
    turn = reply or ex.chosen
    return {
        "conversation_id": turn.conversation_id, "user_turn_id": ex.user.id, "turn_id": turn.id,
        "created_at": turn.created_at, "backend": turn.backend or "", "model_id": turn.model_id or "",
        "model_hash": turn.model_hash or "", "persona": turn.persona or "",
        "adapters_json": turn.adapters or "[]", "sampler_json": turn.sampler or "{}",
        "source": ex.user.source or "typed", "language": ex.language or "",
        "rating": ex.rating or "", "edited": ex.edited, "interrupted": turn.cut_off,
        "original_user_text": ex.user.text if ex.user_text != ex.user.text else "", **more,
    }


def key_of(messages: list[dict[str, str]]) -> str:
    """The text a row is deduplicated by: its messages' contents."""
    return "\n".join(m["content"] for m in messages)
