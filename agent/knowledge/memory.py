"""Memory: past conversations of the dialogue log, indexed like documents (one chunk per exchange).

A conversation is the document ``dialogue:ID``; each exchange (a user message and the reply that
answered it, failed replies left out) is one chunk whose heading names the conversation and the
turns. Syncing reads the log read-only and re-indexes only conversations that changed since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.knowledge.chunking import Chunk, chunk_text
from agent.knowledge.indexer import Indexer
from agent.knowledge.readers import Document
from agent.log import DialogueLog
from agent.records import ConversationSummary, StoredTurn

PAGE = 200
PREFIX = "dialogue:"


@dataclass(frozen=True)
class MemorySync:
    """How many conversations the log holds, and how many were (re)indexed or dropped now."""

    conversations: int
    indexed: int
    removed: int


def memory_source(conversation_id: int) -> str:
    """The store's name for a conversation of the dialogue log."""
    return f"{PREFIX}{conversation_id}"


def sync_memory(indexer: Indexer, log_path: Path) -> MemorySync:
    """Index the conversations that are new or changed since the last sync; forget deleted ones."""
    if not log_path.exists():
        return MemorySync(0, 0, 0)
    store = indexer.store
    known = {d.source: d for d in store.documents(memory=True)}
    seen: set[str] = set()
    indexed = 0
    with DialogueLog(log_path, readonly=True) as log:
        for summary in _conversations(log):
            source = memory_source(summary.id)
            seen.add(source)
            stored = known.get(source)
            if stored is not None and stored.meta.get("updated_at") == summary.updated_at:
                continue
            indexed += _index_conversation(indexer, summary, log.active_turns(summary.id))
    gone = [d for s, d in known.items() if s not in seen]
    for document in gone:
        store.remove_document(document.id)
    return MemorySync(len(seen), indexed, len(gone))


def _conversations(log: DialogueLog) -> Iterator[ConversationSummary]:
    offset = 0
    while page := log.list_conversations(limit=PAGE, offset=offset):
        yield from page
        offset += len(page)


def exchanges(turns: Sequence[StoredTurn]) -> list[tuple[StoredTurn, StoredTurn]]:
    """(user turn, the reply that answered it) pairs of a branch; failed replies left out."""
    pairs = []
    pending: StoredTurn | None = None
    for turn in turns:
        if turn.role == "user":
            pending = turn
        elif pending is not None and turn.data.get("stop_reason") != "error" and turn.text.strip():
            pairs.append((pending, turn))
            pending = None
    return pairs


def _index_conversation(indexer: Indexer, summary: ConversationSummary, turns: Sequence[StoredTurn]) -> int:
    """Write one conversation's exchanges as chunks; 0 if it has none yet."""
    pairs = exchanges(turns)
    if not pairs:
        return 0
    title = summary.title or f"conversation {summary.id}"
    parts, chunks, offset = [], [], 0
    for user, reply in pairs:
        text = f"user: {user.text.strip()}\nassistant: {reply.text.strip()}"
        heading = f"conversation {summary.id} ({title}) > turns {user.id}-{reply.id}"
        for piece in chunk_text(text, indexer.max_chars):
            chunks.append(Chunk(piece.text, heading, offset + piece.start, offset + piece.end))
        parts.append(text)
        offset += len(text) + 2
    joined = "\n\n".join(parts)
    digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()
    document = Document(memory_source(summary.id), "memory", title, joined, digest)
    meta = {"updated_at": summary.updated_at, "turn_ids": [[u.id, r.id] for u, r in pairs]}
    indexer.write(document, meta=meta, chunks=chunks)
    return 1
