"""Two turns' curves side by side: which logged turns are worth comparing with a reply, and the
two curves aligned position by position.

Comparable turns are the reply's regenerated alternatives (the same reply group, see
``alternative_of`` in :mod:`agent.log.migrations`) and replies to the same user text elsewhere in
the log (another persona, adapter, model or sampler), each with a line saying what differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from agent.instruments.curves import CurveLog, TurnCurves, adapter_label

Anchor = Literal["start", "answer"]
T = TypeVar("T")
MAX_COMPARABLE = 50

_SAME_GROUP = """
SELECT t.id, t.persona, t.adapters, t.model_id FROM turns t
JOIN token_telemetry tt ON tt.turn_id = t.id AND tt.token_count > 0
WHERE t.role = 'assistant' AND t.id != ? AND (t.id = ? OR t.alternative_of = ?)
ORDER BY t.id LIMIT ?
"""
_SAME_PROMPT = """
SELECT t.id, t.persona, t.adapters, t.model_id, t.conversation_id FROM turns t
JOIN turns u ON u.id = t.parent_id AND u.role = 'user'
JOIN token_telemetry tt ON tt.turn_id = t.id AND tt.token_count > 0
WHERE t.role = 'assistant' AND t.id != ? AND u.text = ? AND COALESCE(t.alternative_of, t.id) != ?
ORDER BY t.id DESC LIMIT ?
"""


@dataclass(frozen=True)
class ComparableTurn:
    """A logged reply worth drawing beside another one, and why (immutable; any thread)."""

    turn_id: int
    kind: Literal["alternative", "same prompt"]
    label: str  # "regenerated alternative #12" / "same prompt · persona pirate · adapter pirate×0.8"


def _adapters(text: str | None) -> str:
    try:
        return adapter_label(json.loads(text)) if text else ""
    except ValueError:
        return ""


def comparable_turns(log: CurveLog, curves: TurnCurves) -> list[ComparableTurn]:
    """Alternatives of ``curves``' reply first (oldest first), then replies to the same user text
    (newest first); only replies with telemetry. Runs in one read snapshot."""
    group = curves.alternative_of if curves.alternative_of is not None else curves.turn_id
    with log.snapshot("finding turns to compare") as conn:
        alternatives = conn.execute(_SAME_GROUP, (curves.turn_id, group, group, MAX_COMPARABLE)).fetchall()
        same = []
        if curves.prompt.strip():
            same = conn.execute(_SAME_PROMPT, (curves.turn_id, curves.prompt, group, MAX_COMPARABLE)).fetchall()
    out = [ComparableTurn(int(row[0]), "alternative", f"regenerated alternative #{row[0]}") for row in alternatives]
    for turn_id, persona, adapters, model_id, conversation in same:
        label = _difference(curves, persona, _adapters(adapters), model_id) or f"same prompt (conversation {conversation})"
        out.append(ComparableTurn(int(turn_id), "same prompt", label))
    return out


def _difference(curves: TurnCurves, persona: str | None, adapters: str, model_id: str | None) -> str:
    """``same prompt · persona pirate · adapter none``; "" when persona, adapters and model agree."""
    bits = ["same prompt"]
    if (persona or "?") != curves.persona:
        bits.append(f"persona {persona}")
    if adapters != curves.adapters:
        bits.append(f"adapter {adapters or 'none'}")
    if (model_id or "?") != curves.model_id:
        bits.append(f"model {model_id}")
    return " · ".join(bits) if len(bits) > 1 else ""


@dataclass(frozen=True)
class Alignment:
    """Two turns on one token axis: position ``p`` holds ``a``'s token ``p - offset_a`` and
    ``b``'s token ``p - offset_b`` (None where a turn has no token there). Immutable; any thread."""

    a: TurnCurves
    b: TurnCurves
    offset_a: int
    offset_b: int

    @property
    def length(self) -> int:
        return max(self.offset_a + len(self.a), self.offset_b + len(self.b))

    def series(self, values_a: Sequence[T | None], values_b: Sequence[T | None]) -> tuple[list[T | None], list[T | None]]:
        """Two per-token series (e.g. ``a.entropy``, ``b.entropy``) padded onto the common axis."""
        return _pad(values_a, self.offset_a, self.length), _pad(values_b, self.offset_b, self.length)

    @property
    def diverged_at(self) -> int | None:
        """The first position, from where both turns have begun, at which they chose different
        tokens or one stopped while the other went on; None when they are the same throughout."""
        for p in range(max(self.offset_a, self.offset_b), self.length):
            if _token(self.a, p - self.offset_a) != _token(self.b, p - self.offset_b):
                return p
        return None


def _token(curves: TurnCurves, i: int) -> int | None:
    return curves.steps[i].token_id if 0 <= i < len(curves) else None


def _pad(values: Sequence[T | None], offset: int, length: int) -> list[T | None]:
    out: list[T | None] = [None] * offset
    out.extend(values)
    return out + [None] * (length - len(out))


def align(a: TurnCurves, b: TurnCurves, anchor: Anchor = "start") -> Alignment:
    """Put ``b`` beside ``a``: token by token from the first (``start``), or with their first
    answer tokens at the same position (``answer``: replies whose reasoning differs in length)."""
    if anchor == "start":
        return Alignment(a, b, 0, 0)
    shift = a.answer_start - b.answer_start
    return Alignment(a, b, max(0, -shift), max(0, shift))
