"""Pure views over a conversation's stored turns (no database access)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.records import StoredTurn


def reply_group(turn: StoredTurn) -> int:
    """The id of the first reply of the group an assistant turn belongs to."""
    return turn.alternative_of if turn.alternative_of is not None else turn.id


def failed(turn: StoredTurn) -> bool:
    """A reply that failed (stop_reason 'error'): kept in the log, never the one in use if another exists."""
    return turn.data.get("stop_reason") == "error"


def latest_alternatives(turns: Sequence[StoredTurn]) -> dict[int, StoredTurn]:
    """For each reply group (first reply id), its latest alternative that did not fail (the
    latest failed one when all failed)."""
    latest: dict[int, StoredTurn] = {}
    for turn in turns:
        if turn.role == "assistant":
            group = reply_group(turn)
            best = latest.get(group)
            if best is None or _better(turn, best):
                latest[group] = turn
    return latest


def _better(turn: StoredTurn, than: StoredTurn) -> bool:
    """Later wins, except that a reply that ended beats one that failed."""
    if failed(turn) != failed(than):
        return failed(than)
    return turn.id > than.id


def active_branch(turns: Sequence[StoredTurn]) -> list[StoredTurn]:
    """Turns in order, each reply group replaced (at its first reply's place) by its latest alternative.

    Regenerated replies are never deleted; the newest one of a group is the one in use.
    """
    latest = latest_alternatives(turns)
    return [
        latest[turn.id] if turn.role == "assistant" else turn
        for turn in turns
        if turn.role == "user" or turn.alternative_of is None
    ]


def is_active(turn: StoredTurn, turns: Sequence[StoredTurn]) -> bool:
    """Whether ``turn`` is on the current branch of ``turns``."""
    if turn.role == "user":
        return True
    return latest_alternatives(turns)[reply_group(turn)].id == turn.id
