"""Curation of the dialogue log: ratings, corrections, preferred replies, exclusions, tags and
corrected transcripts, stored as actions in the ``curation`` table (migration 4).

The turns an action is about never change. An action is never deleted: :func:`undo` stamps its
``undone_at``. The effective state (:func:`load_state`) is, per (target, id, action), the latest
action not undone; for tags, per tag value; for preferences, per reply group. So undoing the latest
rating brings back the one before it.

Write side (CLI, TUI): functions taking a :class:`~agent.log.db.DialogueLog` (a
:class:`CurationStore`), each validating
inside its own write transaction and returning the new action's id; problems are one-line
:class:`~agent.errors.LogError`. Read side (exporters, UI): functions taking a plain
``sqlite3.Connection`` (a read snapshot); a log never migrated to schema 4 reads as no curation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent.errors import LogError
from agent.log.migrations import user_version

Target = Literal["turn", "conversation"]
Rating = Literal["good", "bad"]
ACTIONS = ("rate", "edit", "prefer", "exclude", "tag", "transcript")
RATINGS = ("good", "bad")
CURATION_SCHEMA = 4


class CurationStore(Protocol):
    """Where curation is written and read: :class:`agent.log.db.DialogueLog` (any thread)."""

    def transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, committed on success."""
        ...

    def snapshot(self, action: str = "reading") -> AbstractContextManager[sqlite3.Connection]:
        """One consistent read."""
        ...


@dataclass(frozen=True)
class CurationAction:
    """One stored action; ``value`` is its decoded JSON (``{"rating", "note"}``, ``{"text"}``,
    ``{"group"}``, ``{"tag"}`` or ``{}``)."""

    id: int
    created_at: float
    target: Target
    target_id: int
    action: str
    value: dict[str, Any]
    undone_at: float | None = None

    @property
    def active(self) -> bool:
        """Not undone."""
        return self.undone_at is None

    def describe(self) -> str:
        """One line: ``rate good: too long`` / ``edit "Paris."`` / ``tag travel``."""
        v = self.value
        if self.action == "rate":
            return f"rate {v.get('rating')}" + (f": {v['note']}" if v.get("note") else "")
        if self.action in ("edit", "transcript"):
            return f"{self.action} {_short(str(v.get('text', '')))!r}"
        if self.action == "prefer":
            return f"prefer over the other alternatives of #{v.get('group')}"
        if self.action == "tag":
            return f"tag {v.get('tag')}"
        return self.action


@dataclass(frozen=True)
class CurationState:
    """The effective curation of a log, at the moment of one read snapshot."""

    ratings: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # turn -> (good|bad, note)
    edits: dict[int, str] = field(default_factory=dict)  # assistant turn -> corrected reply
    preferred: dict[int, int] = field(default_factory=dict)  # reply group root -> preferred turn
    excluded_turns: frozenset[int] = frozenset()
    excluded_conversations: frozenset[int] = frozenset()
    tags: dict[int, frozenset[str]] = field(default_factory=dict)  # conversation -> tags
    transcripts: dict[int, str] = field(default_factory=dict)  # user turn -> what was really said

    def excluded(self, conversation_id: int, turn_id: int | None = None) -> bool:
        """Whether a conversation (or one of its turns) is left out of exports."""
        return conversation_id in self.excluded_conversations or turn_id in self.excluded_turns


# ------------------------------------------------------------------------------------ reading

_COLUMNS = "id, created_at, target, target_id, action, value, undone_at"


def has_curation(conn: sqlite3.Connection) -> bool:
    """Whether the log has the curation table (schema 4 or later)."""
    return user_version(conn) >= CURATION_SCHEMA


def _action(row: tuple[Any, ...]) -> CurationAction:
    value = json.loads(row[5]) if row[5] else {}
    return CurationAction(int(row[0]), float(row[1]), row[2], int(row[3]), row[4],
                          value if isinstance(value, dict) else {}, row[6])


def load_state(conn: sqlite3.Connection) -> CurationState:
    """The effective curation (latest action not undone per target, action and tag/group)."""
    if not has_curation(conn):
        return CurationState()
    latest: dict[tuple[Any, ...], CurationAction] = {}
    for row in conn.execute(f"SELECT {_COLUMNS} FROM curation WHERE undone_at IS NULL ORDER BY id"):
        action = _action(tuple(row))
        latest[_key(action)] = action
    return _fold(latest.values())


def _key(a: CurationAction) -> tuple[Any, ...]:
    if a.action == "tag":
        return (a.target, a.target_id, "tag", a.value.get("tag"))
    if a.action == "prefer":
        return ("group", a.value.get("group"), "prefer")
    return (a.target, a.target_id, a.action)


