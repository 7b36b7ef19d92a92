"""Mapping between turn records and ``turns`` rows: column lists, JSON columns, StoredTurn."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from pathlib import PurePath
from typing import Any

from agent.records import AssistantTurnRecord, StoredTurn, UserTurnRecord

logger = logging.getLogger(__name__)

JSON_COLUMNS = frozenset({"stt", "adapters", "sampler", "timings", "speculative", "context", "extra", "meta"})
USER_COLUMNS = ("source", "audio_path", "stt")
ASSISTANT_COLUMNS = (
    "reasoning", "raw_text", "prompt_text", "prompt_tokens", "backend", "model_id", "model_path",
    "model_hash", "persona", "adapters", "sampler", "timings", "stop_reason", "interrupted",
    "heard_text", "spoken_text", "speculative", "context", "extra", "error",
)
_COMMON = ("conversation_id", "role", "text", "created_at", "parent_id", "alternative_of")
# columns StoredTurn has as attributes; everything else of the row goes into StoredTurn.data
_ATTRIBUTES = frozenset({*_COMMON, "id", "reasoning", "persona", "sampler", "interrupted"})
_USER_DATA = (*USER_COLUMNS, "label")
_ASSISTANT_DATA = tuple(c for c in ASSISTANT_COLUMNS if c not in _ATTRIBUTES) + ("label", "token_count")


def _json_default(obj: Any) -> Any:
    """Make the odd non-JSON value in a record storable instead of losing the turn."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):  # numpy array
        return obj.tolist()
    logger.warning("dialogue log: storing %s as its repr", type(obj).__name__)
    return repr(obj)


def dumps(value: Any) -> str | None:
    """JSON text for a dict/list column (readable non-ASCII text), None stays NULL."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def loads(text: str | None) -> Any:
    """Parse a JSON column; a damaged value comes back as ``{"_unreadable_json": text}``."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"_unreadable_json": text}


def _insert_sql(columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO turns ({names}) VALUES ({marks})"


USER_INSERT = _insert_sql((*_COMMON, *USER_COLUMNS))
ASSISTANT_INSERT = _insert_sql((*_COMMON, *ASSISTANT_COLUMNS))


def _value(record: Any, column: str) -> Any:
    value = getattr(record, column)
    if column in JSON_COLUMNS:
        return dumps(value)
    if column == "interrupted":
        return int(bool(value))
    return value


def user_params(record: UserTurnRecord, created_at: float) -> tuple[Any, ...]:
    """Values for USER_INSERT."""
    common = (record.conversation_id, "user", record.text, created_at, None, None)
    return common + tuple(_value(record, c) for c in USER_COLUMNS)


def assistant_params(
    record: AssistantTurnRecord, created_at: float, parent_id: int | None, alternative_of: int | None
) -> tuple[Any, ...]:
    """Values for ASSISTANT_INSERT (parent and alternative already resolved by the caller)."""
    common = (record.conversation_id, "assistant", record.text, created_at, parent_id, alternative_of)
    return common + tuple(_value(record, c) for c in ASSISTANT_COLUMNS)


def _column(row: sqlite3.Row, name: str) -> Any:
    value = row[name] if name in row.keys() else None
    return loads(value) if name in JSON_COLUMNS else value


def stored_turn(row: sqlite3.Row) -> StoredTurn:
    """A ``turns`` row (optionally joined with token_count) as a StoredTurn."""
    assistant = row["role"] == "assistant"
    names = _ASSISTANT_DATA if assistant else _USER_DATA
    return StoredTurn(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        text=row["text"],
        created_at=row["created_at"],
        parent_id=row["parent_id"],
        alternative_of=row["alternative_of"],
        interrupted=bool(row["interrupted"]),
        reasoning=row["reasoning"] or "",
        persona=row["persona"],
        sampler=_column(row, "sampler") if assistant else None,
        data={name: _column(row, name) for name in names},
    )
