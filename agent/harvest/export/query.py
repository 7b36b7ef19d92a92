"""Turns streamed out of the snapshot, one conversation at a time, never the whole log in memory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby, starmap
from operator import itemgetter

from agent.harvest.export.snapshot import turn_columns

COLUMNS = (
    "id", "conversation_id", "role", "text", "created_at", "parent_id", "alternative_of", "source",
    "audio_path", "stt", "reasoning", "backend", "model_id", "model_hash", "persona", "adapters",
    "sampler", "stop_reason", "interrupted", "heard_text",
)
BATCH = 4096
_CONVERSATION = itemgetter(COLUMNS.index("conversation_id"))


class CorruptRow(ValueError):
    """A turn whose stored JSON cannot be read: it is skipped and counted."""


@dataclass(slots=True)
class Turn:
    """The columns of one ``turns`` row an export needs (JSON columns still as text)."""

    id: int
    conversation_id: int
    role: str
    text: str
    created_at: float
    parent_id: int | None
    alternative_of: int | None
    source: str | None
    audio_path: str | None
    stt: str | None
    reasoning: str | None
    backend: str | None
    model_id: str | None
    model_hash: str | None
    persona: str | None
    adapters: str | None
    sampler: str | None
    stop_reason: str | None
    interrupted: int
    heard_text: str | None
    retrieval: str | None = None  # a reply's retrieval record (JSON text) if it was given sources
    lang: str | None = None  # the user turn's detected language, set by :func:`validate`

    @property
    def group(self) -> int:
        """The reply group (first reply's id) of an assistant turn."""
        return self.alternative_of if self.alternative_of is not None else self.id

    @property
    def failed(self) -> bool:
        """A reply that failed: never exported."""
        return self.stop_reason == "error"

    @property
    def cut_off(self) -> bool:
        """Interrupted by the user (barge-in, cancel) or by a crash."""
        return bool(self.interrupted) or self.stop_reason == "crashed"


def language(turn: Turn) -> str | None:
    """The detected language of a user turn (set by :func:`validate`), None when unknown."""
    return turn.lang


@lru_cache(maxsize=4096)
def _json_shape(text: str) -> tuple[type, str | None, str]:
    """The parsed value's type, its "language" (if a dict has one) and the first text seen equal
    to ``text``; ValueError if unreadable.

    Cached by text: a log repeats the same sampler, adapters and STT settings turn after turn, so
    most rows are checked without parsing (the values themselves are not kept), and every turn
    then shares one copy of each repeated text instead of holding its own."""
    value = json.loads(text)
    found = value.get("language") if isinstance(value, dict) else None
    return type(value), found if isinstance(found, str) and found else None, text


def _shape(text: str | None, turn_id: int, column: str, wanted: type) -> tuple[str | None, str | None]:
    """(the shared copy of the JSON text, its language); CorruptRow if unreadable or not ``wanted``."""
    if text is None:
        return None, None
    try:
        kind, found, shared = _json_shape(text)
    except ValueError:
        raise CorruptRow(f"turn {turn_id}: unreadable JSON in {column}") from None
    if kind is not wanted:
        raise CorruptRow(f"turn {turn_id}: {column} is not a JSON {'object' if wanted is dict else 'list'}")
    return shared, found


def validate(turn: Turn) -> Turn:
    """Check a turn's JSON columns once (CorruptRow if one cannot be read); sets its language."""
    if turn.role == "user":
        turn.stt, turn.lang = _shape(turn.stt, turn.id, "stt", dict)
        return turn
    turn.sampler = _shape(turn.sampler, turn.id, "sampler", dict)[0]
    turn.adapters = _shape(turn.adapters, turn.id, "adapters", list)[0]
    return turn


def sources_block(turn: Turn) -> str | None:
    """The numbered sources block a reply's system prompt carried, exactly as sent ('' when it was
    given none; None when its log record names sources but not the block, as older logs do)."""
    if not turn.retrieval:
        return ""
    try:
        record = json.loads(turn.retrieval)
    except ValueError:
        return None
    block = record.get("block") if isinstance(record, dict) else None
    if isinstance(block, str):
        return block
    return None if isinstance(record, dict) and record.get("sources") else ""


# the retrieval record, read only from rows that have one (json_valid: a corrupt row stays readable)
RETRIEVAL = ("CASE WHEN instr(extra, '\"retrieval\"') > 0 AND json_valid(extra) "
             "THEN json_extract(extra, '$.retrieval') END AS retrieval")


def _select(conn: sqlite3.Connection) -> str:
    present = turn_columns(conn)
    names = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    retrieval = RETRIEVAL if "extra" in present else "NULL AS retrieval"
    return f"SELECT {names}, {retrieval} FROM turns ORDER BY conversation_id, id"


def conversations(conn: sqlite3.Connection) -> Iterator[list[Turn]]:
    """Every conversation's turns in order (regenerated alternatives included), streamed."""
    cursor = conn.execute(_select(conn))
    cursor.arraysize = BATCH
    for _, rows in groupby(cursor, key=_CONVERSATION):
        yield list(starmap(Turn, rows))


def prompt_text(conn: sqlite3.Connection, turn_id: int) -> str:
    """The prompt exactly as sent for one reply ('' when not stored)."""
    row = conn.execute("SELECT prompt_text FROM turns WHERE id = ?", (turn_id,)).fetchone()
    return (row[0] or "") if row else ""


def system_prompt_of(conn: sqlite3.Connection, turn_id: int) -> str | None:
    """The system prompt a reply was given, where its context record stores it."""
    row = conn.execute("SELECT context FROM turns WHERE id = ?", (turn_id,)).fetchone()
    if not row or not row[0]:
        return None
    try:
        context = json.loads(row[0])
    except ValueError:
        return None
    value = context.get("system_prompt") if isinstance(context, dict) else None
    return value if isinstance(value, str) else None
