"""Pure views over a conversation's stored turns (no database access)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.records import StoredTurn


def reply_group(turn: StoredTurn) -> int:
    """The id of the first reply of the group an assistant turn belongs to."""
    return turn.alternative_of if turn.alternative_of is not None else turn.id


def latest_alternatives(turns: Sequence[StoredTurn]) -> dict[int, StoredTurn]:
    """For each reply group (first reply id), its latest alternative."""
    latest: dict[int, StoredTurn] = {}
    for turn in turns:
        if turn.role == "assistant":
            group = reply_group(turn)
            if group not in latest or turn.id > latest[group].id:
                latest[group] = turn
    return latest


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
