"""Turns streamed out of the snapshot, one conversation at a time, never the whole log in memory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from agent.harvest.export.snapshot import turn_columns

COLUMNS = (
    "id", "conversation_id", "role", "text", "created_at", "parent_id", "alternative_of", "source",
    "audio_path", "stt", "reasoning", "backend", "model_id", "model_hash", "persona", "adapters",
    "sampler", "stop_reason", "interrupted", "heard_text",
)
BATCH = 4096


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
def _json_shape(text: str) -> tuple[type, str | None]:
    """The parsed value's type and its "language" (if a dict has one); ValueError if unreadable.

    Cached by text: a log repeats the same sampler, adapters and STT settings turn after turn, so
    most rows are checked without parsing (the values themselves are not kept)."""
    value = json.loads(text)
    found = value.get("language") if isinstance(value, dict) else None
    return type(value), found if isinstance(found, str) and found else None


def _shape(text: str | None, turn_id: int, column: str) -> tuple[type | None, str | None]:
    if text is None:
        return None, None
    try:
        return _json_shape(text)
    except ValueError:
        raise CorruptRow(f"turn {turn_id}: unreadable JSON in {column}") from None


def validate(turn: Turn) -> Turn:
    """Check a turn's JSON columns once (CorruptRow if one cannot be read); sets its language."""
    if turn.role == "user":
        kind, found = _shape(turn.stt, turn.id, "stt")
        if kind is not None and kind is not dict:
            raise CorruptRow(f"turn {turn.id}: stt is not an object")
        turn.lang = found
        return turn
    for column, wanted in (("sampler", dict), ("adapters", list)):
        kind, _ = _shape(getattr(turn, column), turn.id, column)
        if kind is not None and kind is not wanted:
            raise CorruptRow(f"turn {turn.id}: {column} is not a JSON {wanted.__name__}")
    return turn


def _select(conn: sqlite3.Connection) -> str:
    present = turn_columns(conn)
    names = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    return f"SELECT {names} FROM turns ORDER BY conversation_id, id"


def conversations(conn: sqlite3.Connection) -> Iterator[list[Turn]]:
    """Every conversation's turns in order (regenerated alternatives included), streamed."""
    cursor = conn.execute(_select(conn))
    current: list[Turn] = []
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            break
        for row in batch:
            turn = Turn(*row)
            if current and turn.conversation_id != current[0].conversation_id:
                yield current
                current = []
            current.append(turn)
    if current:
        yield current


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
