"""The knowledge store: documents and chunks in their own SQLite file beside the dialogue log.

One document is written in one transaction (its old chunks, FTS rows and vectors replaced
together), so a failure leaves the previous state whole. Every write bumps a generation number
that readers (the vector matrix, other processes) compare to know when to reload.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.knowledge.chunking import Chunk
from agent.knowledge.errors import KnowledgeError
from agent.knowledge.schema import migrate
from agent.knowledge.stemming import index_terms, match_expression
from agent.knowledge.vectors import VectorIndex, decoded, quantised
from agent.private import private_sqlite

MAX_POSTINGS = 4000
SCOPE_SQL = {"knowledge": "AND c.is_memory = 0", "memory": "AND c.is_memory = 1", "both": ""}


@dataclass(frozen=True)
class StoredDocument:
    """A document as the store knows it."""

    id: int
    source: str
    kind: str
    title: str
    content_hash: str
    chunk_count: int
    added_at: float
    updated_at: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk read back with its document's source and title."""

    id: int
    document_id: int
    source: str
    title: str
    heading: str
    start: int
    end: int
    text: str
    text_hash: str
    is_memory: bool


@dataclass(frozen=True)
class NewChunk:
    """A chunk about to be written, with its embedding."""

    chunk: Chunk
    text_hash: str
    vector: np.ndarray