def _fold(actions: Any) -> CurationState:
    ratings: dict[int, tuple[str, str | None]] = {}
    edits: dict[int, str] = {}
    preferred: dict[int, int] = {}
    transcripts: dict[int, str] = {}
    tags: dict[int, set[str]] = {}
    excluded: dict[str, set[int]] = {"turn": set(), "conversation": set()}
    for a in actions:
        if a.action == "rate":
            ratings[a.target_id] = (str(a.value.get("rating")), a.value.get("note"))
        elif a.action == "edit":
            edits[a.target_id] = str(a.value.get("text", ""))
        elif a.action == "transcript":
            transcripts[a.target_id] = str(a.value.get("text", ""))
        elif a.action == "prefer":
            preferred[int(a.value.get("group", a.target_id))] = a.target_id
        elif a.action == "tag":
            tags.setdefault(a.target_id, set()).add(str(a.value.get("tag")))
        elif a.action == "exclude":
            excluded[a.target].add(a.target_id)
    return CurationState(ratings, edits, preferred, frozenset(excluded["turn"]),
                         frozenset(excluded["conversation"]),
                         {c: frozenset(t) for c, t in tags.items()}, transcripts)


def history(conn: sqlite3.Connection, target: Target, target_id: int) -> list[CurationAction]:
    """Every action on one turn or conversation, undone ones included, oldest first."""
    if not has_curation(conn):
        return []
    found = conn.execute(f"SELECT {_COLUMNS} FROM curation WHERE target = ? AND target_id = ? ORDER BY id",
                         (target, target_id))
    return [_action(tuple(row)) for row in found]


def conversation_actions(conn: sqlite3.Connection, conversation_id: int) -> list[CurationAction]:
    """Every action on a conversation and on its turns, undone ones included, oldest first."""
    if not has_curation(conn):
        return []
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM curation WHERE (target = 'conversation' AND target_id = ?) "
        "OR (target = 'turn' AND target_id IN (SELECT id FROM turns WHERE conversation_id = ?)) ORDER BY id",
        (conversation_id, conversation_id))
    return [_action(tuple(row)) for row in found]


def state_of(log: CurationStore) -> CurationState:
    """:func:`load_state` on a log opened by this process."""
    with log.snapshot("reading the curation") as conn:
        return load_state(conn)


# ------------------------------------------------------------------------------------ writing


def rate(log: CurationStore, turn_id: int, rating: str, note: str | None = None) -> int:
    """Rate an assistant reply good or bad, with an optional note; the new action's id."""
    if rating not in RATINGS:
        raise LogError(f"rating must be good or bad, not {rating!r}")
    note = (note or "").strip() or None
    with log.transaction("rating a reply") as conn:
        _assistant(conn, turn_id, "rated")
        return _insert(conn, "turn", turn_id, "rate", {"rating": rating, "note": note})


def edit(log: CurationStore, turn_id: int, text: str) -> int:
    """Keep a corrected reply beside the original (chosen = the edit, rejected = the original)."""
    with log.transaction("saving a corrected reply") as conn:
        row = _assistant(conn, turn_id, "edited")
        if not text.strip():
            raise LogError(f"the correction of turn {turn_id} is empty (exclude the turn instead)")
        if text.strip() == (row["text"] or "").strip():
            raise LogError(f"the correction of turn {turn_id} is the same as the reply")
        return _insert(conn, "turn", turn_id, "edit", {"text": text})


def prefer(log: CurationStore, turn_id: int) -> int:
    """Mark a reply as the preferred one among the regenerated alternatives of its group."""
    with log.transaction("preferring a reply") as conn:
        row = _assistant(conn, turn_id, "preferred")
        group = row["alternative_of"] or turn_id
        size = conn.execute("SELECT COUNT(*) FROM turns WHERE id = ? OR alternative_of = ?",
                            (group, group)).fetchone()[0]
        if size < 2:
            raise LogError(f"turn {turn_id} has no regenerated alternatives to be preferred over")
        return _insert(conn, "turn", turn_id, "prefer", {"group": group})


def exclude(log: CurationStore, target: Target, target_id: int) -> int:
    """Leave a turn or a whole conversation out of every export (undo to include it again)."""
    with log.transaction(f"excluding a {target}") as conn:
        _require(conn, target, target_id)
        if _active_ids(conn, target, target_id, "exclude"):
            raise LogError(f"{target} {target_id} is already excluded")
        return _insert(conn, target, target_id, "exclude", {})


def include(log: CurationStore, target: Target, target_id: int) -> list[int]:
    """Undo the exclusion of a turn or conversation; the ids of the actions undone."""
    with log.transaction(f"including a {target}") as conn:
        ids = _active_ids(conn, target, target_id, "exclude")
        if not ids:
            raise LogError(f"{target} {target_id} is not excluded")
        _stamp_undone(conn, ids)
        return ids


