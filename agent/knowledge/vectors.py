"""Exact vector search over every chunk: one float32 matrix per kind of chunk, a matrix-vector product.

Vectors are stored as int8 (unit vectors x 127, 512 bytes a chunk) and searched as float32 with
BLAS: at 100,000 chunks a query is one ~50 M multiply-add product, exact, and cosine similarity
from int8 is within ~0.01 of float32. Documents and dialogue memory are two matrices, so a scope
never needs a filter. Nothing is kept in step with the database but the store's generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALE = 127.0


@dataclass(frozen=True)
class VectorHit:
    """A chunk and its cosine similarity to the query."""

    chunk_id: int
    similarity: float


def quantised(vectors: np.ndarray) -> np.ndarray:
    """Unit float vectors as int8 (what the store keeps)."""
    return np.clip(np.rint(np.asarray(vectors, dtype=np.float32) * SCALE), -127, 127).astype(np.int8)


def decoded(blob: bytes, dim: int) -> np.ndarray:
    """A stored embedding as float32: int8 bytes, or float16 as early stores wrote them."""
    if len(blob) == dim:
        return np.frombuffer(blob, dtype=np.int8).astype(np.float32) / SCALE
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


class _Matrix:
    """The vectors of one kind of chunk (documents or memory), rows renormalised, and their chunk ids."""

    def __init__(self, ids: list[int], rows: list[np.ndarray], dim: int) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        data = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        self.data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-9)

    def search(self, query: np.ndarray, limit: int) -> list[VectorHit]:
        if not len(self.ids):
            return []
        sims = self.data @ query
        limit = min(limit, len(sims))
        top = np.argpartition(-sims, limit - 1)[:limit]
        return [VectorHit(int(self.ids[i]), float(sims[i])) for i in top]


class VectorIndex:
    """The embeddings of one store generation. Read-only once built, so any thread may search it."""

    def __init__(self, documents: _Matrix, memory: _Matrix, generation: int) -> None:
        self.parts = {"knowledge": documents, "memory": memory}
        self.generation = generation
        self._rows = {int(c): (part, row) for part in self.parts.values() for row, c in enumerate(part.ids)}

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, bytes]], dim: int, generation: int) -> VectorIndex:
        """Build from (chunk id, is_memory, stored embedding) rows."""
        ids: dict[bool, list[int]] = {False: [], True: []}
        vectors: dict[bool, list[np.ndarray]] = {False: [], True: []}
        for chunk_id, is_memory, blob in rows:
            ids[bool(is_memory)].append(chunk_id)
            vectors[bool(is_memory)].append(decoded(blob, dim))
        return cls(_Matrix(ids[False], vectors[False], dim), _Matrix(ids[True], vectors[True], dim), generation)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def nbytes(self) -> int:
        """Memory the vectors take."""
        return sum(p.data.nbytes for p in self.parts.values())

    def search(self, query: np.ndarray, limit: int, scope: str) -> list[VectorHit]:
        """The ``limit`` most similar chunks within ``scope`` (knowledge, memory or both), best first."""
        query = np.asarray(query, dtype=np.float32)
        names = ("knowledge", "memory") if scope == "both" else (scope,)
        hits = [h for name in names for h in self.parts[name].search(query, limit)]
        return sorted(hits, key=lambda h: h.similarity, reverse=True)[:limit]

    def similarity(self, query: np.ndarray, chunk_id: int) -> float:
        """Cosine similarity of one chunk to the query (-1.0 for an unknown chunk)."""
        found = self._rows.get(chunk_id)
        if found is None:
            return -1.0
        part, row = found
        return float(part.data[row] @ query)
