"""Add, update and re-index documents: read, chunk, embed, then write each in one transaction."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agent.knowledge.chunking import DEFAULT_MAX_CHARS, Chunk, chunk_text
from agent.knowledge.embed import Embedder, encode_batches
from agent.knowledge.errors import KnowledgeError
from agent.knowledge.readers import Document, parse, read_bytes, source_key
from agent.knowledge.store import KnowledgeStore, NewChunk

Progress = Callable[[str], None]
Status = Literal["added", "updated", "unchanged", "failed"]


@dataclass(frozen=True)
class IndexResult:
    """What happened to one document: added, updated, unchanged or failed (with the error line)."""

    source: str
    status: Status
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    error: str = ""


def text_hash(text: str) -> str:
    """SHA-256 of a chunk's text: what the turn log keeps to know exactly what the model was shown."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_input(chunk: Chunk, kind: str = "") -> str:
    """What is embedded for a chunk: its heading path (a Markdown or HTML title is its first part),
    then its text. A file name or a memory heading is bookkeeping that would only blur the vector."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading and kind != "memory" else chunk.text


class Indexer:
    """Turns documents into stored chunks. Used by one thread at a time (the CLI's, or a turn's)."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder, *, max_chars: int = DEFAULT_MAX_CHARS,
                 timeout: float = 20.0, progress: Progress | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.max_chars = max_chars
        self.timeout = timeout
        self.progress = progress or (lambda _: None)

    def add_all(self, refs: Sequence[str], *, force: bool = False) -> list[IndexResult]:
        """Add each file or URL; a failure is reported in its result and the others go on."""
        results = []
        for number, ref in enumerate(refs, 1):
            self.progress(f"[{number}/{len(refs)}] {ref}")
            try:
                results.append(self.add(ref, force=force))
            except KnowledgeError as exc:
                results.append(IndexResult(source_key(ref), "failed", error=str(exc)))
        return results

    def add(self, ref: str, *, force: bool = False) -> IndexResult:
        """Index one file or URL: a no-op if its bytes are unchanged, else its chunks replaced."""
        started = time.perf_counter()
        source = source_key(ref)
        data, kind = read_bytes(source, self.timeout)
        stored = self.store.document(source)
        document = parse(source, data, kind)
        if stored is not None and stored.content_hash == document.content_hash and not force:
            return IndexResult(source, "unchanged", stored.chunk_count, 0, time.perf_counter() - started)
        embedded = self.write(document)
        status: Status = "added" if stored is None else "updated"
        return IndexResult(source, status, self._count(source), embedded, time.perf_counter() - started)

    def _count(self, source: str) -> int:
        stored = self.store.document(source)
        return stored.chunk_count if stored else 0

    def write(self, document: Document, meta: dict[str, Any] | None = None,
              chunks: Sequence[Chunk] | None = None) -> int:
        """Chunk (unless given), embed what is new, and replace the document; returns how many were embedded."""
        chunks = list(chunks) if chunks is not None else chunk_text(document.text, self.max_chars)
        if not chunks:
            raise KnowledgeError(f"{document.source}: no text to index")
        hashes = [text_hash(c.text) for c in chunks]
        vectors, embedded = self._vectors(document, chunks, hashes)
        new = [NewChunk(c, h, v) for c, h, v in zip(chunks, hashes, vectors, strict=True)]
        self.store.replace_document(source=document.source, kind=document.kind, title=document.title,
                                    content_hash=document.content_hash, chunks=new, meta=meta)
        return embedded

    def _vectors(self, document: Document, chunks: Sequence[Chunk], hashes: Sequence[str]) -> tuple[np.ndarray, int]:
        """Embeddings of the chunks (those whose heading and text are unchanged reused), and how many were new."""
        known = self.store.known_vectors(document.source)
        todo = [i for i, (c, h) in enumerate(zip(chunks, hashes, strict=True)) if (c.heading, h) not in known]
        fresh = encode_batches(
            self.embedder, [embedding_input(chunks[i], document.kind) for i in todo],
            lambda done: self.progress(f"  embedded {done}/{len(todo)} chunks of {document.source}"),
        )
        vectors = np.zeros((len(chunks), self.embedder.dim), dtype=np.float32)
        for row, i in enumerate(todo):
            vectors[i] = fresh[row]
        for i, (c, h) in enumerate(zip(chunks, hashes, strict=True)):
            if (c.heading, h) in known:
                vectors[i] = known[(c.heading, h)]
        return vectors, len(todo)

    def reindex(self, *, force: bool = False) -> list[IndexResult]:
        """Read every stored document again: changed ones are replaced, vanished ones reported."""
        documents = self.store.documents(memory=False)
        return self.add_all([d.source for d in documents], force=force)
