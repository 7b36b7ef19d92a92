"""One reply's per-token curves from the dialogue log: entropy, varentropy, chosen-token logprob,
the adaptive sampler's action, and whether each token is reasoning (``<think>``) or answer.

Pure reads over :class:`agent.log.db.DialogueLog` (or anything with the same three methods); the
TUI's entropy view and ``epistemic log plot`` draw what these functions return, so the numbers a
user sees are the decoded telemetry itself. :mod:`agent.instruments.compare` aligns two turns and
finds the ones worth comparing.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.errors import UserError
from agent.llm.base import TokenStep, entropy_is_lower_bound
from agent.reasoning import CLOSE_TAG, OPEN_TAG
from agent.records import StoredTurn

Region = Literal["reasoning", "answer"]
ACTIONS = ("argmax", "sample", "explore", "pause")  # the entropy-adaptive sampler's choices


class CurveLog(Protocol):
    """The dialogue log as the curves read it (:class:`agent.log.db.DialogueLog`); called from a
    worker thread or the CLI, never from the UI thread."""

    def get_turn(self, turn_id: int) -> StoredTurn:
        """One turn; LogError if there is none."""
        ...

    def token_steps(self, turn_id: int) -> list[TokenStep]:
        """A turn's decoded telemetry; TelemetryError if damaged."""
        ...

    def snapshot(self, action: str = "reading") -> AbstractContextManager[sqlite3.Connection]:
        """The connection inside one read transaction."""
        ...


class NoCurves(UserError):
    """A turn that has no token curves: a user turn, or a reply logged without telemetry."""


def think_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of the ``<think>…</think>`` blocks in ``text``, tags
    included; a block that never closes runs to the end (the splitter's rules: see
    :mod:`agent.reasoning`)."""
    spans: list[tuple[int, int]] = []
    at = 0
    while (start := text.find(OPEN_TAG, at)) >= 0:
        close = text.find(CLOSE_TAG, start + len(OPEN_TAG))
        end = len(text) if close < 0 else close + len(CLOSE_TAG)
        spans.append((start, end))
        if close < 0:
            break
        at = end
    return spans


def token_regions(pieces: Sequence[str]) -> list[Region]:
    """For each token piece, "reasoning" when most of its characters lie in a think block (an
    empty piece: where it stands), else "answer"."""
    spans = think_spans("".join(pieces))
    regions: list[Region] = []
    pos, first = 0, 0
    for piece in pieces:
        end = pos + len(piece)
        while first < len(spans) and spans[first][1] <= pos:  # blocks wholly behind this piece
            first += 1
        if not piece:
            inside = first < len(spans) and spans[first][0] <= pos
        else:
            overlap = sum(max(0, min(end, stop) - max(pos, start)) for start, stop in spans[first:] if start < end)
            inside = 2 * overlap > len(piece)
        regions.append("reasoning" if inside else "answer")
        pos = end
    return regions


def runs(regions: Sequence[Region], region: Region = "reasoning") -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` where ``regions`` is ``region``, merged into runs."""
    out: list[tuple[int, int]] = []
    for i, r in enumerate(regions):
        if r != region:
            continue
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def adapter_label(adapters: Any) -> str:
    """``pirate×0.8, calm×1`` from a turn's stored adapters ("" when none)."""
    if not isinstance(adapters, list):
        return ""
    return ", ".join(f"{a.get('id', '?')}×{a.get('scale', 1.0):g}" for a in adapters if isinstance(a, dict))


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class TurnCurves:
    """One assistant turn's curves, a position per generated token (immutable; any thread)."""

    turn_id: int
    conversation_id: int
    persona: str
    model_id: str
    adapters: str  # adapter_label(): "" when none
    prompt: str  # the user text it answers ("" when not logged)
    steps: tuple[TokenStep, ...]
    regions: tuple[Region, ...]
    lower_bound: bool = False  # entropies from a remote server's top-k only
    alternative_of: int | None = None

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def entropy(self) -> list[float | None]:
        return [s.entropy for s in self.steps]

    @property
    def varentropy(self) -> list[float | None]:
        """Per token; all None in turns logged before varentropy was recorded."""
        return [s.varentropy for s in self.steps]

    @property
    def has_varentropy(self) -> bool:
        return any(s.varentropy is not None for s in self.steps)

    @property
    def logprob(self) -> list[float | None]:
        return [s.logprob for s in self.steps]

    @property
    def actions(self) -> list[str | None]:
        """The adaptive sampler's action per token (None: fixed sampling, or not recorded)."""
        return [s.action for s in self.steps]

    @property
    def pieces(self) -> list[str]:
        return [s.text for s in self.steps]

    @property
    def reasoning_runs(self) -> list[tuple[int, int]]:
        return runs(self.regions)

    @property
    def answer_start(self) -> int:
        """Position of the first answer token (len(self) when there is none)."""
        return next((i for i, r in enumerate(self.regions) if r == "answer"), len(self))

    def mean_entropy(self, region: Region | None = None) -> float | None:
        """Mean entropy over the turn, or over one region's tokens; None when nothing is known."""
        return _mean([s.entropy for s, r in zip(self.steps, self.regions, strict=True) if region in (None, r)])

    @property
    def label(self) -> str:
        """``#12 pirate · SmolLM2-135M-Instruct · pirate×0.8`` for titles and legends."""
        bits = [f"#{self.turn_id} {self.persona}", self.model_id]
        if self.adapters:
            bits.append(self.adapters)
        return " · ".join(bits)


def curves_of(turn: StoredTurn, steps: Sequence[TokenStep], prompt: str = "") -> TurnCurves:
    """The curves of an assistant turn already read, with its decoded ``steps``."""
    return TurnCurves(
        turn_id=turn.id,
        conversation_id=turn.conversation_id,
        persona=turn.persona or "?",
        model_id=str(turn.data.get("model_id") or "?"),
        adapters=adapter_label(turn.data.get("adapters")),
        prompt=prompt,
        steps=tuple(steps),
        regions=tuple(token_regions([s.text for s in steps])),
        lower_bound=entropy_is_lower_bound(turn.data.get("extra") or {}),
        alternative_of=turn.alternative_of,
    )


def load_curves(log: CurveLog, turn_id: int) -> TurnCurves:
    """Read one assistant turn's curves; LogError for an unknown id, TelemetryError for a damaged
    blob, NoCurves for a user turn or a reply without telemetry."""
    turn = log.get_turn(turn_id)
    if turn.role != "assistant":
        raise NoCurves(f"turn {turn_id} is a user turn: only assistant replies have token curves")
    steps = log.token_steps(turn_id)
    if not steps:
        raise NoCurves(f"turn {turn_id} has no token telemetry (its backend recorded none)")
    return curves_of(turn, steps, _prompt_of(log, turn))


def _prompt_of(log: CurveLog, turn: StoredTurn) -> str:
    if turn.parent_id is None:
        return ""
    parent = log.get_turn(turn.parent_id)
    return parent.text if parent.role == "user" else ""