def tag(log: CurationStore, conversation_id: int, name: str) -> int:
    """Tag a conversation (a tag is removed by undoing it, or with :func:`untag`)."""
    name = name.strip()
    if not name or any(not ch.isprintable() for ch in name):
        raise LogError(f"a tag must be non-empty printable text, not {name!r}")
    with log.transaction("tagging a conversation") as conn:
        _require(conn, "conversation", conversation_id)
        if _active_ids(conn, "conversation", conversation_id, "tag", name):
            raise LogError(f"conversation {conversation_id} is already tagged {name!r}")
        return _insert(conn, "conversation", conversation_id, "tag", {"tag": name})


def untag(log: CurationStore, conversation_id: int, name: str) -> list[int]:
    """Remove a tag from a conversation; the ids of the tag actions undone."""
    with log.transaction("removing a tag") as conn:
        ids = _active_ids(conn, "conversation", conversation_id, "tag", name.strip())
        if not ids:
            raise LogError(f"conversation {conversation_id} is not tagged {name.strip()!r}")
        _stamp_undone(conn, ids)
        return ids


def correct_transcript(log: CurationStore, user_turn_id: int, text: str) -> int:
    """Keep what was really said beside the speech-to-text transcript of a spoken user turn."""
    with log.transaction("correcting a transcript") as conn:
        row = _turn(conn, user_turn_id)
        if row["role"] != "user":
            raise LogError(f"turn {user_turn_id} is an assistant reply: only user turns have transcripts (edit it instead)")
        if row["source"] == "typed":
            raise LogError(f"turn {user_turn_id} was typed, not spoken: it has no transcript to correct")
        if not text.strip():
            raise LogError(f"the corrected transcript of turn {user_turn_id} is empty")
        return _insert(conn, "turn", user_turn_id, "transcript", {"text": text})


def undo(log: CurationStore, action_id: int) -> int:
    """Undo one action (it stays in the log, stamped ``undone_at``); returns its id."""
    with log.transaction("undoing a curation action") as conn:
        row = conn.execute("SELECT undone_at FROM curation WHERE id = ?", (action_id,)).fetchone()
        if row is None:
            raise LogError(f"no curation action {action_id}")
        if row[0] is not None:
            raise LogError(f"curation action {action_id} is already undone")
        _stamp_undone(conn, [action_id])
        return action_id


def last_action(log: CurationStore, conversation_id: int) -> CurationAction | None:
    """The latest action not undone on a conversation or its turns (what "undo last" undoes)."""
    with log.snapshot("reading the curation") as conn:
        active = [a for a in conversation_actions(conn, conversation_id) if a.active]
    return active[-1] if active else None


# ------------------------------------------------------------------------------------ helpers


def _insert(conn: sqlite3.Connection, target: Target, target_id: int, action: str, value: dict[str, Any]) -> int:
    cur = conn.execute(
        "INSERT INTO curation (created_at, target, target_id, action, value) VALUES (?, ?, ?, ?, ?)",
        (time.time(), target, target_id, action, json.dumps(value, ensure_ascii=False)))
    return int(cur.lastrowid or 0)


def _stamp_undone(conn: sqlite3.Connection, ids: list[int]) -> None:
    now = time.time()
    conn.executemany("UPDATE curation SET undone_at = ? WHERE id = ?", [(now, i) for i in ids])


def _active_ids(conn: sqlite3.Connection, target: Target, target_id: int, action: str,
                tag_name: str | None = None) -> list[int]:
    found = conn.execute("SELECT id, value FROM curation WHERE target = ? AND target_id = ? AND action = ? "
                         "AND undone_at IS NULL ORDER BY id", (target, target_id, action)).fetchall()
    return [int(r[0]) for r in found if tag_name is None or json.loads(r[1] or "{}").get("tag") == tag_name]


def _turn(conn: sqlite3.Connection, turn_id: int) -> dict[str, Any]:
    names = ("id", "conversation_id", "role", "text", "alternative_of", "source")
    row = conn.execute(f"SELECT {', '.join(names)} FROM turns WHERE id = ?", (turn_id,)).fetchone()
    if row is None:
        raise LogError(f"no turn {turn_id}")
    return dict(zip(names, tuple(row), strict=True))


def _assistant(conn: sqlite3.Connection, turn_id: int, verb: str) -> dict[str, Any]:
    row = _turn(conn, turn_id)
    if row["role"] != "assistant":
        raise LogError(f"turn {turn_id} is a user turn: only assistant replies are {verb}")
    return row


def _require(conn: sqlite3.Connection, target: Target, target_id: int) -> None:
    if target not in ("turn", "conversation"):
        raise LogError(f"a curation target is a turn or a conversation, not {target!r}")
    if target == "turn":
        _turn(conn, target_id)
    elif not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (target_id,)).fetchone():
        raise LogError(f"no conversation {target_id}")


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
