"""The per-turn retriever: search the store, number the hits, and fit them into a token budget."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from agent.config_load import LoadedConfig
from agent.knowledge.embed import Embedder, default_embedder
from agent.knowledge.memory import sync_memory
from agent.knowledge.protocols import Retrieval, RetrieveScope, Source
from agent.knowledge.search import Hit, search
from agent.knowledge.service import make_indexer, open_store, search_options
from agent.knowledge.store import KnowledgeStore, StoredChunk

logger = logging.getLogger(__name__)
HEADER = "Sources (cite a source you use as [n]):"
MIN_PART = 48  # fewest tokens worth giving a source cut short


def source_entry(source: Source) -> str:
    """``[1] (notes.md § Setup) text``: one numbered source as the prompt shows it."""
    return f"[{source.number}] ({source.label}) {source.text.strip()}"


def sources_block(sources: Sequence[Source]) -> str:
    """The block appended to the system prompt; empty when nothing was retrieved."""
    if not sources:
        return ""
    return "\n\n".join([HEADER, *(source_entry(s) for s in sources)])


def fit_sources(hits: Sequence[Hit], budget_tokens: int, count_tokens: Callable[[str], int]) -> tuple[list[Source], int]:
    """Number the hits best first, keeping each that still fits (the last one cut short at a word if
    at least MIN_PART tokens are left); (sources, the block's exact token count)."""
    sources: list[Source] = []
    used = count_tokens(HEADER)
    for hit in hits:
        source = Source(len(sources) + 1, hit.chunk.id, hit.score, hit.similarity, hit.chunk.text,
                        hit.chunk.source, hit.chunk.heading, hit.chunk.text_hash)
        cost = count_tokens(source_entry(source)) + 2
        if used + cost > budget_tokens:
            shorter = _shortened(source, cost, budget_tokens - used, count_tokens)
            if shorter is None:
                continue
            source, cost = shorter, count_tokens(source_entry(shorter)) + 2
        sources.append(source)
        used += cost
    while sources and count_tokens(sources_block(sources)) > budget_tokens:
        sources.pop()  # the estimate was short (tokens merge across the joins)
    return sources, count_tokens(sources_block(sources)) if sources else 0


def _shortened(source: Source, cost: int, room: int, count_tokens: Callable[[str], int]) -> Source | None:
    """The source cut at a word so that its entry takes at most ``room`` tokens; None if too little room."""
    if room < MIN_PART:
        return None
    text = source.text
    for _ in range(6):
        text = text[: max(1, int(len(text) * room / max(cost, 1) * 0.9))].rsplit(" ", 1)[0]
        shorter = replace(source, text=text + " …", truncated=True)
        cost = count_tokens(source_entry(shorter)) + 2
        if cost <= room:
            return shorter
    return None


class KnowledgeRetriever:
    """The :class:`~agent.knowledge.protocols.Retriever` of a configuration; opens the store on first use.

    Called from the thread running a turn; the lock guards the lazily opened store and the
    memory sync (two turns never sync the same conversation at once).
    """

    def __init__(self, config: LoadedConfig, embedder: Embedder | None = None) -> None:
        self.config = config
        self.embedder = embedder or default_embedder()
        self._store: KnowledgeStore | None = None
        self._lock = threading.Lock()

    def store(self) -> KnowledgeStore:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config, self.embedder)
            return self._store

    def retrieve(self, query: str, *, scope: RetrieveScope, budget_tokens: int,
                 count_tokens: Callable[[str], int]) -> Retrieval:
        started = time.perf_counter()
        if scope == "none" or budget_tokens <= 0:
            return Retrieval(query, scope, budget_tokens=max(budget_tokens, 0))
        store = self.store()
        if scope in ("memory", "both"):
            with self._lock:
                sync_memory(make_indexer(self.config, store, self.embedder), self.config.log_path())
        budget = min(budget_tokens, self.config.settings.knowledge.max_tokens)
        result = search(store, self.embedder, query, search_options(self.config, scope))
        sources, tokens = fit_sources(result.hits, budget, count_tokens)
        return Retrieval(query, scope, tuple(sources), sources_block(sources), tokens, budget,
                         time.perf_counter() - started)

    def restore(self, provenance: Mapping[str, Any], *, count_tokens: Callable[[str], int]) -> Retrieval:
        started = time.perf_counter()
        store = self.store()
        sources: list[Source] = []
        gone: list[str] = []
        for entry in provenance.get("sources", ()):
            chunk = store.chunk_with_text(str(entry["source"]), str(entry["text_hash"]))
            if chunk is None:
                gone.append(f"[{entry['number']}] {entry['source']} changed or was removed since")
                continue
            sources.append(_restored(entry, chunk))
        block = sources_block(sources)
        return Retrieval(str(provenance.get("query", "")), provenance.get("scope", "knowledge"), tuple(sources), block,
                         count_tokens(block) if block else 0, int(provenance.get("budget_tokens", 0)),
                         time.perf_counter() - started, tuple(gone))

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _restored(entry: Mapping[str, Any], chunk: StoredChunk) -> Source:
    """A logged source with its text read back (cut where it was cut then)."""
    text = chunk.text
    if entry.get("truncated") and isinstance(entry.get("chars"), int):
        text = chunk.text[: max(0, entry["chars"] - 2)] + " …"
    return Source(int(entry["number"]), chunk.id, float(entry.get("score", 0.0)), float(entry.get("similarity", 0.0)),
                  text, chunk.source, chunk.heading, chunk.text_hash, bool(entry.get("truncated")))
