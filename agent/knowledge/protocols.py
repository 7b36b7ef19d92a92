"""What the engine asks of retrieval per turn, and the numbered sources it gets back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

RetrieveScope = Literal["none", "knowledge", "memory", "both"]
SCOPES: tuple[RetrieveScope, ...] = ("none", "knowledge", "memory", "both")


@dataclass(frozen=True)
class Source:
    """One retrieved chunk, numbered as the prompt cites it ([number])."""

    number: int
    chunk_id: int
    score: float
    similarity: float
    text: str
    source: str
    heading: str
    text_hash: str  # of the whole stored chunk
    truncated: bool = False  # ``text`` is the chunk cut short to fit the budget

    @property
    def label(self) -> str:
        """``file § heading`` (the file's name only; the full path is in ``source``)."""
        name = self.source.rstrip("/").rsplit("/", 1)[-1] or self.source
        return f"{name} § {self.heading}" if self.heading else name


@dataclass(frozen=True)
class Retrieval:
    """The sources chosen for one turn, the prompt block that cites them, and its cost."""

    query: str
    scope: RetrieveScope
    sources: tuple[Source, ...] = ()
    block: str = ""
    tokens: int = 0
    budget_tokens: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def provenance(self) -> dict[str, Any]:
        """What the turn's log keeps: chunk ids, scores, text hashes and source paths, and the block
        exactly as the prompt carried it (dataset exports keep it or leave it out)."""
        return {
            "scope": self.scope,
            "block": self.block,
            "query": self.query,
            "tokens": self.tokens,
            "budget_tokens": self.budget_tokens,
            "seconds": round(self.seconds, 4),
            "sources": [
                {"number": s.number, "chunk_id": s.chunk_id, "score": round(s.score, 6),
                 "similarity": round(s.similarity, 4), "source": s.source, "heading": s.heading,
                 "text_hash": s.text_hash, "truncated": s.truncated, "chars": len(s.text)}
                for s in self.sources
            ],
        }


class Retriever(Protocol):
    """Finds sources for a user message. Called from the thread running the turn."""

    def retrieve(
        self,
        query: str,
        *,
        scope: RetrieveScope,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> Retrieval:
        """Sources for ``query`` whose prompt block is at most ``budget_tokens`` tokens."""
        ...

    def restore(self, provenance: Mapping[str, Any], *, count_tokens: Callable[[str], int]) -> Retrieval:
        """The sources a logged turn was given (its :meth:`Retrieval.provenance`), read back from the
        store with their numbers; those changed or removed since are left out and named in ``notes``."""
        ...
