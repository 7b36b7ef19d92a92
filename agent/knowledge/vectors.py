"""Exact vector search over every chunk: one float32 matrix in memory, a matrix-vector product.

At 100,000 chunks of 512 dimensions a query is one ~50 M multiply-add product (a few ms), exact
and with nothing to keep in step with the database but the store's generation number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VectorHit:
    """A chunk and its cosine similarity to the query."""

    chunk_id: int
    similarity: float


class VectorIndex:
    """The embeddings of one store generation. Read-only once built, so any thread may search it."""

    def __init__(self, ids: np.ndarray, memory: np.ndarray, matrix: np.ndarray, generation: int) -> None:
        self.ids = ids
        self.memory = memory
        self.matrix = matrix
        self.generation = generation
        self._row = {int(chunk_id): row for row, chunk_id in enumerate(ids)}

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, bytes]], dim: int, generation: int) -> VectorIndex:
        """Build from (chunk id, is_memory, float16 embedding bytes) rows."""
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        memory = np.fromiter((bool(r[1]) for r in rows), dtype=bool, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16).reshape(len(rows), dim)
        return cls(ids, memory, matrix.astype(np.float32), generation)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: np.ndarray, limit: int, scope: str) -> list[VectorHit]:
        """The ``limit`` most similar chunks within ``scope`` (knowledge, memory or both)."""
        if not len(self.ids):
            return []
        sims = self.matrix @ query.astype(np.float32)
        if scope == "knowledge":
            sims = np.where(self.memory, -2.0, sims)
        elif scope == "memory":
            sims = np.where(self.memory, sims, -2.0)
        limit = min(limit, len(sims))
        top = np.argpartition(-sims, limit - 1)[:limit]
        top = top[np.argsort(-sims[top])]
        return [VectorHit(int(self.ids[i]), float(sims[i])) for i in top if sims[i] > -2.0]

    def similarity(self, query: np.ndarray, chunk_id: int) -> float:
        """Cosine similarity of one chunk to the query (-1.0 for an unknown chunk)."""
        row = self._row.get(chunk_id)
        return -1.0 if row is None else float(self.matrix[row] @ query)
