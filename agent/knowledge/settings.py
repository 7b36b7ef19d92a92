"""The [knowledge] configuration section: where the store lives and how much a turn may retrieve."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeSettings(BaseModel):
    """Your documents and past dialogues, retrieved per turn by personas whose ``retrieve`` asks for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field("", description="Knowledge store file; empty = <data dir>/knowledge.sqlite3 (beside the dialogue log).")
    max_sources: int = Field(5, ge=1, le=50, description="Most numbered sources put into one prompt.")
    max_tokens: int = Field(768, ge=32, le=1 << 20, description="Most prompt tokens the sources may take (never more than half of what the message leaves).")
    min_similarity: float = Field(0.3, ge=-1.0, le=1.0, description="Cosine similarity a chunk needs to be used; below it nothing is injected.")
    lexical_min_similarity: float = Field(0.2, ge=-1.0, le=1.0, description="The lower similarity enough for a chunk that also matches the query's words.")
    chunk_chars: int = Field(1000, ge=100, le=100_000, description="Longest chunk in characters (chunks follow headings and paragraphs).")
    fetch_timeout_s: float = Field(20.0, gt=0.0, description="Seconds to wait for a URL given to `epistemic knowledge add`.")
    watch: tuple[str, ...] = Field((), description="Folders kept indexed while `epistemic knowledge watch` or the TUI runs (created, changed and deleted files follow).")
    watch_debounce_ms: int = Field(800, ge=50, le=60_000, description="Milliseconds of quiet after a change before a watched folder is re-indexed.")
