"""How many examples an export would contain now, from the curation state and the turns' shape.

The counting rules (the exporter's defaults: no interrupted replies, no failed ones):

- a reply is *usable* when it is not excluded (nor its conversation, nor the user turn it answers),
  did not fail or crash, was not interrupted, and is not rated bad unless it was corrected;
- **SFT**: conversations with at least one usable reply on their branch (the preferred
  alternative of a group where one is preferred, else the latest);
- **DPO**: one pair per corrected reply (the correction over the original), per other alternative
  of a group with a preferred reply (preferred over it), and per good/bad-rated pair of
  alternatives of a group without a preference; each pair counted once;
- **KTO**: one row per rated reply that is not excluded.

Reads only light columns of ``turns`` (never the prompts or the telemetry).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from agent.harvest.curation import CurationState, load_state

_BROKEN = ("error", "crashed")


@dataclass(frozen=True)
class TurnShape:
    """What counting needs of a turn: its place in the conversation and how it ended."""

    id: int
    conversation_id: int
    role: str
    parent_id: int | None
    alternative_of: int | None
    stop_reason: str | None
    interrupted: bool

    @property
    def group(self) -> int:
        """The reply group (first reply's id)."""
        return self.alternative_of if self.alternative_of is not None else self.id


@dataclass(frozen=True)
class ExportCounts:
    """Examples of each kind an export with default filters would contain."""

    sft_conversations: int = 0
    dpo_pairs: int = 0
    kto_rows: int = 0


@dataclass(frozen=True)
class ConversationCuration:
    """One conversation's curation at a glance (the Harvest screen's list)."""

    rated: int = 0
    edited: int = 0
    preferred: int = 0
    excluded_turns: int = 0


def turn_shapes(conn: sqlite3.Connection, conversation_id: int | None = None) -> list[TurnShape]:
    """Every turn's shape, in order (of one conversation, or of the whole log)."""
    sql = ("SELECT id, conversation_id, role, parent_id, alternative_of, stop_reason, interrupted "
           "FROM turns")
    params: tuple[int, ...] = ()
    if conversation_id is not None:
        sql, params = sql + " WHERE conversation_id = ?", (conversation_id,)
    return [TurnShape(int(r[0]), int(r[1]), str(r[2]), r[3], r[4], r[5], bool(r[6]))
            for r in conn.execute(sql + " ORDER BY id", params)]


def count_examples(conn: sqlite3.Connection) -> ExportCounts:
    """:func:`count` over the whole log, on one read snapshot connection."""
    return count(load_state(conn), turn_shapes(conn))


def count(state: CurationState, turns: Iterable[TurnShape]) -> ExportCounts:
    """Examples of each kind (see the module docstring for the rules)."""
    by_conversation: dict[int, list[TurnShape]] = defaultdict(list)
    for turn in turns:
        by_conversation[turn.conversation_id].append(turn)
    sft = dpo = kto = 0
    for conversation_id, shapes in by_conversation.items():
        if conversation_id in state.excluded_conversations:
            continue
        replies = _included_replies(state, shapes)
        sft += any(_usable(state, t) for t in _branch(state, replies))
        dpo += len(_pairs(state, replies))
        kto += sum(1 for t in replies if t.id in state.ratings)
    return ExportCounts(sft, dpo, kto)


def per_conversation(state: CurationState, turns: Iterable[TurnShape]) -> dict[int, ConversationCuration]:
    """Counts of rated, corrected, preferred and excluded turns per conversation."""
    tallies: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    preferred = set(state.preferred.values())
    for t in turns:
        tally = tallies[t.conversation_id]
        for i, hit in enumerate((t.id in state.ratings, t.id in state.edits, t.id in preferred,
                                 t.id in state.excluded_turns)):
            tally[i] += hit
    return {c: ConversationCuration(*v) for c, v in tallies.items()}


def _included_replies(state: CurationState, shapes: list[TurnShape]) -> list[TurnShape]:
    """Replies not excluded themselves nor through the user turn they answer."""
    return [t for t in shapes if t.role == "assistant" and t.id not in state.excluded_turns
            and t.parent_id not in state.excluded_turns]


def _usable(state: CurationState, turn: TurnShape) -> bool:
    if turn.stop_reason in _BROKEN or turn.interrupted:
        return False
    return turn.id in state.edits or state.ratings.get(turn.id, ("", None))[0] != "bad"


def _branch(state: CurationState, replies: list[TurnShape]) -> list[TurnShape]:
    """Per reply group, the preferred alternative if one is preferred, else the latest usable one."""
    groups: dict[int, list[TurnShape]] = defaultdict(list)
    for t in replies:
        groups[t.group].append(t)
    chosen = []
    for group, members in groups.items():
        preferred = [t for t in members if t.id == state.preferred.get(group)]
        usable = [t for t in members if _usable(state, t)]
        pick = preferred or usable[-1:] or members[-1:]
        chosen.append(pick[0])
    return chosen


def _pairs(state: CurationState, replies: list[TurnShape]) -> set[tuple[str, int]]:
    """(chosen, rejected) pairs: ``("edit:5", 5)`` for a correction, ``("7", 5)`` for alternatives."""
    pairs: set[tuple[str, int]] = {(f"edit:{t.id}", t.id) for t in replies if t.id in state.edits}
    groups: dict[int, list[TurnShape]] = defaultdict(list)
    for t in replies:
        if t.stop_reason not in _BROKEN:
            groups[t.group].append(t)
    for group, members in groups.items():
        best = state.preferred.get(group)
        if best is not None and any(t.id == best for t in members):
            pairs |= {(str(best), t.id) for t in members if t.id != best}
            continue
        good = [t.id for t in members if state.ratings.get(t.id, ("", None))[0] == "good"]
        bad = [t.id for t in members if state.ratings.get(t.id, ("", None))[0] == "bad"]
        pairs |= {(str(g), b) for g in good for b in bad}
    return pairs
