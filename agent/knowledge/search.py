"""Hybrid search: stemmed FTS5 and exact vector search fused by reciprocal rank, then a threshold.

Reciprocal-rank fusion orders the candidates of both lists (score = sum of 1 / (k + rank)); the
threshold is absolute, on cosine similarity to the query, so a query about something the store
does not hold brings back nothing rather than the least bad chunks.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agent.knowledge.embed import Embedder
from agent.knowledge.stemming import query_stems
from agent.knowledge.store import KnowledgeStore, StoredChunk

RRF_K = 60
CANDIDATES = 40


@dataclass(frozen=True)
class SearchOptions:
    """How many hits, within which scope, and the similarity a hit needs."""

    limit: int = 5
    scope: str = "knowledge"
    min_similarity: float = 0.3
    lexical_min_similarity: float = 0.2


@dataclass(frozen=True)
class Hit:
    """A chunk found for a query, with its fused score, similarity and ranks in both lists."""

    chunk: StoredChunk
    score: float
    similarity: float
    lexical_rank: int | None
    vector_rank: int | None


@dataclass(frozen=True)
class SearchResult:
    """The hits of one query and how long the search took (embedding the query included)."""

    hits: tuple[Hit, ...]
    seconds: float
    embed_seconds: float


def search(store: KnowledgeStore, embedder: Embedder, query: str, options: SearchOptions) -> SearchResult:
    """The best chunks for ``query`` above the similarity threshold, best first."""
    started = time.perf_counter()
    vector = embedder.encode([query])[0]
    embedded = time.perf_counter()
    return SearchResult(tuple(ranked(store, vector, query, options)), time.perf_counter() - started, embedded - started)


def ranked(store: KnowledgeStore, vector: np.ndarray, query: str, options: SearchOptions) -> list[Hit]:
    """Fuse both candidate lists for an already embedded query and keep those above the threshold.

    The FTS5 query runs in a worker thread while this one multiplies the vectors (SQLite and BLAS
    both release the GIL), so a search costs the slower of the two, not their sum."""
    index = store.vectors()  # before the worker takes the connection's lock
    lexical = _worker().submit(store.lexical, query_stems(query), options.scope, CANDIDATES)
    by_vector = [h.chunk_id for h in index.search(vector, CANDIDATES, options.scope)]
    by_text = lexical.result()
    scores: dict[int, float] = {}
    for ranks in (by_vector, by_text):
        for rank, chunk_id in enumerate(ranks, 1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    vector_rank = {c: r for r, c in enumerate(by_vector, 1)}
    text_rank = {c: r for r, c in enumerate(by_text, 1)}
    kept = []
    for chunk_id in sorted(scores, key=scores.__getitem__, reverse=True):
        similarity = index.similarity(vector, chunk_id)
        floor = options.lexical_min_similarity if chunk_id in text_rank else options.min_similarity
        if similarity >= floor:  # a word match may be less similar as a whole and still be the answer
            kept.append((chunk_id, similarity))
        if len(kept) == options.limit:
            break
    chunks = store.chunks([c for c, _ in kept])
    return [Hit(chunks[c], scores[c], s, text_rank.get(c), vector_rank.get(c)) for c, s in kept if c in chunks]


@lru_cache(maxsize=1)
def _worker() -> ThreadPoolExecutor:
    """The threads that run lexical queries beside the vector product (shared by all stores)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="knowledge-fts")
