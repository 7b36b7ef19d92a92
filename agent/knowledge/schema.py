"""The knowledge store's tables, created and upgraded through numbered migrations."""

from __future__ import annotations

import sqlite3

from agent.knowledge.errors import KnowledgeError

MIGRATIONS: tuple[str, ...] = (
    # 1: documents, their chunks (text, offsets, int8 embedding) and the stemmed FTS5 index
    """
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        chunk_count INTEGER NOT NULL,
        added_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        heading TEXT NOT NULL,
        start INTEGER NOT NULL,
        end INTEGER NOT NULL,
        text TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        is_memory INTEGER NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX chunks_by_document ON chunks(document_id, ord);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO store_meta VALUES ('generation', '0');
    """,
    # 2: per-term document counts, so a query leaves out words that are in most chunks
    """
    CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database up to :data:`SCHEMA_VERSION`; refuse one made by a newer version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise KnowledgeError(f"{where}: knowledge store schema {version} is newer than this program ({SCHEMA_VERSION}); upgrade it")
    for number in range(version, SCHEMA_VERSION):
        with conn:
            conn.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
