"""Numbered schema migrations for the dialogue log.

The schema version lives in ``PRAGMA user_version``. Migration N moves a database from version
N-1 to N. All pending migrations run in one ``BEGIN IMMEDIATE`` transaction together with their
version bumps (SQLite's DDL is transactional), so a crash mid-upgrade leaves the version the file
had before intact. Never edit a released migration: append a
new one.

Schema (one ``turns`` table for both roles, so a conversation reads back in order with one query;
columns that belong to the other role are NULL):

- ``conversations``: id, title, persona (at the start), started_at, updated_at, meta (JSON).
- ``turns``: role 'user' | 'assistant'; the user columns (source, audio_path, stt) and the assistant
  columns (every AssistantTurnRecord field). Dict/list fields are JSON text written with
  ``ensure_ascii=False``. ``parent_id`` is the user turn an assistant turn answers;
  ``alternative_of`` is the first reply a regenerated reply replaces (never deleted).
- ``reply_drafts`` (3): replies while they stream, see :mod:`agent.log.drafts`.
- ``curation`` (4): the user's curation actions (ratings, edits, preferred replies, exclusions,
  tags, corrected transcripts), apart from the turns they are about, which never change; undo sets
  ``undone_at``. See :mod:`agent.harvest.curation`.
- ``token_telemetry``: one row per assistant turn with its TokenSteps packed by
  :mod:`agent.log.codec`, apart from ``turns`` so reading a conversation never drags the blobs.
- ``moe_routing`` (5): per assistant turn of a mixture-of-experts model with routing capture on,
  each token's chosen experts, gate weights and router entropy, packed by :mod:`agent.log.moe_codec`.

Timestamps are unix seconds as REAL (``time.time()``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: ``version`` is the user_version after it ran."""

    version: int
    description: str
    sql: str


_BASE_SCHEMA = """
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL DEFAULT '',
    persona     TEXT NOT NULL,
    started_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    meta        TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE turns (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text            TEXT NOT NULL,
    created_at      REAL NOT NULL,
    parent_id       INTEGER REFERENCES turns(id),
    alternative_of  INTEGER REFERENCES turns(id),
    -- user turns
    source          TEXT,
    audio_path      TEXT,
    stt             TEXT,
    -- assistant turns
    reasoning       TEXT,
    raw_text        TEXT,
    prompt_text     TEXT,
    prompt_tokens   INTEGER,
    backend         TEXT,
    model_id        TEXT,
    model_path      TEXT,
    model_hash      TEXT,
    persona         TEXT,
    adapters        TEXT,
    sampler         TEXT,
    timings         TEXT,
    stop_reason     TEXT,
    interrupted     INTEGER NOT NULL DEFAULT 0,
    heard_text      TEXT,
    spoken_text     TEXT,
    speculative     TEXT,
    context         TEXT,
    extra           TEXT
);

CREATE TABLE token_telemetry (
    turn_id     INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
    token_count INTEGER NOT NULL,
    data        BLOB NOT NULL
);

CREATE INDEX turns_by_conversation ON turns(conversation_id, id);
"""

_LABELS_AND_INDEXES = """
-- preference data: 'chosen' / 'rejected' / free text, set when harvesting datasets
ALTER TABLE turns ADD COLUMN label TEXT;
CREATE INDEX turns_by_alternative ON turns(alternative_of) WHERE alternative_of IS NOT NULL;
CREATE INDEX turns_by_parent ON turns(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX conversations_by_start ON conversations(started_at);
"""

_ERRORS_AND_DRAFTS = """
-- why a reply failed (stop_reason 'error'); NULL for every other reply
ALTER TABLE turns ADD COLUMN error TEXT;
-- a reply while it streams: written when it starts, updated about once a second, deleted when the
-- finished turn is committed. A draft left by a process that died becomes a turn with
-- stop_reason 'crashed' the next time the log is opened for writing.
CREATE TABLE reply_drafts (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id       INTEGER REFERENCES turns(id),
    alternative_of  INTEGER REFERENCES turns(id),
    writer_pid      INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    token_count     INTEGER NOT NULL DEFAULT 0,
    raw_text        TEXT NOT NULL DEFAULT '',
    record          TEXT NOT NULL DEFAULT '{}'
);
"""

_CURATION = """
-- one row per curation action; the turns it is about are never changed. An action is never
-- deleted or rewritten: undo sets undone_at. value is JSON (the rating, the corrected text, the tag).
CREATE TABLE curation (
    id          INTEGER PRIMARY KEY,
    created_at  REAL NOT NULL,
    target      TEXT NOT NULL CHECK (target IN ('turn', 'conversation')),
    target_id   INTEGER NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('rate', 'edit', 'prefer', 'exclude', 'tag', 'transcript')),
    value       TEXT,
    undone_at   REAL
);
CREATE INDEX curation_by_target ON curation(target, target_id, id);
CREATE TRIGGER curation_never_rewritten BEFORE UPDATE OF id, created_at, target, target_id, action, value
ON curation BEGIN
    SELECT RAISE(ABORT, 'curation actions are never rewritten: undo them');
END;
CREATE TRIGGER curation_never_deleted BEFORE DELETE ON curation BEGIN
    SELECT RAISE(ABORT, 'curation actions are never deleted: undo them');
END;
"""

_MOE_ROUTING = """
-- mixture-of-experts routing of a reply (llama.cpp, [llm] moe_routing): written with the turn
CREATE TABLE moe_routing (
    turn_id     INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
    layers      INTEGER NOT NULL,
    experts     INTEGER NOT NULL,
    data        BLOB NOT NULL
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base schema: conversations, turns, token telemetry", _BASE_SCHEMA),
    Migration(2, "preference label column and lookup indexes", _LABELS_AND_INDEXES),
    Migration(3, "error text of failed replies; drafts of replies while they stream", _ERRORS_AND_DRAFTS),
    Migration(4, "curation actions (ratings, edits, preferences, exclusions, tags, transcripts)", _CURATION),
    Migration(5, "mixture-of-experts routing per assistant turn", _MOE_ROUTING),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (safe for semicolons inside triggers)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        out.append(current.strip())
    return out


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def apply_migration(conn: sqlite3.Connection, migration: Migration) -> None:
    """Run one migration's statements and bump user_version (caller holds the transaction)."""
    for statement in statements(migration.sql):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {int(migration.version)}")


def pending(version: int, target: int = SCHEMA_VERSION) -> list[Migration]:
    """Migrations that move a database at ``version`` up to ``target``."""
    return [m for m in MIGRATIONS if version < m.version <= target]