class KnowledgeStore:
    """The store's SQLite connection.

    Called from the CLI's thread or the thread running a turn; the lock guards the connection
    and the cached :class:`VectorIndex` (searches from several threads take turns).
    """

    def __init__(self, path: Path, *, dim: int = 512, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.dim = dim
        self._lock = threading.RLock()
        self._vectors: VectorIndex | None = None
        try:
            private_sqlite(self.path)
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate(self._conn, str(self.path))
        except (OSError, sqlite3.Error) as exc:
            raise KnowledgeError(f"{self.path}: cannot open the knowledge store: {exc}") from None

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise KnowledgeError(f"{self.path}: {action} failed: {exc}") from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise KnowledgeError(f"{self.path}: reading failed: {exc}") from None

    def generation(self) -> int:
        """Bumped by every write; a cached vector matrix of another generation is stale."""
        return int(self._query("SELECT value FROM store_meta WHERE key = 'generation'")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- documents -----------------------------------------------------------------------------

    def documents(self, *, memory: bool | None = None) -> list[StoredDocument]:
        """Every document (only dialogue memory, or only the user's documents, if asked)."""
        where = "" if memory is None else ("WHERE kind = 'memory'" if memory else "WHERE kind != 'memory'")
        return [_document(r) for r in self._query(f"SELECT * FROM documents {where} ORDER BY id")]

    def document(self, source: str) -> StoredDocument | None:
        rows = self._query("SELECT * FROM documents WHERE source = ?", (source,))
        return _document(rows[0]) if rows else None

    def document_by_id(self, document_id: int) -> StoredDocument | None:
        rows = self._query("SELECT * FROM documents WHERE id = ?", (document_id,))
        return _document(rows[0]) if rows else None

    def known_vectors(self, source: str) -> dict[tuple[str, str], np.ndarray]:
        """(heading, text hash) -> embedding of a document's current chunks (reused when unchanged)."""
        rows = self._query(
            "SELECT c.heading, c.text_hash, c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.source = ?", (source,),
        )
        return {(r[0], r[1]): decoded(r[2], self.dim) for r in rows}

    def replace_document(self, *, source: str, kind: str, title: str, content_hash: str,
                         chunks: Sequence[NewChunk], meta: dict[str, Any] | None = None) -> int:
        """Write a document and its chunks in one transaction, replacing any earlier version."""
        now = time.time()
        with self._transaction(f"indexing {source}") as conn:
            old = conn.execute("SELECT id, added_at FROM documents WHERE source = ?", (source,)).fetchone()
            if old is not None:
                _delete_chunks(conn, old["id"])
                conn.execute("DELETE FROM documents WHERE id = ?", (old["id"],))
            cur = conn.execute(
                "INSERT INTO documents (source, kind, title, content_hash, chunk_count, added_at, updated_at, meta)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (source, kind, title, content_hash, len(chunks), old["added_at"] if old else now, now,
                 json.dumps(meta or {}, ensure_ascii=False)),
            )
            document_id = int(cur.lastrowid or 0)
            self._insert_chunks(conn, document_id, title, kind == "memory", chunks)
        return document_id

    def _insert_chunks(self, conn: sqlite3.Connection, document_id: int, title: str, is_memory: bool,
                       chunks: Sequence[NewChunk]) -> None:
        for ord_, new in enumerate(chunks):
            c = new.chunk
            vector = quantised(new.vector).tobytes()
            cur = conn.execute(
                "INSERT INTO chunks (document_id, ord, heading, start, end, text, text_hash, is_memory, embedding)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (document_id, ord_, c.heading, c.start, c.end, c.text, new.text_hash, int(is_memory), vector),
            )
            terms = index_terms(f"{title}\n{c.heading}\n{c.text}")
            conn.execute("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)", (cur.lastrowid, terms))

    def remove_document(self, document_id: int) -> None:
        """Delete a document with its chunks, FTS rows and vectors (one transaction)."""
        with self._transaction(f"removing document {document_id}") as conn:
            _delete_chunks(conn, document_id)
            conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))

    # -- search --------------------------------------------------------------------------------

    def lexical(self, stems: Sequence[str], scope: str, limit: int, max_postings: int = MAX_POSTINGS) -> list[int]:
        """Chunk ids containing any of ``stems``, best BM25 first, within ``scope``.

        Ranking costs one step per chunk that matches, so the rarest stems are kept until their
        chunks add up to ``max_postings`` (the rarest is always kept): a word found in most
        chunks says little about any of them and would only make every query slow."""
        if not stems:
            return []
        marks = ",".join("?" * len(stems))
        counts = sorted((int(r[1]), r[0]) for r in self._query(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", list(stems)))
        kept: list[str] = []
        total = 0
        for count, term in counts:
            if kept and total + count > max_postings:
                break
            kept.append(term)
            total += count
        match = match_expression(kept)
        if match is None:
            return []
        sql = (
            "SELECT f.rowid FROM chunks_fts f JOIN chunks c ON c.id = f.rowid"
            f" WHERE chunks_fts MATCH ? {SCOPE_SQL[scope]} ORDER BY f.rank LIMIT ?"
        )
        return [int(r[0]) for r in self._query(sql, (match, limit))]

    def vectors(self) -> VectorIndex:
        """The vector matrix of the current generation (reloaded after any write, by anyone)."""
        with self._lock:
            generation = self.generation()
            if self._vectors is None or self._vectors.generation != generation:
                rows = self._conn.execute("SELECT id, is_memory, embedding FROM chunks ORDER BY id").fetchall()
                self._vectors = VectorIndex.from_rows([tuple(r) for r in rows], self.dim, generation)
            return self._vectors

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The chunks with these ids (missing ones left out)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT c.*, d.source, d.title FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.id IN ({marks})", list(ids),
        )
        return {int(r["id"]): _chunk(r) for r in rows}

    def chunk_with_text(self, source: str, text_hash: str) -> StoredChunk | None:
        """The chunk of ``source`` whose text has this hash, if the document still holds it (ids change
        when a document is re-indexed; the text hash does not)."""
        rows = self._query(
            "SELECT c.*, d.source, d.title FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.source = ? AND c.text_hash = ? ORDER BY c.ord LIMIT 1", (source, text_hash),
        )
        return _chunk(rows[0]) if rows else None

    def stats(self) -> dict[str, int]:
        """Documents, chunks and the database's size in bytes (with its WAL)."""
        docs, chunks = self._query("SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)")[0]
        size = sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists())
        return {"documents": int(docs), "chunks": int(chunks), "bytes": size}


def _delete_chunks(conn: sqlite3.Connection, document_id: int) -> None:
    conn.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id = ?)", (document_id,))
    conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))


def _document(row: sqlite3.Row) -> StoredDocument:
    return StoredDocument(
        id=row["id"], source=row["source"], kind=row["kind"], title=row["title"],
        content_hash=row["content_hash"], chunk_count=row["chunk_count"], added_at=row["added_at"],
        updated_at=row["updated_at"], meta=json.loads(row["meta"] or "{}"),
    )


def _chunk(row: sqlite3.Row) -> StoredChunk:
    return StoredChunk(
        id=row["id"], document_id=row["document_id"], source=row["source"], title=row["title"],
        heading=row["heading"], start=row["start"], end=row["end"], text=row["text"],
        text_hash=row["text_hash"], is_memory=bool(row["is_memory"]),
    )
